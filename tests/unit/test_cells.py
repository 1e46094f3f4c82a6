"""Cell inventories: identifiers, importers, bad-row reporting, coverage geometry, files, synth."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.cells import (
    MAX_RANGE_M,
    MIN_RANGE_M,
    ImportRefused,
    Inventory,
    InventoryError,
    import_cells,
    read_geojson,
    read_opencellid,
    read_plmn_names,
    read_sectors,
)
from geo.errors import GeoError, InvalidGeoInput
from geo.inventory import (
    RADIOS,
    CellId,
    arrow_to_str,
    format_cell_ids,
    format_cgi,
    format_ecgi,
    format_ncgi,
    parse_cell_id,
    read_summary,
)
from geo.synth import (
    OMNI_BEAMWIDTH,
    VERTICES,
    circle_polygons,
    destination,
    sector_polygons,
    synthesize,
)

GEOD = Geod(ellps="WGS84")

OPENCELLID_HEADER = ("radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,"
                     "updated,averageSignal")

# Real-looking OpenCelliD rows: real PLMNs and cities, plausible LAC/TAC, cell ids and ranges.
OPENCELLID_ROWS = [
    "GSM,262,1,21701,30141,0,13.377704,52.516275,1623,27,1,1437146587,1513264553,0",
    "UMTS,262,2,41075,88437781,256,6.958249,50.941357,2184,54,1,1387196587,1541064553,0",
    "LTE,262,3,45601,27043341,171,11.575382,48.137108,912,103,1,1466106587,1581064553,-97",
    "LTE,208,1,12012,34567,380,2.294694,48.858093,512,18,1,1455106587,1591064553,0",
    "LTE,310,410,11003,26877441,301,-74.005974,40.712776,0,1,1,1459468800,1591012345,0",
    "NR,310,260,1245183,5312356129,411,-122.419418,37.774929,650,7,1,1601012345,1691012345,0",
    "LTE,440,10,4107,123456789,12,139.691711,35.689487,50000,40,1,1459468800,1591012345,0",
    "LTE,505,1,12290,134742025,87,151.209290,-33.868820,1437,61,1,1459468800,1591012345,0",
    "GSM,542,1,10,1201,0,178.441895,-18.141600,4200,9,1,1459468800,1591012345,0",
    "UMTS,724,5,12150,1711042,180,-46.633308,-23.550520,2300,33,1,1459468800,1591012345,0",
    "CDMA,310,4139,12,999,,-97.743057,30.267153,3000,2,1,1459468800,1591012345,0",
]
EXPECTED_IDS = [
    "262-01-21701-30141", "262-02-41075-88437781", "262-03-27043341", "208-01-34567",
    "310-410-26877441", "310-260-5312356129", "440-10-123456789", "505-01-134742025",
    "542-01-10-1201", "724-05-12150-1711042", "310-4139-12-999",
]


def write(path: Path, lines: list[str], *, newline: str = "\n") -> Path:
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def geodesic(site: tuple[float, float], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward azimuths and distances from a site to points (lon, lat rows)."""
    n = len(points)
    az, _, dist = GEOD.inv(np.full(n, site[0]), np.full(n, site[1]), points[:, 0], points[:, 1])
    return np.asarray(az), np.asarray(dist)


