"""``capcast target`` end to end: a synthetic inventory, a real DWD alert, JSON and SVG out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[2]
CAPCAST = Path(sys.executable).parent / "capcast"
# DWD heat warning for Kreis Ahrweiler (Rhineland-Palatinate), a 138-vertex polygon.
ALERT = REPO / "tests" / "corpus" / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CAPCAST), *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_target_json_and_svg(tmp_path: Path) -> None:
    inventory = tmp_path / "cells.parquet"
    made = run("cells", "synth", "--cells", "3000", "--seed", "7",
               "--bbox", "6.6,50.2,7.6,50.8", "--out", str(inventory))
    assert made.returncode == 0, made.stderr
    svg = tmp_path / "map.svg"
    result = run("target", "--cells", str(inventory), "--alert", str(ALERT),
                 "--min-overlap", "0.1", "--json", "--svg", str(svg))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["alert"] == "2.49.0.1.276.DWD.PVW.1437558240606.161"
    assert set(report["operators"]) == {"Alpha", "Bravo", "Charlie"}
    for outcome in report["operators"].values():
        assert set(outcome) == {"cells", "overshoot_km2", "undershoot_km2"}
        assert outcome["cells"] == sorted(outcome["cells"])
        assert outcome["overshoot_km2"] >= 0 and outcome["undershoot_km2"] >= 0
    assert sum(len(o["cells"]) for o in report["operators"].values()) > 10
    assert report["elapsed_ms"] > 0 and report["area_km2"] > 100
    root = ElementTree.fromstring(svg.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_target_refuses_a_bad_threshold_and_a_missing_inventory(tmp_path: Path) -> None:
    bad = run("target", "--cells", str(tmp_path / "none.parquet"), "--alert", str(ALERT),
              "--min-overlap", "1.5")
    assert bad.returncode == 2 and "--min-overlap must be between 0 and 1" in bad.stderr
    missing = run("target", "--cells", str(tmp_path / "none.parquet"), "--alert", str(ALERT))
    assert missing.returncode == 2 and "none.parquet" in missing.stderr
