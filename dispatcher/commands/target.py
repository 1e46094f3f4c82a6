"""``capcast target``: which cells of an inventory an alert targets, and how well they fit."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError


def register(commands: Commands) -> None:
    """Add ``capcast target``."""
    parser = commands.command(
        "target", "target an alert's area on a cell inventory and report the fit",
        description="Find the cells of INVENTORY that cover the area of a CAP alert, per "
                    "operator, and report overshoot (targeted coverage outside the area) and "
                    "undershoot (area no targeted cell covers) under several policies.")
    parser.add_argument("--cells", required=True, metavar="INVENTORY",
                        help="inventory file written by `capcast cells import` or `cells synth`")
    parser.add_argument("--alert", required=True, metavar="FILE", help="CAP alert (XML)")
    parser.add_argument("--min-overlap", type=float, default=0.0, metavar="F",
                        help="keep cells with at least this fraction of their coverage in the "
                             "area (0, the default, keeps every cell that intersects it)")
    parser.add_argument("--geodata", metavar="DIR",
                        help="folder of boundary files to resolve geocodes (SAME/FIPS, NUTS, "
                             "ISO 3166...), laid out like tests/geodata")
    parser.add_argument("--geocodes", choices=("union", "fallback"), default="fallback",
                        help="geocodes add to polygons and circles (union) or are used only "
                             "when an area has neither (fallback, the default, as WEA does)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--svg", metavar="OUT", help="write an SVG map of the targeting")
    parser.set_defaults(handler=_cmd_target)


def _cmd_target(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np

    from cap.errors import CapError
    from cap.parse import parse_alert
    from geo.areas import alert_geometry
    from geo.errors import GeoError
    from geo.geocodes import default_registry
    from geo.index import CellIndex
    from geo.inventory import Inventory
    from geo.report import targeting_report, to_svg

    if not 0.0 <= args.min_overlap <= 1.0:
        raise UsageError(f"--min-overlap must be between 0 and 1, not {args.min_overlap}")
    try:
        alert = parse_alert(Path(args.alert).read_bytes(), max_bytes=4 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read {args.alert}: {exc.strerror}") from None
    except CapError as exc:
        out.write(f"{args.alert}: {exc}\n")
        return EXIT_INVALID
    started = time.perf_counter()
    try:
        inventory = Inventory.load(args.cells)
    except OSError as exc:
        raise UsageError(f"cannot read {args.cells}: {exc.strerror}") from None
    except GeoError as exc:
        raise UsageError(str(exc)) from None
    index = CellIndex.from_inventory(inventory)
    loaded = time.perf_counter()
    registry = default_registry(args.geodata) if args.geodata else None
    area = alert_geometry(alert, registry=registry, geocodes=args.geocodes)
    result = index.target(area.geometry, min_overlap=0.0)
    report = targeting_report(area.geometry, polygons=inventory.polygons,
                              operators=inventory.operators,
                              any_indices=np.asarray(result.indices), overlap=result.overlap,
                              min_overlap=args.min_overlap)
    elapsed_ms = (time.perf_counter() - loaded) * 1000.0
    if args.svg:
        Path(args.svg).write_text(to_svg(report, polygons=inventory.polygons,
                                         operators=inventory.operators), encoding="utf-8")
    operators: dict[str, Any] = {}
    for name in report.outcomes:
        chosen = report.chosen(name)
        operators[name] = {"cells": sorted(str(c) for c in inventory.cell_ids[chosen.indices]),
                           "overshoot_km2": round(chosen.overshoot_km2, 3),
                           "undershoot_km2": round(chosen.undershoot_km2, 3)}
    if args.json:
        out.write(json.dumps({"alert": alert.identifier, "operators": operators,
                              "elapsed_ms": round(elapsed_ms, 3),
                              "load_ms": round((loaded - started) * 1000.0, 3),
                              "area_km2": round(report.area_km2, 3),
                              "notes": [note.message for note in area.notes]}) + "\n")
        return EXIT_OK
    out.write(f"alert {alert.identifier}: area {report.area_km2:,.1f} km², min_overlap "
              f"{args.min_overlap:g}, {len(inventory):,} cells loaded in "
              f"{(loaded - started) * 1000:,.0f} ms, targeted in {elapsed_ms:,.1f} ms\n")
    for note in area.notes:
        out.write(f"  note: {note.path}: {note.message}\n")
    for name, by_policy in report.outcomes.items():
        out.write(f"  {name}:\n")
        for policy, outcome in by_policy.items():
            mark = "*" if outcome is report.chosen(name) else " "
            out.write(f"   {mark}{policy:12} {outcome.cell_count:>7,} cells  overshoot "
                      f"{outcome.overshoot_km2:>10,.1f} km² (reaching "
                      f"{outcome.overshoot_max_km:,.1f} km out)  undershoot "
                      f"{outcome.undershoot_km2:>10,.1f} km²\n")
    if args.svg:
        out.write(f"  map written to {args.svg}\n")
    return EXIT_OK