def angle_between(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


# -- cell identifiers -----------------------------------------------------------------


def test_cell_id_examples() -> None:
    assert format_cgi(262, 1, 4711, 12345) == "262-01-4711-12345"
    assert format_cgi(1, 1, 0, 0) == "001-01-0-0"
    assert format_cgi(208, 15, 9, 268435455, radio="UMTS") == "208-15-9-268435455"
    assert format_ecgi(310, 410, 26877441, mnc_digits=3) == "310-410-26877441"
    assert format_ecgi(310, 10, 5, mnc_digits=3) == "310-010-5"
    assert format_ecgi(310, 10, 5, mnc_digits=2) == "310-10-5"
    assert format_ncgi(1, 1, (1 << 36) - 1) == "001-01-68719476735"
    assert parse_cell_id("262-01-0012-0345") == CellId(mcc=262, mnc=1, mnc_digits=2, area=12,
                                                       cell=345)
    assert parse_cell_id("262-01-0012-0345").text == "262-01-12-345"
    assert parse_cell_id("310-010-123", "LTE").text == "310-010-123"


@pytest.mark.parametrize(("call", "reason"), [
    (lambda: format_cgi(262, 1, 4711, 65536), "16 bits"),
    (lambda: format_cgi(262, 1, 65536, 1), "LAC"),
    (lambda: format_cgi(262, 1, 1, 1 << 28, radio="UMTS"), "28 bits"),
    (lambda: format_ecgi(262, 1, 1 << 28), "28 bits"),
    (lambda: format_ncgi(262, 1, 1 << 36), "36 bits"),
    (lambda: format_ecgi(262, 100, 1), "MNC"),
    (lambda: format_ecgi(1000, 1, 1), "MCC"),
    (lambda: format_cgi(262, 1, 1, 1, radio="LTE"), "CGI"),
    (lambda: parse_cell_id("262-01-1", "GSM"), "mcc-mnc-lac-ci"),
    (lambda: parse_cell_id("262-01-1-1", "LTE"), "mcc-mnc-cell"),
    (lambda: parse_cell_id("26-01-1"), "not a CGI"),
    (lambda: parse_cell_id("262-1-1", "LTE"), "2 or 3 digits"),
    (lambda: parse_cell_id("262-01-1", "WIMAX"), "valid: GSM"),
])
def test_cell_id_refusals(call: object, reason: str) -> None:
    with pytest.raises(InvalidGeoInput, match=reason):
        call()  # type: ignore[operator]


_LIMITS = {"GSM": (999, 0xFFFF, 0xFFFF), "UMTS": (999, 0xFFFF, (1 << 28) - 1),
           "LTE": (999, None, (1 << 28) - 1), "NR": (999, None, (1 << 36) - 1),
           "CDMA": (0x7FFF, 0xFFFF, 0xFFFF)}


@st.composite
def cell_values(draw: st.DrawFn) -> tuple[str, int, int, int, int | None, int]:
    radio = draw(st.sampled_from(RADIOS))
    mnc_max, area_max, cell_max = _LIMITS[radio]
    digits = 1 if radio == "CDMA" else draw(st.sampled_from([2, 3]))
    mnc = draw(st.integers(0, mnc_max if radio == "CDMA" else (99 if digits == 2 else 999)))
    area = None if area_max is None else draw(st.integers(0, area_max))
    cell = draw(st.one_of(st.integers(0, cell_max), st.sampled_from([0, cell_max])))
    return radio, draw(st.integers(0, 999)), mnc, digits, area, cell


def reference_text(radio: str, mcc: int, mnc: int, digits: int, area: int | None,
                   cell: int) -> str:
    mnc_text = str(mnc) if radio == "CDMA" else str(mnc).zfill(digits)
    parts = [str(mcc).zfill(3), mnc_text, *([] if area is None else [str(area)]), str(cell)]
    return "-".join(parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(cell_values(), min_size=1, max_size=30))
def test_cell_ids_vectorized_scalar_and_parse_agree(
        rows: list[tuple[str, int, int, int, int | None, int]]) -> None:
    radio, mcc, mnc, digits, area, cell = zip(*rows, strict=True)
    vectorized = format_cell_ids(list(radio), list(mcc), list(mnc),
                                 [a or 0 for a in area], list(cell), list(digits))
    assert vectorized.dtype.kind == "U"
    for text, row in zip(vectorized.tolist(), rows, strict=True):
        r, m, n, d, a, c = row
        assert text == reference_text(*row)
        parsed = parse_cell_id(text, r)
        assert (parsed.mcc, parsed.mnc, parsed.area, parsed.cell) == (m, n, a, c)
        assert parsed.text == text
        if r == "LTE":
            assert format_ecgi(m, n, c, mnc_digits=d) == text
        elif r == "NR":
            assert format_ncgi(m, n, c, mnc_digits=d) == text
        elif r in ("GSM", "UMTS"):
            assert format_cgi(m, n, a or 0, c, mnc_digits=d, radio=r) == text


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["GSM", "UMTS", "LTE", "NR"]), st.integers(1, 1 << 20))
def test_cell_identity_one_past_its_bits_is_refused(radio: str, excess: int) -> None:
    cell_max = _LIMITS[radio][2]
    if radio in ("GSM", "UMTS"):
        format_cgi(262, 1, 1, cell_max, radio=radio)
        with pytest.raises(InvalidGeoInput):
            format_cgi(262, 1, 1, cell_max + excess, radio=radio)
    else:
        fmt = format_ecgi if radio == "LTE" else format_ncgi
        fmt(262, 1, cell_max)
        with pytest.raises(InvalidGeoInput):
            fmt(262, 1, cell_max + excess)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789-abcé€ ", max_size=25), min_size=1, max_size=20))
def test_arrow_to_str_matches_python(values: list[str]) -> None:
    import pyarrow as pa

    result = arrow_to_str(pa.array(values, pa.string()))
    assert result.tolist() == values
    assert arrow_to_str(pa.array(values, pa.string()).slice(1)).tolist() == values[1:]
    assert arrow_to_str(pa.array(values).dictionary_encode()).tolist() == values


# -- OpenCelliD -------------------------------------------------------------------------


@pytest.fixture
def opencellid_file(tmp_path: Path) -> Path:
    return write(tmp_path / "cell_towers.csv", [OPENCELLID_HEADER, *OPENCELLID_ROWS])


def test_opencellid_import(opencellid_file: Path) -> None:
    result = read_opencellid(opencellid_file)
    inventory = result.inventory
    assert result.rows == len(OPENCELLID_ROWS) and result.skipped == 0 and not result.problems
    assert inventory.cell_ids.tolist() == EXPECTED_IDS
    assert inventory.radio.tolist() == [row.split(",")[0] for row in OPENCELLID_ROWS]
    # Without a PLMN table operators are named mcc-mnc, with the MNC's width.
    assert inventory.operators.tolist()[:5] == ["262-01", "262-02", "262-03", "208-01",
                                                 "310-410"]
    assert inventory.operators[-1] == "310-4139"
    assert inventory.source == "opencellid:cell_towers.csv"
    expected_sites = [(float(r.split(",")[6]), float(r.split(",")[7])) for r in OPENCELLID_ROWS]
    np.testing.assert_array_equal(inventory.sites, expected_sites)
    assert set(shapely.get_type_id(inventory.polygons).tolist()) == {3}
    assert shapely.is_valid(inventory.polygons).all()
    # Ranges 0 and 50 km are clamped, and the notes say so.
    assert any("1 range below 100 m raised" in note for note in result.notes)
    assert any("1 range above 35 km lowered" in note for note in result.notes)
    for i, row in enumerate(OPENCELLID_ROWS):
        expected = min(max(float(row.split(",")[8]), MIN_RANGE_M), MAX_RANGE_M)
        ring = np.asarray(inventory.polygons[i].exterior.coords)
        assert len(ring) == VERTICES and np.array_equal(ring[0], ring[-1])
        _, dist = geodesic(expected_sites[i], ring[:-1])
        np.testing.assert_allclose(dist, expected, rtol=1e-4)


