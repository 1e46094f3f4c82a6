"""``capcast bench smpp``: submit_sm throughput of capcast's client against smpplib's.

The SMSC simulator runs in its own process (so it does not share the
client's core); both clients send the same messages (same text, source and
destinations) over loopback without asking for receipts:

* capcast: :class:`gateways.smpp.client.SmppClient`, one link, a window of
  ``--window`` (64), a bulk job streaming the recipients;
* smpplib (blocking): smpplib's own ``Client``, used as a blocking client is
  used to learn each message's outcome: ``send_message`` then ``read_once``;
* smpplib (pipelined): the same ``Client`` in the pattern of smpplib's README,
  a listener thread reading responses while the main thread sends, with no
  window at all.

It prints the rate of each (messages acknowledged per second of wall time),
CPU time per message of the client and of the simulator, and the ratio of
capcast's rate to each smpplib rate. The goal (issue 4): at least 20,000
submit_sm per second sustained on one core with a window of 64, and at least
10 times smpplib's client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from dispatcher.cli import EXIT_OK, Commands, UsageError

TEXT = "Flood warning for the Elbe valley: move to higher ground now. capcast drill."
SOURCE = "CAPCAST"


def register(commands: Commands) -> None:
    """Add ``capcast bench smpp``."""
    parser = commands.group("bench").add_parser(
        "smpp", help="submit_sm throughput of capcast's SMPP client vs smpplib's Client",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000, metavar="N",
                        help="messages for capcast's client per run (default 200000)")
    parser.add_argument("--smpplib-messages", type=int, default=10_000, metavar="N",
                        help="messages for each smpplib run (default 10000; it is slower)")
    parser.add_argument("--window", type=int, default=64, metavar="W",
                        help="capcast's window (default 64)")
    parser.add_argument("--runs", type=int, default=3, metavar="R",
                        help="runs of each client; the median is reported (default 3)")
    parser.add_argument("--uvloop", action="store_true",
                        help="run capcast's client and the simulator on uvloop (optional)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_cmd_bench_smpp)


def _recipients(n: int) -> Iterator[str]:
    return (f"4915{i:09d}" for i in range(n))


class _Simulator:
    """The SMSC simulator in a child process."""

    def __init__(self, uvloop: bool) -> None:
        command = [sys.executable, "-c", "from dispatcher.cli import main; main()",
                   "sim", "smsc", "--port", "0", "--dlr-delay", "-1", "--record-limit", "0"]
        if uvloop:
            command.append("--uvloop")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise UsageError(f"the simulator did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the simulator process so far."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _measure(sim: _Simulator, n: int, run: Any) -> dict[str, float]:
    sim_cpu = sim.cpu_seconds()
    cpu = time.process_time()
    wall = time.perf_counter()
    acknowledged = run()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    sim_cpu = sim.cpu_seconds() - sim_cpu
    if acknowledged != n:
        raise RuntimeError(f"only {acknowledged} of {n} messages acknowledged")
    return {"rate": n / wall, "seconds": wall, "client_us": cpu / n * 1e6,
            "simulator_us": sim_cpu / n * 1e6}


def _capcast(port: int, n: int, window: int, uvloop: bool) -> int:
    from gateways.smpp.client import LinkConfig, SmppClient

    async def run() -> int:
        link = LinkConfig(host="127.0.0.1", port=port, system_id="bench", password="bench",
                          window=window)
        async with SmppClient([link]) as client:
            job = client.submit_bulk(text=TEXT, source=SOURCE, recipients=_recipients(n),
                                     registered_delivery=False)
            summary = await job.wait()
            return summary["accepted"]

    if uvloop:
        import uvloop as _uvloop

        return int(_uvloop.run(run()))
    return asyncio.run(run())


def _smpplib_client(port: int) -> Any:
    import smpplib.client

    client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True,
                                   logger_name="bench.smpplib")
    client.connect()
    client.bind_transmitter(system_id="bench", password="bench")
    return client


def smpplib_open_state() -> Any:
    """Smpplib's OPEN state (its disconnect() warns when called in any other)."""
    import smpplib.consts

    return smpplib.consts.SMPP_CLIENT_STATE_OPEN


