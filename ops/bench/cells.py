"""Benchmark: cell inventories at national scale (synthesis, import, file formats).

Run: ``.venv/bin/python ops/bench/cells.py [--cells 1000000] [--rows 1000000] [--dir DIR]``

Everything is measured in the same run, with the alternatives beside it:

1. ``synthesize(N)`` against the obvious coverage synthesis (``pyproj.Geod.fwd``
   on every vertex, then ``shapely.polygons``), the latter on a tenth of the
   cells and scaled; and the accuracy of the vectorized geodesy against
   ``Geod.inv``.
2. Saving and loading the N-cell inventory: GeoParquet with the native
   polygon encoding (capcast's format), GeoParquet with WKB, and ``.npz``
   with WKB or with ragged coordinate arrays. Each load runs in a fresh
   process that reports its time and its peak RSS (``VmHWM``) above the
   RSS it had after its imports.
3. Importing an OpenCelliD CSV of ``--rows`` rows (realistic mix, 0.1% bad
   rows, ``on_error="skip"``) in a fresh process, against reading the same
   file with Python's ``csv`` module alone (no checks, no coverage).

Wall-clock times on a shared machine vary; compare the ratios.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from geo.inventory import Inventory  # noqa: E402
from geo.synth import VERTICES, destination, synthesize  # noqa: E402


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    return _status_mib("VmRSS:")


def peak_mib() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss would carry the parent's over exec)."""
    return _status_mib("VmHWM:")


# -- alternative file formats (for comparison only) -----------------------------------


def save_alternative(inventory: Inventory, path: Path, kind: str) -> None:
    if kind == "geoparquet-wkb":
        import pyarrow as pa
        import pyarrow.parquet as pq

        geo = {"version": "1.1.0", "primary_column": "geometry",
               "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"]}}}
        table = pa.table({
            "cell_id": pa.array(inventory.cell_ids), "operator": pa.array(
                inventory.operators).dictionary_encode(),
            "radio": pa.array(inventory.radio).dictionary_encode(),
            "site_lon": inventory.sites[:, 0], "site_lat": inventory.sites[:, 1],
            "geometry": pa.array(shapely.to_wkb(inventory.polygons), pa.binary())})
        table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
        pq.write_table(table, path, compression="zstd", row_group_size=65536)
    elif kind == "npz-wkb":
        wkb = shapely.to_wkb(inventory.polygons)
        lengths = np.fromiter((len(b) for b in wkb), np.int64, len(wkb))
        np.savez(path, cell_ids=inventory.cell_ids, operators=inventory.operators,
                 radio=inventory.radio, sites=inventory.sites,
                 wkb=np.frombuffer(b"".join(wkb), np.uint8),
                 offsets=np.concatenate([[0], np.cumsum(lengths)]))
    elif kind == "npz-ragged":
        _, coords, (rings, polygons) = shapely.to_ragged_array(inventory.polygons)
        np.savez(path, cell_ids=inventory.cell_ids, operators=inventory.operators,
                 radio=inventory.radio, sites=inventory.sites, coords=coords, rings=rings,
                 polygons=polygons)
    else:
        raise ValueError(kind)


def load_alternative(path: Path, kind: str) -> Any:
    """The loaded inventory (or its arrays), kept alive by the caller while RSS is read."""
    if kind in ("geoparquet-native", "geoparquet-wkb"):
        return Inventory.load(path)  # one reader for both encodings
    data = np.load(path)
    ids, operators, radio, sites = (data["cell_ids"], data["operators"], data["radio"],
                                    data["sites"])
    if kind == "npz-wkb":
        blob, offsets = data["wkb"].tobytes(), data["offsets"]
        pieces = np.array([blob[offsets[i]:offsets[i + 1]] for i in range(len(ids))],
                          dtype=object)
        polygons = shapely.from_wkb(pieces)
    else:
        polygons = shapely.from_ragged_array(shapely.GeometryType.POLYGON, data["coords"],
                                             (data["rings"], data["polygons"]))
    return ids, operators, radio, sites, polygons


SUFFIX = {"geoparquet-native": ".parquet", "geoparquet-wkb": ".parquet", "npz-wkb": ".npz",
          "npz-ragged": ".npz"}


# -- child processes ------------------------------------------------------------------------