def test_progress_bars_on_request(opencellid_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    result = read_opencellid(opencellid_file, progress=True)
    result.inventory.save(tmp_path / "inventory.parquet", progress=True)
    Inventory.load(tmp_path / "inventory.parquet", progress=True)
    bars = capsys.readouterr().err
    for stage in ("reading cell_towers.csv", "coverage", "writing inventory.parquet",
                  "loading inventory.parquet"):
        assert stage in bars
    read_opencellid(opencellid_file, progress=False)
    assert capsys.readouterr().err == ""


def test_opencellid_without_header_crlf_blank_lines_and_gzip(tmp_path: Path,
                                                             opencellid_file: Path) -> None:
    reference = read_opencellid(opencellid_file).inventory
    plain = write(tmp_path / "no-header.csv", ["", *OPENCELLID_ROWS[:3], "", *OPENCELLID_ROWS[3:]],
                  newline="\r\n")
    packed = tmp_path / "cell_towers.csv.gz"
    packed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + opencellid_file.read_bytes()))
    for path in (plain, packed):
        inventory = read_opencellid(path).inventory
        assert inventory.cell_ids.tolist() == reference.cell_ids.tolist()
        np.testing.assert_array_equal(inventory.sites, reference.sites)
        assert shapely.equals_exact(inventory.polygons, reference.polygons, 0.0).all()
    # Line numbers count the blank lines: a bad row after them is reported where it is.
    bad = write(tmp_path / "bad.csv", ["", *OPENCELLID_ROWS[:2], "", "GSM,262,1,1"],
                newline="\r\n")
    with pytest.raises(ImportRefused) as refused:
        read_opencellid(bad)
    assert [(p.line, p.reason) for p in refused.value.problems] == [
        (5, "expected 14 fields, found 4")]


def test_opencellid_operator_names_and_mnc_width(tmp_path: Path, opencellid_file: Path) -> None:
    table = write(tmp_path / "plmn.csv", ["plmn,name", "# Germany", "262-01,Telekom",
                                          "262-02,Vodafone", "262-03,Telefonica",
                                          "310-410,AT&T", '505-01,"Telstra, Australia"'])
    names = read_plmn_names(table)
    assert names["505-01"] == "Telstra, Australia"
    inventory = read_opencellid(opencellid_file, plmn_names=names).inventory
    assert inventory.operators.tolist()[:5] == ["Telekom", "Vodafone", "Telefonica", "208-01",
                                                 "AT&T"]
    assert inventory.operators[7] == "Telstra, Australia"
    # A three-digit MNC in the table widens the identifiers of that network.
    json_table = tmp_path / "plmn.json"
    json_table.write_text(json.dumps({"262-001": "Telekom (3-digit)"}))
    widened = read_opencellid(opencellid_file, plmn_names=read_plmn_names(json_table)).inventory
    assert widened.cell_ids[0] == "262-001-21701-30141"
    assert widened.operators[0] == "Telekom (3-digit)"
    # --operator names every cell.
    assert set(read_opencellid(opencellid_file, operator="Probe").inventory.operators) == {
        "Probe"}
    # An MNC written with a leading zero keeps three digits; MCC 310 always has three.
    rows = ["LTE,262,010,1,1,0,13.4,52.5,500,1,1,1,1,0", "LTE,310,10,1,2,0,-80,40,500,1,1,1,1,0",
            "LTE,262,10,1,3,0,13.4,52.5,500,1,1,1,1,0"]
    inventory = read_opencellid(write(tmp_path / "mnc.csv", rows)).inventory
    assert inventory.cell_ids.tolist() == ["262-010-1", "310-010-2", "262-10-3"]


@pytest.mark.parametrize("path_text", ["line 1: PLMN 'Telekom'", "no operator name"])
def test_plmn_table_errors_name_the_line(tmp_path: Path, path_text: str) -> None:
    lines = ["Telekom,262-01"] if "PLMN" in path_text else ["262-01,"]
    with pytest.raises(InventoryError, match=path_text):
        read_plmn_names(write(tmp_path / "plmn.csv", lines))


GOOD = OPENCELLID_ROWS[0]
# Every kind of bad OpenCelliD row: the row and the words the report must contain.
BAD_OPENCELLID = {
    "too few fields": ("GSM,262,1,21701,30142,0,13.37,52.51", "expected 14 fields, found 8"),
    "too many fields": (GOOD.replace("30141", "30143") + ",7", "expected 14 fields, found 15"),
    "unknown radio": (GOOD.replace("GSM", "WIMAX").replace("30141", "30144"),
                      "unknown radio 'WIMAX' (valid: GSM, UMTS, LTE, NR, CDMA)"),
    "non-numeric mcc": (GOOD.replace("262", "26x").replace("30141", "30145"),
                        "mcc '26x' is not a non-negative whole number"),
    "non-numeric cell": (GOOD.replace("30141", "0x1F"), "cell '0x1F' is not a non-negative"),
    "negative area": (GOOD.replace("21701", "-5"), "area '-5' is not a non-negative"),
    "non-numeric lon": (GOOD.replace("13.377704", "13,37").replace("30141", "30146"),
                        "expected 14 fields, found 15"),
    "lon text": (GOOD.replace("13.377704", "east").replace("30141", "30147"),
                 "lon 'east' is not a number"),
    "lat nan": (GOOD.replace("52.516275", "nan").replace("30141", "30148"),
                "lat 'nan' is not a number"),
    "lat out of range": (GOOD.replace("52.516275", "95.1").replace("30141", "30149"),
                         "lat 95.1 is out of range -90..90"),
    "lon out of range": (GOOD.replace("13.377704", "-181").replace("30141", "30150"),
                         "lon -181 is out of range -180..180"),
    "negative range": (GOOD.replace(",1623,", ",-20,").replace("30141", "30151"),
                       "range -20 is negative"),
    "range text": (GOOD.replace(",1623,", ",far,").replace("30141", "30152"),
                   "range 'far' is not a number"),
    "gsm ci past 16 bits": (GOOD.replace("30141", "65536"),
                            "cell 65536 is out of range 0..65535 for GSM (CI (16 bits))"),
    "lte eci past 28 bits": (OPENCELLID_ROWS[2].replace("27043341", "268435456"),
                             "cell 268435456 is out of range 0..268435455 for LTE"),
    "nr nci past 36 bits": (OPENCELLID_ROWS[5].replace("5312356129", "68719476736"),
                            "out of range 0..68719476735 for NR"),
    "lac past 16 bits": (GOOD.replace("21701", "65536").replace("30141", "30153"),
                         "area (LAC/TAC) 65536 is out of range 0..65535 for GSM"),
    "mnc past 999": (GOOD.replace(",1,21701", ",1000,21701"),
                     "net (MNC/SID) 1000 is out of range 0..999"),
    "reaches the pole": (GOOD.replace("52.516275", "89.995").replace("30141", "30156"),
                         "coverage of 1623 m around lat 89.995 would reach a pole"),
    "mcc past 999": (GOOD.replace("262", "2620").replace("30141", "30154"),
                     "mcc 2620 is out of range 0..999"),
    "duplicate": (GOOD.replace("13.377704", "13.4"),
                  "duplicate cell id 262-01-21701-30141 (first on line 2)"),
    "not utf-8": ("GSM,262,1,21701,30155,0,13.37,52.51,1623,27,1,\xff,1,0", "not UTF-8 text"),
}


