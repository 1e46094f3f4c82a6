"""``capcast sim smsc``: run the SMSC / SMPP cell-broadcast simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_OK, Commands, UsageError
from dispatcher.commands.smpp import read_password

if TYPE_CHECKING:
    from gateways.simulators.smsc import SmscConfig


def register(commands: Commands) -> None:
    """Add ``capcast sim smsc``."""
    parser = commands.group("sim").add_parser(
        "smsc", help="run an SMSC simulator speaking SMPP 3.4 and SMPP 5.0 broadcast",
        description="An SMSC / cell-broadcast centre simulator on SMPP: binds, submit_sm with "
                    "delivery receipts, broadcast_sm, query/cancel_broadcast_sm, a throughput "
                    "limit, injected throttling and errors, and a record of every PDU received. "
                    "Prints 'listening on HOST:PORT' when ready; stops on SIGINT or SIGTERM.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=2775,
                        help="port to listen on (0 picks a free one; default 2775)")
    parser.add_argument("--tps", type=float, metavar="R",
                        help="submissions per second per bind; ESME_RTHROTTLED beyond it")
    parser.add_argument("--error-rate", type=float, default=0.0, metavar="F",
                        help="fraction of submissions refused with ESME_RSUBMITFAIL")
    parser.add_argument("--throttle-rate", type=float, default=0.0, metavar="F",
                        help="fraction of submissions refused with ESME_RTHROTTLED")
    parser.add_argument("--dlr-delay", type=float, default=1.0, metavar="S",
                        help="seconds before a delivery receipt (default 1; negative: none)")
    parser.add_argument("--response-delay", type=float, default=0.0, metavar="S",
                        help="seconds before each response")
    parser.add_argument("--disconnect-after", type=int, metavar="N",
                        help="drop each connection after N submit_sm")
    parser.add_argument("--id-base", choices=("hex", "decimal"), default="hex",
                        help="message ids in submit_sm_resp (default hex)")
    parser.add_argument("--receipt-id-base", choices=("hex", "decimal"),
                        help="message ids in receipts (default: as --id-base)")
    parser.add_argument("--record", metavar="FILE",
                        help="write every PDU received to FILE as JSON lines")
    parser.add_argument("--record-limit", type=int, default=100_000, metavar="N",
                        help="PDUs kept in memory between writes (0: record nothing)")
    parser.add_argument("--system-id", metavar="ID",
                        help="the only system_id accepted (default: accept any bind)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR",
                        help="environment variable holding the password for --system-id")
    secret.add_argument("--password-file", metavar="FILE",
                        help="file holding the password for --system-id")
    parser.add_argument("--uvloop", action="store_true",
                        help="run on uvloop (if installed)")
    parser.set_defaults(handler=_cmd_sim_smsc)


def _cmd_sim_smsc(args: argparse.Namespace, out: TextIO) -> int:
    from gateways.simulators.smsc import IdBase, SmscConfig

    password = read_password(args.password_env, args.password_file)
    if args.system_id and password is None:
        raise UsageError("--system-id needs --password-env or --password-file")
    if password is not None and not args.system_id:
        raise UsageError("a password needs --system-id")
    try:
        config = SmscConfig(
            host=args.host, port=args.port,
            credentials={args.system_id: password} if args.system_id and password else None,
            tps=args.tps, error_rate=args.error_rate, throttle_rate=args.throttle_rate,
            dlr_delay=args.dlr_delay if args.dlr_delay >= 0 else None,
            response_delay=args.response_delay, disconnect_after=args.disconnect_after,
            id_base=IdBase(args.id_base),
            receipt_id_base=IdBase(args.receipt_id_base) if args.receipt_id_base else None,
            record_limit=args.record_limit if args.record else 0)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return event_loop_runner(args.uvloop)(_serve(config, args.record, out))


def event_loop_runner(use_uvloop: bool) -> Callable[[Coroutine[Any, Any, int]], int]:
    """``asyncio.run``, or ``uvloop.run`` when asked for (uvloop is optional)."""
    if not use_uvloop:
        return asyncio.run
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        raise UsageError("--uvloop needs the uvloop package (pip install uvloop)") from None
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


async def _serve(config: SmscConfig, record: str | None, out: TextIO) -> int:
    from gateways.simulators.smsc import SmscSimulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    sim = SmscSimulator(config)
    try:
        await sim.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    print(f"listening on {config.host}:{sim.port}", file=out, flush=True)
    sink = Path(record).open("a", encoding="utf-8") if record else None  # noqa: SIM115
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            if sink is not None:
                for item in sim.drain_records():
                    sink.write(json.dumps(item.to_json(), sort_keys=True) + "\n")
                sink.flush()
    finally:
        await sim.stop()
        if sink is not None:
            for item in sim.drain_records():
                sink.write(json.dumps(item.to_json(), sort_keys=True) + "\n")
            sink.close()
        stats = sim.stats()
        print(json.dumps({"stats": {k: getattr(stats, k) for k in stats.__slots__}}),
              file=sys.stderr, flush=True)
    return EXIT_OK
