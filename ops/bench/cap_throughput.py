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
    """Documents per second, best of three timed runs of at least ``seconds``/3 each."""
    for doc in docs:
        fn(doc)
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        gc.collect()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
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
    typical = [d for d in docs if len(d) < 64 << 10]
    print(f"corpus: {args.corpus}: {len(docs)} single alerts, {len(typical)} under 64 KiB "
          f"(mean {sum(map(len, typical)) / len(typical) / 1024:.1f} KiB)")
    print(f"{'set':8} {'xmltodict.parse':>17} {'capcast validate':>17} {'ratio':>7} "
          f"{'capcast parse_alert':>20} {'ratio':>7}")
    for name, subset in (("typical", typical), ("all", docs)):
        bare = _rate(lambda d: xmltodict.parse(d), subset, args.seconds)
        ours = _rate(lambda d: validate(d, check_signature=False, max_bytes=4 << 20), subset,
                     args.seconds)
        parsed = _rate(lambda d: parse_alert(d, max_bytes=4 << 20), subset, args.seconds)
        print(f"{name:8} {bare:>13,.0f} /s {ours:>13,.0f} /s {bare / ours:>6.2f}x "
              f"{parsed:>16,.0f} /s {bare / parsed:>6.2f}x")
    print("ratio = how many times slower than the bare parse (goal: <= 3x; >= 3,000/s typical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