@pytest.mark.parametrize("kind", sorted(BAD_OPENCELLID))
def test_opencellid_bad_rows_refused_or_skipped(tmp_path: Path, kind: str) -> None:
    bad_row, reason = BAD_OPENCELLID[kind]
    rows = [OPENCELLID_HEADER, *OPENCELLID_ROWS[:4], bad_row, *OPENCELLID_ROWS[4:]]
    path = tmp_path / "towers.csv"
    path.write_bytes("\n".join(rows).encode("utf-8").replace("\xff".encode(), b"\xff") + b"\n")
    with pytest.raises(ImportRefused) as refused:
        read_opencellid(path)
    error = refused.value
    assert error.count == 1
    assert [p.line for p in error.problems] == [6]
    assert reason in error.problems[0].reason
    assert "line 6: " in str(error) and "nothing was imported" in str(error)
    assert isinstance(error, GeoError)
    skipped = read_opencellid(path, on_error="skip")
    assert skipped.skipped == 1 and skipped.rows == len(OPENCELLID_ROWS) + 1
    assert [p.line for p in skipped.problems] == [6]
    assert skipped.inventory.cell_ids.tolist() == EXPECTED_IDS


def test_many_bad_rows_report_the_first_and_the_count(tmp_path: Path) -> None:
    rows = [OPENCELLID_HEADER]
    for i in range(300):
        rows.append(f"LTE,262,1,1,{i},0,13.4,52.5,500,1,1,1,1,0")
        rows.append(f"LTE,262,1,1,{1000 + i},0,13.4,91,500,1,1,1,1,0")  # bad: lat
    path = write(tmp_path / "many.csv", rows)
    with pytest.raises(ImportRefused) as refused:
        read_opencellid(path, max_problems=5)
    assert refused.value.count == 300
    assert [p.line for p in refused.value.problems] == [3, 5, 7, 9, 11]
    assert "... and 295 more" in str(refused.value)
    result = read_opencellid(path, on_error="skip", max_problems=3)
    assert (len(result.inventory), result.skipped, len(result.problems)) == (300, 300, 3)