def _smpplib_blocking(port: int, n: int) -> int:
    """The smpplib Client, blocking: each message sent, then its response read."""
    client = _smpplib_client(port)
    acknowledged = 0

    def sent(pdu: Any) -> None:
        nonlocal acknowledged
        acknowledged += pdu.status == 0

    client.set_message_sent_handler(sent)
    text = TEXT.encode("ascii")
    for destination in _recipients(n):
        client.send_message(source_addr_ton=5, source_addr_npi=0, source_addr=SOURCE,
                            dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
                            short_message=text, data_coding=0)
        client.read_once()
    client.unbind()
    client.state = smpplib_open_state()
    client.disconnect()
    return acknowledged


def _smpplib_pipelined(port: int, n: int) -> int:
    """The smpplib Client as in its README: a listener thread, the main thread sending."""
    client = _smpplib_client(port)
    done = threading.Event()
    acknowledged = 0

    def sent(pdu: Any) -> None:
        nonlocal acknowledged
        acknowledged += pdu.status == 0
        if acknowledged >= n:
            done.set()

    def listen() -> None:
        with contextlib.suppress(Exception):
            while not done.is_set():
                client.read_once()

    client.set_message_sent_handler(sent)
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    text = TEXT.encode("ascii")
    for destination in _recipients(n):
        client.send_message(source_addr_ton=5, source_addr_npi=0, source_addr=SOURCE,
                            dest_addr_ton=1, dest_addr_npi=1, destination_addr=destination,
                            short_message=text, data_coding=0)
    done.wait(120)
    listener.join(5)
    client.state = smpplib_open_state()
    client.disconnect()
    return acknowledged


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _cmd_bench_smpp(args: argparse.Namespace, out: TextIO) -> int:
    if args.messages < 1 or args.smpplib_messages < 1 or args.runs < 1:
        raise UsageError("--messages, --smpplib-messages and --runs must be positive")
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise UsageError("--uvloop needs the uvloop package (pip install uvloop)") from None
    sim = _Simulator(args.uvloop)
    results: dict[str, list[dict[str, float]]] = {"capcast": [], "smpplib_blocking": [],
                                                  "smpplib_pipelined": []}
    try:
        _capcast(sim.port, 2000, args.window, args.uvloop)  # warm up both processes
        for _ in range(args.runs):
            n, m = args.messages, args.smpplib_messages
            results["capcast"].append(_measure(
                sim, n, functools.partial(_capcast, sim.port, n, args.window, args.uvloop)))
            results["smpplib_blocking"].append(_measure(
                sim, m, functools.partial(_smpplib_blocking, sim.port, m)))
            results["smpplib_pipelined"].append(_measure(
                sim, m, functools.partial(_smpplib_pipelined, sim.port, m)))
    finally:
        sim.stop()
    median = {name: _median(runs) for name, runs in results.items()}
    capcast = median["capcast"]["rate"]
    report = {
        "window": args.window, "messages": args.messages,
        "smpplib_messages": args.smpplib_messages, "runs": args.runs, "uvloop": args.uvloop,
        "results": {name: {k: round(v, 2) for k, v in m.items()} for name, m in median.items()},
        "capcast_runs": [round(r["rate"]) for r in results["capcast"]],
        "ratio_vs_smpplib_blocking": round(capcast / median["smpplib_blocking"]["rate"], 2),
        "ratio_vs_smpplib_pipelined": round(capcast / median["smpplib_pipelined"]["rate"], 2),
    }
    if args.json:
        print(json.dumps(report, sort_keys=True), file=out)
        return EXIT_OK
    print(f"SMPP submit_sm throughput, loopback, simulator in its own process, "
          f"median of {args.runs} run(s){', uvloop' if args.uvloop else ''}", file=out)
    labels = {"capcast": f"capcast SmppClient (window {args.window})",
              "smpplib_blocking": "smpplib Client, blocking (send, read)",
              "smpplib_pipelined": "smpplib Client, listener thread (no window)"}
    for name, label in labels.items():
        m = median[name]
        print(f"  {label:<46} {m['rate']:>9,.0f} msg/s   client {m['client_us']:6.1f} us/msg"
              f"   simulator {m['simulator_us']:6.1f} us/msg", file=out)
    print(f"  capcast runs: {', '.join(f'{r:,}' for r in report['capcast_runs'])} msg/s",
          file=out)
    print(f"  ratio capcast / smpplib blocking:  {report['ratio_vs_smpplib_blocking']:.1f}x",
          file=out)
    print(f"  ratio capcast / smpplib pipelined: {report['ratio_vs_smpplib_pipelined']:.1f}x",
          file=out)
    print("  goal: >= 20,000 msg/s with a window of 64, >= 10x smpplib's client", file=out)
    return EXIT_OK
