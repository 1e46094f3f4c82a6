"""``capcast sim cbc``: a cell broadcast centre speaking ECBE (osmo-cbc or capcast dialect)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections import Counter
from typing import TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def register(commands: Commands) -> None:
    """Add ``capcast sim cbc``."""
    parser = commands.group("sim").add_parser(
        "cbc", help="a cell broadcast centre with the ECBE REST interface (osmo-cbc style)",
        description="Run a cell broadcast centre that speaks osmo-cbc's ECBE REST interface "
                    "(POST /api/ecbe/v1/message, DELETE /api/ecbe/v1/message/ID) like "
                    "osmo-cbc 0.4 without peers, or capcast's extension of it (cell lists "
                    "in the scope, PUT to replace; docs/cbc-rest.md). Records every request. "
                    "Runs until interrupted (Ctrl-C or SIGTERM).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12345,
                        help="port to listen on (default 12345, osmo-cbc's; 0 = any free port, "
                             "printed at start)")
    parser.add_argument("--dialect", choices=("osmo-cbc", "capcast"), default="osmo-cbc",
                        help="osmo-cbc: PLMN-wide scope only, no replace (default); capcast: "
                             "scope_cell_list and PUT")
    parser.add_argument("--create-delay", type=_seconds, default=0.0, metavar="S",
                        help="seconds before a create (or replace) is answered (default 0; "
                             "15 mimics a real osmo-cbc, whose state machine waits for peers)")
    parser.add_argument("--delete-delay", type=_seconds, default=None, metavar="S",
                        help="seconds before a delete is answered (default: --create-delay)")
    parser.add_argument("--error-rate", type=_fraction, default=0.0, metavar="F",
                        help="fraction of requests that get a fault: half a 500 with nothing "
                             "done, half done but answered by closing the connection "
                             "(default 0)")
    parser.add_argument("--record", metavar="FILE",
                        help="append every request, one JSON object per line, to FILE")
    parser.add_argument("--seed", type=int, help="seed for --error-rate")
    parser.set_defaults(handler=_cmd_sim_cbc)


async def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from gateways.cbc.ecbe import Dialect
    from gateways.simulators.cbc import CbcSimulator

    simulator = CbcSimulator(dialect=Dialect(args.dialect), create_delay=args.create_delay,
                             delete_delay=args.delete_delay, error_rate=args.error_rate,
                             record_path=args.record, seed=args.seed)
    try:
        await simulator.start(args.host, args.port)
    except OSError as exc:
        await simulator.stop()
        sys.stderr.write(f"capcast sim cbc: cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}\n")
        return EXIT_INVALID
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    out.write(f"CBC simulator ({args.dialect} dialect) listening on "
              f"{simulator.base_url}/api/ecbe/v1\n")
    out.flush()
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await simulator.stop()
    counts = Counter(record.outcome.value for record in simulator.records)
    summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    out.write(f"stopped after {len(simulator.records)} request(s)"
              f"{': ' + summary if summary else ''}\n")
    return EXIT_OK


def _cmd_sim_cbc(args: argparse.Namespace, out: TextIO) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {args.port}")
    return asyncio.run(_serve(args, out))