def test_everything_bad_or_nothing_there(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", [OPENCELLID_HEADER, "GSM,1", "GSM,2"])
    with pytest.raises(ImportRefused, match="all 2 rows are bad"):
        read_opencellid(bad, on_error="skip")
    with pytest.raises(InventoryError, match="no data rows"):
        read_opencellid(write(tmp_path / "empty.csv", [OPENCELLID_HEADER, ""]))
    header_only = tmp_path / "header-only.csv"
    header_only.write_text(OPENCELLID_HEADER)
    with pytest.raises(InventoryError, match="no data rows"):
        read_opencellid(header_only)
    with pytest.raises(InventoryError, match="cannot read"):
        read_opencellid(tmp_path / "missing.csv")
    with pytest.raises(InvalidGeoInput, match="valid: refuse, skip"):
        read_opencellid(bad, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidGeoInput, match="valid: opencellid, sectors, geojson"):
        import_cells(bad, "kml")


def test_opencellid_circle_across_the_antimeridian(tmp_path: Path) -> None:
    # Taveuni, Fiji, sits on the 180th meridian.
    path = write(tmp_path / "fiji.csv", [
        "GSM,542,1,20,3301,0,179.995,-16.85,6000,4,1,1459468800,1591012345,0",
        "GSM,542,1,20,3302,0,-179.998,-16.90,3000,4,1,1459468800,1591012345,0"])
    inventory = read_opencellid(path).inventory
    for polygon, (lon, lat), radius in zip(inventory.polygons, inventory.sites, (6000, 3000),
                                           strict=True):
        assert polygon.geom_type == "MultiPolygon"
        assert shapely.contains_xy(polygon, lon, lat)
        parts = list(polygon.geoms)
        assert len(parts) == 2
        assert {round(p.bounds[0]) for p in parts} | {round(p.bounds[2]) for p in parts} >= {
            -180, 180}
        for part in parts:
            assert part.bounds[0] >= -180.0 and part.bounds[2] <= 180.0
        area = abs(GEOD.geometry_area_perimeter(polygon)[0])
        n = VERTICES - 1
        inscribed = 0.5 * n * radius**2 * math.sin(2 * math.pi / n)
        assert area == pytest.approx(inscribed, rel=0.01)


# -- sectors ----------------------------------------------------------------------------

SECTOR_HEADER = "cell_id,operator,radio,lon,lat,azimuth_deg,beamwidth_deg,range_m"
# Fiji: Vodafone and Digicel sites on Taveuni and Vanua Levu, next to the antimeridian.
FIJI_SECTORS = [
    "542-01-100-1,Vodafone Fiji,GSM,179.98,-16.78,90,65,8000",
    "542-01-100-2,Vodafone Fiji,GSM,179.98,-16.78,210,65,8000",
    "542-01-100-3,Vodafone Fiji,GSM,179.98,-16.78,330,65,8000",
    "542-02-26877441,Digicel Fiji,LTE,-179.99,-16.5,270,90,12000",
    "542-02-26877442,Digicel Fiji,LTE,179.33,-16.58,0,360,5000",
]


def test_sectors_across_the_antimeridian(tmp_path: Path) -> None:
    result = read_sectors(write(tmp_path / "fiji.csv", [SECTOR_HEADER, *FIJI_SECTORS]))
    inventory = result.inventory
    assert inventory.cell_ids.tolist() == [row.split(",")[0] for row in FIJI_SECTORS]
    assert inventory.operator_names() == ["Digicel Fiji", "Vodafone Fiji"]
    kinds = [p.geom_type for p in inventory.polygons]
    # East-facing and the Digicel west-facing wedges cross 180; the others do not.
    assert kinds == ["MultiPolygon", "Polygon", "Polygon", "MultiPolygon", "Polygon"]
    for i, (polygon, row) in enumerate(zip(inventory.polygons, FIJI_SECTORS, strict=True)):
        fields = row.split(",")
        beamwidth, range_m = float(fields[6]), float(fields[7])
        assert shapely.is_valid(polygon)
        assert polygon.bounds[0] >= -180.0 and polygon.bounds[2] <= 180.0
        area = abs(GEOD.geometry_area_perimeter(polygon)[0])
        if beamwidth >= OMNI_BEAMWIDTH:
            n = VERTICES - 1
            expected = 0.5 * n * range_m**2 * math.sin(2 * math.pi / n)
        else:
            steps = VERTICES - 3
            expected = 0.5 * steps * range_m**2 * math.sin(math.radians(beamwidth) / steps)
        assert area == pytest.approx(expected, rel=0.01), i
        if polygon.geom_type == "MultiPolygon":
            west, east = sorted(polygon.geoms, key=lambda p: p.bounds[0])
            assert west.bounds[0] == -180.0 and east.bounds[2] == 180.0


def check_wedge(polygon: shapely.Polygon, site: tuple[float, float], azimuth: float,
                beamwidth: float, range_m: float) -> None:
    ring = np.asarray(polygon.exterior.coords)
    assert len(ring) == VERTICES
    if beamwidth < OMNI_BEAMWIDTH:
        # Apex at the site, then the arc, then the apex again.
        assert tuple(ring[0]) == site and tuple(ring[-1]) == site
        arc = ring[1:-1]
        az, dist = geodesic(site, arc)
        assert np.all(np.abs(dist / range_m - 1.0) <= 0.005)
        assert np.all(angle_between(az, azimuth) <= beamwidth / 2 + 0.05)
        # The arc runs from azimuth + bw/2 down to azimuth - bw/2 (counter-clockwise).
        assert angle_between(az[0], azimuth + beamwidth / 2) <= 0.05
        assert angle_between(az[-1], azimuth - beamwidth / 2) <= 0.05
        middle = geodesic(site, np.asarray(destination(site[0], site[1], azimuth, range_m))
                          .reshape(1, 2))[0][0]
        assert angle_between(middle, azimuth) <= 0.05
    else:
        _, dist = geodesic(site, ring[:-1])
        assert np.all(np.abs(dist / range_m - 1.0) <= 0.005)
    assert shapely.is_ccw(polygon.exterior)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lon=st.floats(-175, 175), lat=st.floats(-84, 84), azimuth=st.floats(0, 360),
       beamwidth=st.one_of(st.floats(1, 360), st.sampled_from([358.999, 359.0, 360.0])),
       range_m=st.floats(100, 100_000))
def test_sector_geometry(lon: float, lat: float, azimuth: float, beamwidth: float,
                         range_m: float) -> None:
    polygon = sector_polygons([lon], lat, azimuth, beamwidth, range_m)[0]
    if polygon.geom_type == "Polygon":
        check_wedge(polygon, (lon, lat), azimuth, beamwidth, range_m)
    assert shapely.is_valid(polygon)


@settings(max_examples=50, deadline=None)
@given(lat=st.floats(-70, 70), azimuth=st.floats(0, 360), distance=st.floats(10, 35_000))
def test_destination_matches_geodesic(lat: float, azimuth: float, distance: float) -> None:
    lon2, lat2 = destination(10.0, lat, azimuth, distance)
    az, _, dist = GEOD.inv(10.0, lat, float(lon2), float(lat2))
    assert abs(dist / distance - 1.0) < 1e-4
    assert angle_between(az, azimuth) < 0.01 or distance < 1


def test_sector_table_with_reordered_header_quotes_and_defaults(tmp_path: Path) -> None:
    rows = ["range_m,azimuth_deg,beamwidth_deg,cell_id,operator,radio,lat,lon",
            '1500,45,60,262-01-4711-0012348,"Telekom, AG",GSM,52.5,13.4',
            "2000,0,360,262-02-26877441,,LTE,52.52,13.41",
            "900,120,65,262-03-00123456,Telefonica,lte,52.53,13.42"]
    result = read_sectors(write(tmp_path / "sectors.csv", rows), operator="Vodafone")
    inventory = result.inventory
    assert inventory.cell_ids.tolist() == ["262-01-4711-12348", "262-02-26877441",
                                           "262-03-123456"]
    assert inventory.operators.tolist() == ["Telekom, AG", "Vodafone", "Telefonica"]
    assert inventory.radio.tolist() == ["GSM", "LTE", "LTE"]
    assert result.notes == ("2 cell ids rewritten to the standard form (leading zeros "
                            "dropped)",)
    check_wedge(inventory.polygons[0], (13.4, 52.5), 45, 60, 1500)
    check_wedge(inventory.polygons[1], (13.41, 52.52), 0, 360, 2000)
    check_wedge(inventory.polygons[2], (13.42, 52.53), 120, 65, 900)


