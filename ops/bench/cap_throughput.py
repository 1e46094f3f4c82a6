"""Benchmark: CAP parse + validate throughput against a bare ``xmltodict.parse``.

Run: ``.venv/bin/python ops/bench/cap_throughput.py [CORPUS] [--seconds N]``

Both sides read the same bytes in the same process, one core, one document at
a time. "typical" is every single-alert document under 64 KiB in the corpus
(the bulk of real traffic); "all" adds the large ones (DWD alerts with 1,352
areas, national-border polygons). The goal from issue 2: at least 3,000
typical alerts per second and no worse than 3x the bare parse.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import xmltodict

from cap.parse import parse_alert
from cap.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def _alerts(corpus: Path) -> list[bytes]:
    docs = []
    for path in sorted(corpus.rglob("*")):
        if not path.is_file() or path.suffix in (".tsv", ".txt", ".json", ".geojson"):
            continue
        data = path.read_bytes()
        try:
            parse_alert(data, max_bytes=4 << 20)
        except Exception:
            continue
        docs.append(data)
    return docs


def _rate(fn: Callable[[bytes], object], docs: list[bytes], seconds: float) -> float:
    """Documents per second of CPU time, best of three runs of ``seconds``/3 each.

    CPU time (not wall time) keeps other processes on the machine out of the figure.
    """
    for doc in docs:
        fn(doc)
    best = 0.0
    for _ in range(3):
        count, start = 0, time.process_time()
        gc.collect()
        while (elapsed := time.process_time() - start) < seconds / 3:
            for doc in docs:
                fn(doc)
            count += len(docs)
        best = max(best, count / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(ROOT / "tests" / "corpus"))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args(argv)
    docs = _alerts(Path(args.corpus))
    classes = [("<= 4 KiB", [d for d in docs if len(d) <= 4 << 10]),
               ("<= 16 KiB", [d for d in docs if len(d) <= 16 << 10]),
               ("typical", [d for d in docs if len(d) < 64 << 10]),
               ("all", docs)]
    print(f"corpus: {args.corpus}: {len(docs)} single alerts")
    print(f"{'set':10} {'docs':>4} {'mean':>9} {'xmltodict.parse':>16} "
          f"{'capcast validate':>17} {'ratio':>6} {'parse_alert':>12} {'ratio':>6}")
    for name, subset in classes:
        mean = sum(map(len, subset)) / len(subset) / 1024
        bare = _rate(lambda d: xmltodict.parse(d), subset, args.seconds)
        ours = _rate(lambda d: validate(d, check_signature=False, max_bytes=4 << 20), subset,
                     args.seconds)
        parsed = _rate(lambda d: parse_alert(d, max_bytes=4 << 20), subset, args.seconds)
        print(f"{name:10} {len(subset):>4} {mean:>5.1f} KiB {bare:>12,.0f} /s "
              f"{ours:>13,.0f} /s {bare / ours:>5.2f}x {parsed:>8,.0f} /s {bare / parsed:>5.2f}x")
    signed = [d for d in docs if b"xmldsig" in d]
    with_sig = _rate(lambda d: validate(d, max_bytes=4 << 20), signed, args.seconds)
    without = _rate(lambda d: validate(d, check_signature=False, max_bytes=4 << 20), signed,
                    args.seconds)
    print(f"signed alerts ({len(signed)}): validate with signature check {with_sig:,.0f} /s, "
          f"without {without:,.0f} /s")
    print("ratio = times slower than the bare parse of the same bytes (goal: <= 3x); "
          "'typical' = under 64 KiB (goal: >= 3,000/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
