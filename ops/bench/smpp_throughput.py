"""Benchmark: capcast's SMPP client against smpplib's ``Client`` (submit_sm per second).

Run: ``.venv/bin/python ops/bench/smpp_throughput.py [--messages N] [--runs R] [--uvloop]``
(the same as ``capcast bench smpp``; see dispatcher/commands/bench_smpp.py).

The SMSC simulator runs in a separate process; both clients send the same
messages over loopback. Goal (issue 4): at least 20,000 submit_sm per second
on one core with a window of 64, and at least 10 times smpplib's client.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dispatcher.cli import main

if __name__ == "__main__":
    main(["bench", "smpp", *sys.argv[1:]])