BAD_SECTORS = {
    "bad cell id": ("262-01-x,Telekom,GSM,13.4,52.5,0,65,1000", "cell_id '262-01-x' is not"),
    "id does not fit radio": ("262-01-4711-1,Telekom,LTE,13.4,52.5,0,65,1000",
                              "does not fit radio LTE (expected mcc-mnc-cell)"),
    "ci past 16 bits": ("262-01-4711-70000,Telekom,GSM,13.4,52.5,0,65,1000",
                        "CI (16 bits) value 70000 is out of range 0..65535"),
    "eci past 28 bits": ("262-01-268435456,Telekom,LTE,13.4,52.5,0,65,1000",
                         "ECI (28 bits) value 268435456"),
    "unknown radio": ("262-01-4711-2,Telekom,WIFI,13.4,52.5,0,65,1000", "unknown radio 'WIFI'"),
    "no operator": ("262-01-4711-3,,GSM,13.4,52.5,0,65,1000", "no operator"),
    "lat out of range": ("262-01-4711-4,Telekom,GSM,13.4,-91,0,65,1000",
                         "lat -91 is out of range"),
    "azimuth out of range": ("262-01-4711-5,Telekom,GSM,13.4,52.5,361,65,1000",
                             "azimuth_deg 361 is out of range 0..360"),
    "beamwidth zero": ("262-01-4711-6,Telekom,GSM,13.4,52.5,0,0,1000",
                       "beamwidth_deg 0 is out of range (0, 360]"),
    "beamwidth text": ("262-01-4711-7,Telekom,GSM,13.4,52.5,0,wide,1000",
                       "beamwidth_deg 'wide' is not a number"),
    "negative range": ("262-01-4711-8,Telekom,GSM,13.4,52.5,0,65,-1000",
                       "range_m -1000 is negative"),
    "range too far": ("262-01-4711-9,Telekom,GSM,13.4,52.5,0,65,250000", "beyond 100 km"),
    "reaches the pole": ("262-01-4711-11,Telekom,GSM,13.4,-89.5,0,65,60000",
                         "would reach a pole"),
    "field count": ("262-01-4711-10,Telekom,GSM,13.4,52.5,0,65", "expected 8 fields, found 7"),
    "duplicate": ("542-01-100-2,Vodafone Fiji,GSM,179.9,-16.7,0,65,1000",
                  "duplicate cell id 542-01-100-2 (first on line 3)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_SECTORS))
def test_sector_bad_rows(tmp_path: Path, kind: str) -> None:
    bad_row, reason = BAD_SECTORS[kind]
    path = write(tmp_path / "sectors.csv", [SECTOR_HEADER, *FIJI_SECTORS[:3], bad_row,
                                            *FIJI_SECTORS[3:]])
    with pytest.raises(ImportRefused) as refused:
        read_sectors(path)
    assert [p.line for p in refused.value.problems] == [5]
    assert reason in refused.value.problems[0].reason
    skipped = read_sectors(path, on_error="skip")
    assert skipped.skipped == 1 and len(skipped.inventory) == len(FIJI_SECTORS)


# -- GeoJSON ----------------------------------------------------------------------------


def feature(cell_id: object, geometry: object, **props: object) -> dict[str, object]:
    return {"type": "Feature", "properties": {"cell_id": cell_id, **props},
            "geometry": geometry}


def square(lon: float, lat: float, size: float = 0.01) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size],
            [lon, lat]]


def geojson_text(features: list[dict[str, object]]) -> str:
    """Pretty-printed like a planning tool's export: one feature starts every few lines."""
    return json.dumps({"type": "FeatureCollection", "name": "coverage", "features": features},
                      indent=1)


def test_geojson_import(tmp_path: Path) -> None:
    features = [
        feature("262-01-4711-12345", {"type": "Polygon", "coordinates": [square(13.4, 52.5)]},
                operator="Telekom", radio="GSM", lon=13.405, lat=52.505),
        feature("262-02-26877441", {"type": "MultiPolygon", "coordinates": [
            [square(13.5, 52.5)], [square(13.6, 52.5), square(13.602, 52.502, 0.004)]]},
            operator="Vodafone", radio="LTE"),
        # A bow-tie: invalid, repaired and reported.
        feature("262-03-123456", {"type": "Polygon", "coordinates": [
            [[13.7, 52.5], [13.8, 52.6], [13.8, 52.5], [13.7, 52.6], [13.7, 52.5]]]},
            operator="Telefonica"),
        # Drawn across the antimeridian with jumping longitudes: cut into two parts.
        feature("542-01-100-1", {"type": "Polygon", "coordinates": [
            [[179.9, -16.8], [-179.9, -16.8], [-179.9, -16.7], [179.9, -16.7], [179.9, -16.8]]]},
            operator="Vodafone Fiji", radio="GSM"),
        # The same shape in a continuous frame (longitudes past 180).
        feature("542-01-100-2", {"type": "Polygon", "coordinates": [
            [[179.9, -16.6], [180.1, -16.6], [180.1, -16.5], [179.9, -16.5], [179.9, -16.6]]]},
            operator="Vodafone Fiji"),
    ]
    path = tmp_path / "coverage.geojson"
    path.write_text(geojson_text(features))
    result = read_geojson(path)
    inventory = result.inventory
    assert inventory.cell_ids.tolist() == ["262-01-4711-12345", "262-02-26877441",
                                           "262-03-123456", "542-01-100-1", "542-01-100-2"]
    # Radios not given are guessed from the id (three parts: LTE; four with a 16-bit CI: GSM).
    assert inventory.radio.tolist() == ["GSM", "LTE", "LTE", "GSM", "GSM"]
    assert [p.geom_type for p in inventory.polygons] == ["Polygon", "MultiPolygon",
                                                         "MultiPolygon", "MultiPolygon",
                                                         "MultiPolygon"]
    assert len(inventory.polygons[1].geoms[1].interiors) == 1
    assert shapely.is_valid(inventory.polygons).all()
    for polygon in inventory.polygons[3:]:
        assert polygon.bounds[0] == -180.0 and polygon.bounds[2] == 180.0
        assert polygon.area == pytest.approx(0.2 * 0.1)
    np.testing.assert_array_equal(inventory.sites[0], [13.405, 52.505])
    assert shapely.contains_xy(inventory.polygons[1:], *inventory.sites[1:].T).all()
    notes = " | ".join(result.notes)
    assert "1 invalid polygon repaired" in notes
    assert "4 sites placed on the coverage" in notes
    assert "2 radios guessed from the cell id" in notes


