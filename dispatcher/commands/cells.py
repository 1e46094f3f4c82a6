"""``capcast cells ...``: import, synthesize and describe cell inventories."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError

if TYPE_CHECKING:
    from geo.cells import ImportResult
    from geo.inventory import Inventory, InventorySummary


def register(commands: Commands) -> None:
    """Add ``capcast cells import|synth|info``."""
    cells = commands.group("cells", "import, synthesize and describe cell inventories")

    imp = cells.add_parser(
        "import", help="import cells from OpenCelliD CSV, a sector table or GeoJSON",
        description="Import a cell inventory and write it as GeoParquet. Formats: opencellid "
                    "(OpenCelliD/MLS CSV, plain or .gz; omni circles of the estimated range, "
                    "clamped to 100 m..35 km), sectors (cell_id,operator,radio,lon,lat,"
                    "azimuth_deg,beamwidth_deg,range_m: sector wedges), geojson (coverage "
                    "polygons with properties cell_id, operator). Every bad row is reported "
                    "with its line number. Exit status: 0 imported, 1 refused (bad rows "
                    "with --on-error refuse, or an unusable file), 2 usage error.")
    imp.add_argument("path", metavar="PATH", help="the file to import")
    imp.add_argument("--format", required=True, choices=("opencellid", "sectors", "geojson"),
                     help="the input format")
    imp.add_argument("--operator", metavar="NAME",
                     help="opencellid: name every cell's operator NAME; sectors/geojson: the "
                          "operator of rows that name none")
    imp.add_argument("--plmn-names", metavar="FILE",
                     help="opencellid: PLMN to operator names, 'plmn,name' lines (262-01,"
                          "Telekom) or a JSON object; unnamed networks are called mcc-mnc")
    imp.add_argument("--on-error", choices=("refuse", "skip"), default="refuse",
                     help="on bad rows: refuse the file (default) or skip them and say how "
                          "many")
    imp.add_argument("--max-problems", type=int, default=20, metavar="N",
                     help="bad rows to list (default 20)")
    imp.add_argument("--out", required=True, metavar="INVENTORY",
                     help="the inventory file to write (GeoParquet)")
    imp.add_argument("--json", action="store_true",
                     help="print one JSON object (file, format, imported, out, cells, rows, "
                          "skipped, problems, notes, operators, elapsed_s, write_s) instead of "
                          "text")
    imp.add_argument("--no-progress", action="store_true",
                     help="no progress bars (they show only on a terminal anyway)")
    imp.set_defaults(handler=_cmd_import)

    synth = cells.add_parser(
        "synth", help="write a synthetic national inventory (for demos and benchmarks)",
        description="A synthetic national inventory: three 120-degree sectors per site, urban "
                    "clusters (0.3-2 km sectors) and rural sites (3-15 km), three operators "
                    "by default. Deterministic by --seed.")
    synth.add_argument("--cells", required=True, type=int, metavar="N", help="number of cells")
    synth.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (0)")
    synth.add_argument("--bbox", metavar="LON0,LAT0,LON1,LAT1",
                       help="extent (default 5.9,47.3,15.0,55.0; LON0 > LON1 crosses the "
                            "antimeridian)")
    synth.add_argument("--operators", metavar="A,B,C", default="Alpha,Bravo,Charlie",
                       help="operator names (default Alpha,Bravo,Charlie)")
    synth.add_argument("--out", required=True, metavar="INVENTORY",
                       help="the inventory file to write")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_cmd_synth)

    info = cells.add_parser(
        "info", help="counts per operator and radio, and the bounds of an inventory",
        description="Describe an inventory file without loading its coverage.")
    info.add_argument("inventory", metavar="INVENTORY")
    info.add_argument("--json", action="store_true",
                      help="print one JSON object: cells, operators, radios, by_operator, "
                           "bounds, source, created")
    info.set_defaults(handler=_cmd_info)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _counts(summary: InventorySummary) -> list[str]:
    lines = []
    for operator, count in sorted(summary.operators.items()):
        radios = ", ".join(f"{radio} {n:,}" for (op, radio), n
                           in sorted(summary.by_operator_radio.items()) if op == operator)
        lines.append(f"  {operator}: {count:,} cell{'s' if count != 1 else ''} ({radios})")
    return lines


def _bounds(bounds: tuple[float, float, float, float]) -> str:
    if any(math.isnan(v) for v in bounds):
        return "none"
    return f"lon {bounds[0]:.4f} .. {bounds[2]:.4f}, lat {bounds[1]:.4f} .. {bounds[3]:.4f}"


def _cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    from geo.cells import ImportRefused, import_cells, read_plmn_names
    from geo.inventory import InventoryError

    source = Path(args.path)
    if not source.is_file():
        raise UsageError(f"no such file: {args.path}")
    if args.plmn_names and args.format != "opencellid":
        raise UsageError("--plmn-names is for --format opencellid")
    if args.max_problems < 1:
        raise UsageError("--max-problems must be at least 1")
    started = time.perf_counter()
    try:
        plmn_names = read_plmn_names(args.plmn_names) if args.plmn_names else None
        result = import_cells(source, args.format, operator=args.operator,
                              plmn_names=plmn_names, on_error=args.on_error,
                              max_problems=args.max_problems, progress=_progress(args))
        elapsed = time.perf_counter() - started
        target = Path(args.out)
        result.inventory.save(target, progress=_progress(args))
        written = time.perf_counter() - started - elapsed
    except ImportRefused as exc:
        elapsed = time.perf_counter() - started
        if args.json:
            out.write(json.dumps({"file": str(source), "format": args.format,
                                  "imported": False, "bad_rows": exc.count,
                                  "problems": [_problem(p) for p in exc.problems],
                                  "elapsed_s": round(elapsed, 3)}) + "\n")
        sys.stderr.write(f"capcast cells import: refused {exc}\n")
        return EXIT_INVALID
    except InventoryError as exc:
        sys.stderr.write(f"capcast cells import: {exc}\n")
        return EXIT_INVALID
    if args.json:
        out.write(json.dumps(_result_json(source, target, result, elapsed, written)) + "\n")
        return EXIT_OK
    out.write(_result_text(source, target, result, elapsed, written))
    return EXIT_OK


def _problem(problem: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"line": problem.line, "reason": problem.reason}
    if problem.feature is not None:
        item["feature"] = problem.feature
    return item


def _result_json(source: Path, target: Path, result: ImportResult, elapsed: float,
                 written: float) -> dict[str, Any]:
    summary = result.inventory.summary()
    return {"file": str(source), "format": result.format, "imported": True,
            "out": str(target), "cells": len(result.inventory), "rows": result.rows,
            "skipped": result.skipped, "problems": [_problem(p) for p in result.problems],
            "notes": list(result.notes), "operators": summary.operators,
            "elapsed_s": round(elapsed, 3), "write_s": round(written, 3)}


def _result_text(source: Path, target: Path, result: ImportResult, elapsed: float,
                 written: float) -> str:
    inventory = result.inventory
    cells = len(inventory)
    lines = [f"imported {cells:,} cell{'s' if cells != 1 else ''} from {source} "
             f"({result.format}), "
             f"{result.rows:,} rows read, in {elapsed:.2f} s"]
    if result.skipped:
        lines.append(f"skipped {result.skipped:,} bad row{'s' if result.skipped != 1 else ''}:")
        lines.extend(f"  {problem}" for problem in result.problems)
        if result.skipped > len(result.problems):
            lines.append(f"  ... and {result.skipped - len(result.problems):,} more")
    lines.extend(f"note: {note}" for note in result.notes)
    summary = inventory.summary()
    lines.extend(_counts(summary))
    lines.append(f"bounds: {_bounds(summary.bounds)}")
    lines.append(f"wrote {target} ({_size(target)}) in {written:.2f} s")
    return "\n".join(lines) + "\n"


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--bbox: not numbers: {text!r}") from None
    if len(values) != 4:
        raise UsageError(f"--bbox: expected LON0,LAT0,LON1,LAT1, got {text!r}")
    return values[0], values[1], values[2], values[3]


def _cmd_synth(args: argparse.Namespace, out: TextIO) -> int:
    from geo.errors import InvalidGeoInput
    from geo.inventory import InventoryError
    from geo.synth import DEFAULT_BBOX, synthesize

    bbox = _parse_bbox(args.bbox) or DEFAULT_BBOX
    operators = [name.strip() for name in args.operators.split(",")]
    started = time.perf_counter()
    try:
        inventory: Inventory = synthesize(args.cells, seed=args.seed, bbox=bbox,
                                          operators=operators)
    except InvalidGeoInput as exc:
        raise UsageError(str(exc)) from None
    built = time.perf_counter() - started
    target = Path(args.out)
    try:
        inventory.save(target, progress=_progress(args))
    except InventoryError as exc:
        sys.stderr.write(f"capcast cells synth: {exc}\n")
        return EXIT_INVALID
    summary = inventory.summary()
    lines = [f"synthesized {len(inventory):,} cells (seed {args.seed}) in {built:.2f} s",
             *_counts(summary), f"bounds: {_bounds(summary.bounds)}",
             f"wrote {target} ({_size(target)}) in {time.perf_counter() - started:.2f} s"]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from geo.inventory import InventoryError, read_summary

    path = Path(args.inventory)
    if not path.is_file():
        raise UsageError(f"no such file: {args.inventory}")
    try:
        summary = read_summary(path)
    except InventoryError as exc:
        sys.stderr.write(f"capcast cells info: {exc}\n")
        return EXIT_INVALID
    if args.json:
        out.write(json.dumps(summary.to_json()) + "\n")
        return EXIT_OK
    lines = [f"{path}: {summary.cells:,} cells, {len(summary.operators)} operators",
             f"source: {summary.source}", f"created: {summary.created.isoformat()}",
             *_counts(summary),
             "radios: " + ", ".join(f"{radio} {n:,}" for radio, n
                                    in sorted(summary.radios.items())),
             f"bounds: {_bounds(summary.bounds)}", f"file size: {_size(path)}"]
    out.write("\n".join(lines) + "\n")
    return EXIT_OK
