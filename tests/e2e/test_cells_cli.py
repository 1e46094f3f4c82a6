"""``capcast cells import|synth|info`` as a user runs them: subprocesses, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geo.cells import Inventory

CAPCAST = Path(sys.executable).parent / "capcast"

HEADER = ("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,"
          "averageSignal")
ROWS = [
    "GSM,262,1,21701,30141,0,13.377704,52.516275,1623,27,1,1437146587,1513264553,0",
    "LTE,262,3,45601,27043341,171,11.575382,48.137108,912,103,1,1466106587,1581064553,-97",
    "LTE,208,1,12012,34567,380,2.294694,48.858093,512,18,1,1455106587,1591064553,0",
    "NR,310,260,1245183,5312356129,411,-122.419418,37.774929,650,7,1,1601012345,1691012345,0",
    "GSM,542,1,10,1201,0,178.441895,-18.141600,4200,9,1,1459468800,1591012345,0",
]
BAD = [
    "WIMAX,262,1,1,1,0,13.4,52.5,100,1,1,1,1,0",
    "LTE,262,3,45601,27043341,171,11.6,48.1,912,103,1,1466106587,1581064553,-97",
    "GSM,262,1,21701",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CAPCAST), *args], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture
def towers(tmp_path: Path) -> Path:
    path = tmp_path / "cell_towers.csv"
    path.write_text("\n".join([HEADER, ROWS[0], BAD[0], *ROWS[1:3], BAD[1], ROWS[3], BAD[2],
                               ROWS[4]]) + "\n")
    return path


@pytest.mark.parametrize("command", [["cells"], ["cells", "import"], ["cells", "synth"],
                                     ["cells", "info"]])
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: capcast cells" in result.stdout


def test_import_refuses_bad_rows_by_default(towers: Path, tmp_path: Path) -> None:
    out = tmp_path / "inventory.parquet"
    result = run("cells", "import", str(towers), "--format", "opencellid", "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not out.exists()
    assert "3 bad rows; nothing was imported" in result.stderr
    assert "line 3: unknown radio 'WIMAX'" in result.stderr
    assert "line 6: duplicate cell id 262-03-27043341 (first on line 4)" in result.stderr
    assert "line 8: expected 14 fields, found 4" in result.stderr


def test_import_skip_then_info(towers: Path, tmp_path: Path) -> None:
    out = tmp_path / "inventory.parquet"
    plmn = tmp_path / "plmn.csv"
    plmn.write_text("262-01,Telekom\n262-03,Telefonica\n")
    result = run("cells", "import", str(towers), "--format", "opencellid", "--on-error", "skip",
                 "--plmn-names", str(plmn), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "imported 5 cells" in result.stdout and "8 rows read" in result.stdout
    assert "skipped 3 bad rows:" in result.stdout
    for line in (3, 6, 8):
        assert f"  line {line}: " in result.stdout
    assert "Telekom: 1 cell (GSM 1)" in result.stdout
    assert " s\n" in result.stdout.splitlines()[0] + "\n"  # elapsed time
    inventory = Inventory.load(out)
    assert inventory.cell_ids.tolist() == ["262-01-21701-30141", "262-03-27043341",
                                           "208-01-34567", "310-260-5312356129",
                                           "542-01-10-1201"]
    info = run("cells", "info", str(out))
    assert info.returncode == 0, info.stderr
    assert "5 cells, 5 operators" in info.stdout
    assert "radios: GSM 2, LTE 2, NR 1" in info.stdout
    as_json = json.loads(run("cells", "info", "--json", str(out)).stdout)
    assert as_json["cells"] == 5
    assert as_json["operators"]["Telefonica"] == 1
    assert as_json["by_operator"]["310-260"] == {"NR": 1}
    lon0, lat0, lon1, lat1 = as_json["bounds"]
    assert lon0 < -122.4 and lon1 > 178.44 and lat0 < -18.14 and lat1 > 52.51


def test_import_json_output(towers: Path, tmp_path: Path) -> None:
    out = tmp_path / "inventory.parquet"
    result = run("cells", "import", str(towers), "--format", "opencellid", "--on-error", "skip",
                 "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cells"] == 5 and report["rows"] == 8 and report["skipped"] == 3
    assert [p["line"] for p in report["problems"]] == [3, 6, 8]
    assert report["elapsed_s"] >= 0
    refused = run("cells", "import", str(towers), "--format", "opencellid", "--json", "--out",
                  str(tmp_path / "other.parquet"))
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["bad_rows"] == 3


def test_import_sectors_and_geojson(tmp_path: Path) -> None:
    sectors = tmp_path / "sectors.csv"
    sectors.write_text("cell_id,operator,radio,lon,lat,azimuth_deg,beamwidth_deg,range_m\n"
                       "542-01-100-1,Vodafone Fiji,GSM,179.98,-16.78,90,65,8000\n"
                       "542-01-100-2,,GSM,179.98,-16.78,210,65,8000\n")
    out = tmp_path / "sectors.parquet"
    result = run("cells", "import", str(sectors), "--format", "sectors", "--operator", "Digicel",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    inventory = Inventory.load(out)
    assert inventory.operators.tolist() == ["Vodafone Fiji", "Digicel"]
    assert inventory.polygons[0].geom_type == "MultiPolygon"

    coverage = tmp_path / "coverage.geojson"
    coverage.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"cell_id": "262-01-4711-1", "operator": "Telekom"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[13.4, 52.5], [13.5, 52.5], [13.5, 52.6], [13.4, 52.5]]]]}},
        {"type": "Feature", "properties": {"cell_id": "262-01-4711-2"},
         "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}}]}, indent=1))
    result = run("cells", "import", str(coverage), "--format", "geojson", "--out",
                 str(tmp_path / "g.parquet"))
    assert result.returncode == 1
    assert "(feature 1): no operator property" in result.stderr
    result = run("cells", "import", str(coverage), "--format", "geojson", "--on-error", "skip",
                 "--out", str(tmp_path / "g.parquet"))
    assert result.returncode == 0, result.stderr
    assert "imported 1 cell from" in result.stdout and "skipped 1 bad row:" in result.stdout


def test_synth_and_info(tmp_path: Path) -> None:
    out = tmp_path / "synth.parquet"
    result = run("cells", "synth", "--cells", "3000", "--seed", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "synthesized 3,000 cells (seed 4)" in result.stdout
    info = json.loads(run("cells", "info", "--json", str(out)).stdout)
    assert info["cells"] == 3000
    assert sorted(info["operators"]) == ["Alpha", "Bravo", "Charlie"]
    assert info["source"] == "synth:cells=3000,seed=4,bbox=5.9,47.3,15,55"
    again = tmp_path / "again.parquet"
    assert run("cells", "synth", "--cells", "3000", "--seed", "4", "--out",
               str(again)).returncode == 0
    first, second = Inventory.load(out), Inventory.load(again)
    assert (first.cell_ids == second.cell_ids).all() and (first.sites == second.sites).all()
    empty = tmp_path / "empty.parquet"
    assert run("cells", "synth", "--cells", "0", "--out", str(empty)).returncode == 0
    info = json.loads(run("cells", "info", "--json", str(empty)).stdout)
    assert info["cells"] == 0 and info["bounds"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["cells", "import", "/nonexistent.csv", "--format", "opencellid", "--out", "x"],
     "no such file"),
    (["cells", "import", "/dev/null", "--format", "kml", "--out", "x"], "invalid choice"),
    (["cells", "synth", "--cells", "10", "--bbox", "1,2,3", "--out", "x"],
     "expected LON0,LAT0,LON1,LAT1"),
    (["cells", "synth", "--cells", "-5", "--out", "x"], "non-negative"),
    (["cells", "info", "/nonexistent.parquet"], "no such file"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_info_on_a_file_that_is_not_an_inventory(tmp_path: Path) -> None:
    path = tmp_path / "notes.parquet"
    path.write_text("hello")
    result = run("cells", "info", str(path))
    assert result.returncode == 1
    assert "not a GeoParquet inventory" in result.stderr