def test_geojson_bad_features_with_lines(tmp_path: Path) -> None:
    good = feature("262-01-4711-1", {"type": "Polygon", "coordinates": [square(13.4, 52.5)]},
                   operator="Telekom")
    bad = [
        (feature("262-01-4711-2", {"type": "Point", "coordinates": [13.4, 52.5]},
                 operator="Telekom"), "the geometry is a Point"),
        (feature(None, {"type": "Polygon", "coordinates": [square(1, 1)]}, operator="Telekom"),
         "no cell_id property"),
        (feature(26201, {"type": "Polygon", "coordinates": [square(1, 1)]}, operator="T"),
         "cell_id 26201 is not a string"),
        (feature("262-01-4711-3", {"type": "Polygon", "coordinates": [square(1, 1)]}),
         "no operator property"),
        (feature("262-01-4711-4", None, operator="Telekom"), "no geometry"),
        (feature("262-01-4711-1", {"type": "Polygon", "coordinates": [square(2, 2)]},
                 operator="Telekom"), "duplicate cell id 262-01-4711-1"),
        (feature("262-01-4711-5", {"type": "Polygon", "coordinates": [square(13.4, 95)]},
                 operator="Telekom"), "latitudes 95..95.01 are out of range"),
        (feature("262-01-4711-6", {"type": "Polygon", "coordinates": [square(1, 1)]},
                 operator="Telekom", radio="WIMAX"), "unknown radio 'WIMAX'"),
        ({"type": "Topology"}, "not a GeoJSON Feature"),
    ]
    features = [good]
    for item, _ in bad:
        features.extend([item, feature(f"262-01-9-{len(features)}", {
            "type": "Polygon", "coordinates": [square(3, 3)]}, operator="Telekom")])
    text = json.dumps({"type": "FeatureCollection", "features": features}, indent=None)
    # One feature per line, as `ogr2ogr -f GeoJSONSeq`-style pretty printers write them.
    text = text.replace('{"type": "Feature"', '\n{"type": "Feature"').replace(
        '{"type": "Topology"}', '\n{"type": "Topology"}')
    path = tmp_path / "coverage.geojson"
    path.write_text(text)
    with pytest.raises(ImportRefused) as refused:
        read_geojson(path, max_problems=50)
    problems = refused.value.problems
    assert refused.value.count == len(bad)
    for problem, (_, reason), index in zip(problems, bad, range(1, 2 * len(bad), 2),
                                           strict=True):
        assert reason in problem.reason
        assert problem.feature == index
        assert problem.line == index + 2  # the collection's first line, then one per feature
    result = read_geojson(path, on_error="skip")
    assert len(result.inventory) == len(bad) + 1 and result.skipped == len(bad)


@pytest.mark.parametrize(("text", "message"), [
    ('{"type": "Feature", "features": []}', "not a FeatureCollection"),
    ('{"type": "FeatureCollection",\n "features": [\n {"type": "Feature",,}]}',
     "line 3, column"),
    ("[1, 2]", "expected '{'"),
    ('{"type": "FeatureCollection"}', "no 'features'"),
    ('{"type": "FeatureCollection", "features": []}', "no data rows"),
])
def test_geojson_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(text)
    with pytest.raises(InventoryError, match=message):
        read_geojson(path)


# -- the inventory and its file ---------------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    inventory = synthesize(3000, seed=7)
    path = tmp_path / "inventory.parquet"
    inventory.save(path)
    loaded = Inventory.load(path)
    assert loaded.equals(inventory)
    assert loaded.cell_ids.dtype.kind == "U" and loaded.operators.dtype.kind == "U"
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    # The file is GeoParquet with the native polygon encoding.
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata
    geo = json.loads(metadata[b"geo"])
    assert geo["columns"]["geometry"]["encoding"] == "polygon"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Polygon"]
    np.testing.assert_allclose(geo["columns"]["geometry"]["bbox"], inventory.bounds)
    summary = read_summary(path)
    assert summary.cells == 3000 and summary.operators == inventory.summary().operators
    assert summary.by_operator_radio == inventory.summary().by_operator_radio


def test_round_trip_with_multipolygons_and_empty(tmp_path: Path) -> None:
    fiji = synthesize(600, seed=3, bbox=(178.5, -19.0, -179.0, -16.0))
    assert {p.geom_type for p in fiji.polygons} == {"Polygon", "MultiPolygon"}
    path = tmp_path / "fiji.parquet"
    fiji.save(path)
    assert Inventory.load(path).equals(fiji)
    import pyarrow.parquet as pq

    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    empty = fiji.take(np.zeros(0, dtype=int))
    empty.save(tmp_path / "empty.parquet")
    loaded = Inventory.load(tmp_path / "empty.parquet")
    assert len(loaded) == 0 and loaded.equals(empty)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory"):
        Inventory.load(tmp_path / "none.parquet")
    text = tmp_path / "text.parquet"
    text.write_text("radio,mcc\n")
    with pytest.raises(InventoryError, match="not a GeoParquet inventory"):
        Inventory.load(text)
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1]}), plain)
    with pytest.raises(InventoryError, match="not GeoParquet"):
        Inventory.load(plain)