def child(task: str, path: str) -> None:
    import pyarrow.parquet  # noqa: F401  (imports before the baseline)

    from geo.cells import read_opencellid

    base = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    loaded: Any = None
    if task == "import":
        loaded = result = read_opencellid(path, on_error="skip", progress=False)
        extra: dict[str, Any] = {"cells": len(result.inventory), "skipped": result.skipped}
    elif task == "python-csv":
        with open(path, newline="") as file:
            loaded = list(csv.reader(file))
        extra = {"rows": len(loaded)}
    else:
        loaded = load_alternative(Path(path), task)
        extra = {"cells": len(loaded)}
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "base_mib": base, "peak_mib": peak_mib(),
                      "rss_mib": rss_mib(), **extra}))
    del loaded


def in_child(task: str, path: Path) -> dict[str, Any]:
    output = subprocess.run([sys.executable, __file__, "--child", task, str(path)],
                            capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


# -- the OpenCelliD file ------------------------------------------------------------------


def write_opencellid(path: Path, rows: int, seed: int = 1) -> int:
    """A realistic OpenCelliD export; returns the number of bad rows written."""
    rng = np.random.default_rng(seed)
    radio = np.array(["GSM", "UMTS", "LTE", "NR", "CDMA"])[
        rng.choice(5, rows, p=[0.22, 0.2, 0.5, 0.06, 0.02])]
    plmn = np.array([(262, 1), (262, 2), (262, 3), (208, 1), (208, 10), (310, 410),
                     (310, 260), (440, 10), (505, 1), (724, 5)])[rng.integers(0, 10, rows)]
    serial = np.arange(rows)
    cell = np.select([radio == "GSM", radio == "CDMA", radio == "NR"],
                     [serial % 65536, serial % 65536, serial + (1 << 30)], serial % (1 << 28))
    area = np.where(radio == "NR", rng.integers(1, 1 << 24, rows), rng.integers(1, 65535, rows))
    area = np.where((radio == "GSM") | (radio == "CDMA"), serial // 65536 + 1, area)
    lon = np.round(rng.uniform(-180, 180, rows), 6)
    lat = np.round(rng.uniform(-56, 72, rows), 6)
    rng_m = rng.integers(0, 40000, rows)
    bad = rng.random(rows) < 0.001
    lines = [f"{r},{m},{n},{a},{c},{u},{x},{y},{g},{s},1,1459468800,1591012345,0"
             for r, (m, n), a, c, u, x, y, g, s in zip(
                 radio.tolist(), plmn.tolist(), area.tolist(), cell.tolist(),
                 rng.integers(0, 504, rows).tolist(), lon.tolist(), lat.tolist(),
                 rng_m.tolist(), rng.integers(1, 300, rows).tolist(), strict=True)]
    for i in np.flatnonzero(bad).tolist():
        lines[i] = lines[i].replace(",1,1459468800", ",1,1459468800,extra", 1)
    header = ("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,"
              "updated,averageSignal\n")
    with open(path, "w") as file:
        file.write(header)
        file.write("\n".join(lines) + "\n")
    return int(bad.sum())


# -- main ---------------------------------------------------------------------------------


def obvious_coverage(inventory: Inventory) -> float:
    """Seconds per cell for the obvious synthesis: Geod.fwd per vertex + shapely.polygons."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    n = len(inventory)
    rings = shapely.get_coordinates(inventory.polygons).reshape(n, VERTICES, 2)
    az, _, dist = geod.inv(np.repeat(inventory.sites[:, 0], VERTICES - 2),
                           np.repeat(inventory.sites[:, 1], VERTICES - 2),
                           rings[:, 1:-1, 0].ravel(), rings[:, 1:-1, 1].ravel())
    started = time.perf_counter()
    lon, lat, _ = geod.fwd(np.repeat(inventory.sites[:, 0], VERTICES - 2),
                           np.repeat(inventory.sites[:, 1], VERTICES - 2), az, dist)
    coords = np.empty((n, VERTICES, 2))
    coords[:, 0] = coords[:, -1] = inventory.sites
    coords[:, 1:-1, 0] = np.reshape(lon, (n, VERTICES - 2))
    coords[:, 1:-1, 1] = np.reshape(lat, (n, VERTICES - 2))
    shapely.polygons(coords)
    return (time.perf_counter() - started) / n


def our_coverage(inventory: Inventory) -> float:
    """Seconds per cell for capcast's vectorized wedges on the same cells."""
    from pyproj import Geod

    from geo.synth import sector_polygons

    n = len(inventory)
    rings = shapely.get_coordinates(inventory.polygons).reshape(n, VERTICES, 2)
    fwd, _, dist = Geod(ellps="WGS84").inv(inventory.sites[:, 0], inventory.sites[:, 1],
                                           rings[:, VERTICES // 2, 0], rings[:, VERTICES // 2, 1])
    started = time.perf_counter()
    sector_polygons(inventory.sites[:, 0], inventory.sites[:, 1], np.asarray(fwd) % 360, 120.0,
                    dist)
    return (time.perf_counter() - started) / n


def accuracy(samples: int = 200_000) -> tuple[float, float]:
    from pyproj import Geod

    rng = np.random.default_rng(3)
    lon = rng.uniform(-180, 180, samples)
    lat = rng.uniform(-70, 70, samples)
    az = rng.uniform(0, 360, samples)
    dist = rng.uniform(100, 35_000, samples)
    lon2, lat2 = destination(lon, lat, az, dist)
    faz, _, true_dist = Geod(ellps="WGS84").inv(lon, lat, lon2, lat2)
    return (float(np.max(np.abs(true_dist / dist - 1))),
            float(np.max(np.abs((np.asarray(faz) - az + 180) % 360 - 180))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="where to write files (default: a temp dir)")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = args.dir or Path(tempfile.mkdtemp(prefix="capcast-cells-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cells bench: {args.cells:,} cells, {args.rows:,} OpenCelliD rows, in {work}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    # 1. synthesis
    synthesize(1000)
    started, cpu = time.perf_counter(), time.process_time()
    inventory = synthesize(args.cells)
    synth_s, synth_cpu = time.perf_counter() - started, time.process_time() - cpu
    sample = inventory.take(np.arange(0, len(inventory), 10))
    obvious = obvious_coverage(sample)
    ours = our_coverage(sample)
    print(f"\nsynthesize({args.cells:,}): {synth_s:.2f} s ({synth_cpu:.2f} s CPU) "
          f"({synth_s / args.cells * 1e6:.2f} us/cell, all of it: sites, ids, coverage)")
    print(f"  coverage of {len(sample):,} of its cells: sector_polygons {ours * 1e6:.2f} us/cell,"
          f" the obvious (Geod.fwd per vertex + shapely.polygons) {obvious * 1e6:.2f} us/cell: "
          f"{obvious / ours:.1f}x")
    rel, az = accuracy()
    print(f"  geodesy vs Geod.inv (200k random vertices, |lat| <= 70, 0.1-35 km): max "
          f"distance error {rel:.1e} relative, max azimuth error {az:.1e} deg")

    # 2. file formats
    print(f"\nsave and load {len(inventory):,} cells (load in a fresh process; RSS above the "
          "process's RSS after imports)")
    print(f"  {'format':20} {'save s':>7} {'MiB':>7} {'load s':>7} {'cpu s':>6} {'peak MiB':>9} "
          f"{'held MiB':>9}")
    rows = []
    for kind in ("geoparquet-native", "geoparquet-wkb", "npz-wkb", "npz-ragged"):
        path = work / f"inventory-{kind}{SUFFIX[kind]}"
        started = time.perf_counter()
        if kind == "geoparquet-native":
            inventory.save(path, progress=False)
        else:
            save_alternative(inventory, path, kind)
        save_s = time.perf_counter() - started
        loaded = in_child(kind, path)
        rows.append((kind, loaded["seconds"]))
        print(f"  {kind:20} {save_s:7.2f} {path.stat().st_size / 2**20:7.1f} "
              f"{loaded['seconds']:7.2f} {loaded['cpu']:6.2f} "
              f"{loaded['peak_mib'] - loaded['base_mib']:9.0f} "
              f"{loaded['rss_mib'] - loaded['base_mib']:9.0f}")
    native = rows[0][1]
    print("  load time ratios to geoparquet-native: "
          + ", ".join(f"{k} {s / native:.2f}x" for k, s in rows[1:]))
    del inventory, sample

    # 3. OpenCelliD import
    csv_path = work / "cell_towers.csv"
    bad = write_opencellid(csv_path, args.rows)
    imported = in_child("import", csv_path)
    plain = in_child("python-csv", csv_path)
    print(f"\nimport {args.rows:,} OpenCelliD rows ({csv_path.stat().st_size / 2**20:.0f} MiB, "
          f"{bad} bad rows written): {imported['seconds']:.2f} s ({imported['cpu']:.2f} s CPU), "
          f"{imported['cells']:,} cells, "
          f"{imported['skipped']} skipped, peak RSS "
          f"+{imported['peak_mib'] - imported['base_mib']:.0f} MiB")
    print(f"  Python csv.reader alone (no checks, no coverage): {plain['seconds']:.2f} s "
          f"({plain['cpu']:.2f} s CPU); "
          f"the whole import takes {imported['seconds'] / plain['seconds']:.2f}x that")


if __name__ == "__main__":
    main()