def test_inventory_operations() -> None:
    inventory = synthesize(900, seed=1)
    parts = inventory.by_operator()
    assert list(parts) == ["Alpha", "Bravo", "Charlie"]
    assert sum(len(p) for p in parts.values()) == 900
    for name, part in parts.items():
        assert set(part.operators.tolist()) == {name}
    joined = Inventory.concat(parts.values())
    assert sorted(joined.cell_ids.tolist()) == sorted(inventory.cell_ids.tolist())
    with pytest.raises(InventoryError, match="occur in more than one"):
        Inventory.concat([inventory, inventory.take([0, 1])])
    mask = inventory.radio == "NR"
    assert len(inventory.take(mask)) == int(mask.sum())
    with pytest.raises(InvalidGeoInput, match="one row per cell"):
        Inventory(cell_ids=["a"], operators=[], radio=[], polygons=[], sites=np.zeros((0, 2)))
    with pytest.raises(InvalidGeoInput, match="timezone"):
        from datetime import datetime

        Inventory(cell_ids=[], operators=[], radio=[], polygons=[], sites=[],
                  created=datetime(2026, 1, 1))


# -- the synthetic national inventory -----------------------------------------------------


def test_synth_is_deterministic_by_seed() -> None:
    first, again, other = synthesize(3000, seed=5), synthesize(3000, seed=5), synthesize(
        3000, seed=6)
    assert np.array_equal(first.cell_ids, again.cell_ids)
    assert np.array_equal(first.sites, again.sites)
    assert shapely.equals_exact(first.polygons, again.polygons, 0.0).all()
    assert not np.array_equal(first.sites, other.sites)


def test_synth_distribution() -> None:
    bbox = (5.9, 47.3, 15.0, 55.0)
    inventory = synthesize(30_000, seed=11, bbox=bbox)
    assert len(inventory) == 30_000 and len(np.unique(inventory.cell_ids)) == 30_000
    assert shapely.is_valid(inventory.polygons).all()
    lon, lat = inventory.sites.T
    assert (lon >= bbox[0]).all() and (lon <= bbox[2]).all()
    assert (lat >= bbox[1]).all() and (lat <= bbox[3]).all()
    # Three operators, each with its own PLMN.
    plmn = {op: {"-".join(i.split("-")[:2]) for i in inventory.cell_ids[inventory.operators == op]}
            for op in ("Alpha", "Bravo", "Charlie")}
    assert plmn == {"Alpha": {"001-01"}, "Bravo": {"001-02"}, "Charlie": {"001-03"}}
    counts = inventory.summary().operators
    assert counts["Alpha"] > counts["Bravo"] > counts["Charlie"] > 5000
    # Three 120-degree sectors per site: apex shared, azimuths 120 degrees apart.
    rings = shapely.get_coordinates(inventory.polygons[:300]).reshape(300, VERTICES, 2)
    np.testing.assert_array_equal(rings[:, 0], inventory.sites[:300])
    az, _ = geodesic(tuple(inventory.sites[0]), rings[:3, 1:-1].reshape(-1, 2))
    first_edges = az.reshape(3, VERTICES - 2)[:, 0]
    gaps = np.sort((first_edges - first_edges[0]) % 360)
    np.testing.assert_allclose(gaps, [0, 120, 240], atol=0.05)
    # Ranges: urban 0.3-2 km, rural 3-15 km, and most sites are urban.
    ranges = _ranges(inventory)
    assert ranges.min() >= 299 and ranges.max() <= 15_001
    assert not ((ranges > 2001) & (ranges < 2999)).any()
    urban_share = (ranges <= 2001).mean()
    assert 0.6 < urban_share < 0.8
    # Clustered: counts on a 20x20 grid vary far more than uniform (Poisson) counts would.
    grid, _, _ = np.histogram2d(lon, lat, bins=20, range=[bbox[0::2], bbox[1::2]])
    assert grid.var() / grid.mean() > 20
    radios = inventory.summary().radios
    assert radios["LTE"] > radios["NR"] > max(radios["GSM"], radios["UMTS"])


def _ranges(inventory: Inventory) -> np.ndarray:
    """Geodesic distance from each site to the middle of its arc."""
    rings = shapely.get_coordinates(inventory.polygons).reshape(len(inventory), VERTICES, 2)
    middle = rings[:, VERTICES // 2]
    _, _, dist = GEOD.inv(inventory.sites[:, 0], inventory.sites[:, 1], middle[:, 0],
                          middle[:, 1])
    return np.asarray(dist)


def test_synth_arguments() -> None:
    assert len(synthesize(0)) == 0
    assert len(synthesize(4, operators=("Solo",))) == 4
    with pytest.raises(InvalidGeoInput, match="non-negative"):
        synthesize(-1)
    with pytest.raises(InvalidGeoInput, match="distinct"):
        synthesize(10, operators=("A", "A"))
    with pytest.raises(InvalidGeoInput, match="lat0 < lat1"):
        synthesize(10, bbox=(5.0, 55.0, 15.0, 47.0))


def test_circle_polygons_scalar_and_array() -> None:
    one = circle_polygons(13.4, 52.5, 1000)
    many = circle_polygons([13.4, 2.35], [52.5, 48.85], [1000, 2000])
    assert len(one) == 1 and len(many) == 2
    assert shapely.equals_exact(one[0], many[0], 0.0)
    with pytest.raises(InvalidGeoInput, match="positive"):
        circle_polygons(13.4, 52.5, 0)
