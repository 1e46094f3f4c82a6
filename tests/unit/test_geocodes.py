"""The geocode registry on the real boundary files of tests/geodata."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import shapely

from geo.areas import geodesic_area_km2
from geo.errors import GeodataError, GeoError, InvalidGeoInput
from geo.geocodes import (
    GeocodeKey,
    GeocodeRegistry,
    GeocodeStatus,
    KeyTransform,
    default_registry,
    iso3166_numeric_key,
    nuts_key,
    same_county_key,
    same_state_key,
    ugc_county_key,
)

GEODATA = Path(__file__).resolve().parents[1] / "geodata"
SQ_MILE_KM2 = 2.589988110336


@pytest.fixture(scope="module")
def registry() -> GeocodeRegistry:
    return default_registry(GEODATA)


def only(file: str, value_name: str, *, transform: KeyTransform | None = None,
         layer: str | None = None) -> GeocodeRegistry:
    """A registry of one file, to check that file on its own."""
    reg = GeocodeRegistry()
    reg.add_file(GEODATA / file, value_name=value_name, transform=transform, layer=layer)
    return reg


def county_properties(fips: str) -> dict[str, object]:
    features = json.loads((GEODATA / "us-counties-fips.geojson").read_bytes())["features"]
    return next(f["properties"] for f in features if f["id"] == fips)


# -- lazy loading ------------------------------------------------------------------


def test_default_registry_reads_nothing_until_asked() -> None:
    reg = default_registry(GEODATA)
    assert reg.loaded_files() == ()
    assert {"SAME", "FIPS6", "UGC", "NUTS3", "ISO3166", "WARNCELLID"} <= set(reg.value_names())
    assert reg.lookup("NUTS3", "DE300").found
    assert [Path(p).name for p in reg.loaded_files()] == ["nuts-2021-60m-4326-levels0-3.geojson"]


def test_preload_reads_every_file() -> None:
    reg = default_registry(GEODATA)
    reg.preload()
    loaded = {Path(p).name for p in reg.loaded_files()}
    expected = {p.name for p in GEODATA.iterdir() if p.suffix == ".json" or p.suffix == ".geojson"}
    assert loaded == expected


def test_lookups_from_many_threads_share_one_load() -> None:
    reg = default_registry(GEODATA)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: reg.resolve("WARNCELLID", "803159016"), range(32)))
    assert all(g is found[0] for g in found)  # one index, built once


# -- US counties: SAME, FIPS6, UGC ------------------------------------------------------


def test_same_los_angeles_county(registry: GeocodeRegistry) -> None:
    result = registry.lookup("SAME", "006037")
    assert result.status is GeocodeStatus.FOUND
    assert result.name == "Los Angeles" and result.key == "06037"
    assert result.geometry is not None and result.geometry.is_valid
    assert result.geometry.covers(shapely.Point(-118.2437, 34.0522))  # downtown LA
    # The census land area (CENSUSAREA, sq mi) of the same record. LA County's
    # often-quoted 12,300 km² includes its coastal water, which a cartographic
    # (shoreline) boundary does not.
    land = float(county_properties("06037")["CENSUSAREA"]) * SQ_MILE_KM2  # type: ignore[arg-type]
    assert geodesic_area_km2(result.geometry) == pytest.approx(land, rel=0.03)


def test_value_names_and_keys_are_case_insensitive(registry: GeocodeRegistry) -> None:
    la = registry.resolve("SAME", "006037")
    assert registry.resolve("same", " 006037 ") is la
    assert registry.resolve("Fips6", "006037") is la
    assert registry.resolve("nuts3", "de300") is registry.resolve("NUTS3", "DE300")


def test_same_subdivision_is_the_whole_county_with_a_note(registry: GeocodeRegistry) -> None:
    result = registry.lookup("SAME", "106037")
    assert result.status is GeocodeStatus.APPROXIMATED
    assert result.geometry is registry.resolve("SAME", "006037")
    assert result.note is not None and "subdivision 1" in result.note


def test_same_state_code_is_the_state(registry: GeocodeRegistry) -> None:
    result = registry.lookup("SAME", "006000")
    assert result.found and result.name == "California"
    assert result.source == "us-atlas-states-10m.topo.json#states"
    # Cross-check two independent files: the state against the sum of its counties.
    features = json.loads((GEODATA / "us-counties-fips.geojson").read_bytes())["features"]
    counties = [f["id"] for f in features if f["id"].startswith("06") and len(f["id"]) == 5]
    assert len(counties) == 58
    total = sum(geodesic_area_km2(registry.resolve("FIPS6", "0" + c)) for c in counties)
    assert geodesic_area_km2(result.geometry) == pytest.approx(total, rel=0.03)


@pytest.mark.parametrize(("ugc", "fips"), [("NVC013", "032013"), ("FLC105", "012105"),
                                           ("nvc013", "032013")])
def test_ugc_county_codes(registry: GeocodeRegistry, ugc: str, fips: str) -> None:
    result = registry.lookup("UGC", ugc)
    assert result.found
    assert result.geometry is registry.resolve("FIPS6", fips)
    assert result.name == county_properties(fips[1:])["NAME"]


def test_ugc_zone_codes_are_not_derivable(registry: GeocodeRegistry) -> None:
    result = registry.lookup("UGC", "NVZ013")
    assert result.status is GeocodeStatus.NOT_DERIVABLE and result.geometry is None
    assert result.note is not None and "zone" in result.note


def test_ugc_state_table_covers_the_states_file() -> None:
    states = json.loads((GEODATA / "us-atlas-states-10m.topo.json").read_bytes())
    ids = {g["id"] for g in states["objects"]["states"]["geometries"]}
    abbreviations = (
        "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
        "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI")
    produced = [ugc_county_key(f"{abbr}C001") for abbr in abbreviations.split()]
    assert all(isinstance(k, str) for k in produced)
    assert {str(k)[:2] for k in produced} == ids
    assert len(set(produced)) == len(produced)


def test_us_atlas_counties_agree_with_the_geojson(registry: GeocodeRegistry) -> None:
    atlas = only("us-atlas-counties-10m.topo.json", "SAME", transform=same_county_key,
                 layer="counties")
    a = atlas.lookup("SAME", "006037")
    assert a.found and a.name == "Los Angeles"
    b = registry.resolve("SAME", "006037")
    assert geodesic_area_km2(a.geometry) == pytest.approx(geodesic_area_km2(b), rel=0.02)
    assert geodesic_area_km2(shapely.symmetric_difference(a.geometry, b)) < \
        0.03 * geodesic_area_km2(b)


def test_unknown_county(registry: GeocodeRegistry) -> None:
    result = registry.lookup("SAME", "099999")
    assert result.status is GeocodeStatus.NOT_FOUND and result.geometry is None
    assert result.note is not None and "99999" in result.note


# -- NUTS ------------------------------------------------------------------------------


def test_nuts_berlin(registry: GeocodeRegistry) -> None:
    result = registry.lookup("NUTS3", "DE300")
    assert result.found and result.name == "Berlin"
    assert result.geometry.covers(shapely.Point(13.3777, 52.5163))  # Brandenburger Tor
    # 891 km² officially; the 1:60 million generalisation is coarse
    assert geodesic_area_km2(result.geometry) == pytest.approx(891.1, rel=0.10)


def test_nuts_level_mislabelled_is_used_with_a_remark(registry: GeocodeRegistry) -> None:
    result = registry.lookup("NUTS2", "DE8")  # as in a DWD-to-MeteoAlarm corpus file
    assert result.status is GeocodeStatus.FOUND and result.name == "Mecklenburg-Vorpommern"
    assert result.note is not None and "level 1" in result.note
    assert registry.lookup("NUTS", "DE8").note is None


def test_nuts_versions(registry: GeocodeRegistry) -> None:
    # Meteo-France alerts in the corpus use NUTS 2013 codes (FR714, Rhône), which
    # NUTS 2016 renumbered (FRK26): the 2021 file does not have them, and says so.
    old = registry.lookup("NUTS3", "FR714")
    assert old.status is GeocodeStatus.NOT_FOUND
    assert "nuts-2021" in str(old.note)
    assert registry.lookup("NUTS3", "FRK26").name == "Rhône"
    assert registry.lookup("NUTS3", "FR101").name == "Paris"


# -- world countries (TopoJSON) ----------------------------------------------------------


@pytest.mark.parametrize("value", ["242", "FJ", "fji", "Fiji"])
def test_fiji_by_any_iso_code(registry: GeocodeRegistry, value: str) -> None:
    assert registry.resolve("ISO3166", value) is registry.resolve("ISO 3166-1", "242")


@pytest.mark.parametrize("file", ["world-atlas-countries-50m.topo.json",
                                  "world-atlas-countries-110m.topo.json"])
def test_fiji_crosses_the_antimeridian_as_two_sides(file: str) -> None:
    reg = only(file, "ISO3166", transform=iso3166_numeric_key, layer="countries")
    fiji = reg.resolve("ISO3166", "242")
    assert fiji.is_valid and fiji.geom_type == "MultiPolygon"
    xmin, _, xmax, _ = fiji.bounds
    assert xmin == -180.0 and xmax == 180.0
    assert not fiji.intersects(shapely.box(-170.0, -90.0, 170.0, 90.0))  # no band round the globe
    # Fiji is 18,274 km²; 1:110m is coarser
    assert geodesic_area_km2(fiji) == pytest.approx(18274.0, rel=0.03 if "50m" in file else 0.08)


def test_russia_chukotka_and_antarctica(registry: GeocodeRegistry) -> None:
    russia = registry.resolve("ISO3166", "RU")
    assert russia.is_valid
    assert geodesic_area_km2(russia) == pytest.approx(17_098_246.0, rel=0.03)
    assert russia.intersects(shapely.box(-180.0, 64.0, -172.0, 70.0))  # Chukotka, west of 180
    assert not russia.covers(shapely.Point(0.0, 60.0))
    antarctica = registry.resolve("ISO3166", "AQ")
    assert antarctica.is_valid
    for lon in (-179.0, 0.0, 90.0, 179.0):
        assert antarctica.covers(shapely.Point(lon, -85.0))
    assert not antarctica.intersects(shapely.Point(0.0, -55.0))
    usa = registry.resolve("ISO3166", "US")
    assert usa.intersects(shapely.box(172.4, 52.7, 173.4, 53.0))  # Attu, east of 180
    assert usa.intersects(shapely.box(-177.0, 51.6, -176.4, 52.0))  # Adak


def test_iso_codes_that_are_not_countries(registry: GeocodeRegistry) -> None:
    result = registry.lookup("http://www.iso.org/iso/country_codes.html", "AU-NSW")
    assert result.status is GeocodeStatus.NOT_DERIVABLE
    assert "subdivision" in str(result.note)
    assert registry.lookup("ISO3166", "XY").status is GeocodeStatus.NOT_DERIVABLE


# -- DWD warn cells ----------------------------------------------------------------------


def test_dwd_warncells(registry: GeocodeRegistry) -> None:
    goettingen = registry.lookup("WARNCELLID", "803159016")
    assert goettingen.found and goettingen.name == "Stadt Göttingen"
    assert goettingen.geometry.covers(shapely.Point(9.9355, 51.5413))
    muenster = registry.lookup("warncellid", "705515101")
    assert muenster.found and muenster.geometry.covers(shapely.Point(7.62, 51.98))
    assert registry.lookup("WARNCELLID", "803159007").status is GeocodeStatus.NOT_FOUND


def test_unknown_value_names(registry: GeocodeRegistry) -> None:
    for name in ("EMMA_ID", "profile:CAP-CP:Location:0.3", "STATE"):
        result = registry.lookup(name, "AT001")
        assert result.status is GeocodeStatus.UNKNOWN_NAME and result.geometry is None


# -- key transforms ------------------------------------------------------------------------


def test_same_county_key() -> None:
    assert same_county_key("006037") == "06037"
    assert same_county_key("06037") == "06037"
    sub = same_county_key("306037")
    assert isinstance(sub, GeocodeKey) and sub.key == "06037" and sub.approximate
    for value in ("006000", "000000", "6037", "ABCDEF"):
        key = same_county_key(value)
        assert isinstance(key, GeocodeKey) and key.key is None and key.note
    assert same_state_key("048000") == "48"
    assert isinstance(same_state_key("048201"), GeocodeKey)


def test_ugc_and_iso_and_nuts_keys() -> None:
    assert ugc_county_key(" nvc013 ") == "32013"
    assert isinstance(ugc_county_key("XXC001"), GeocodeKey)
    assert isinstance(ugc_county_key("NVC13"), GeocodeKey)
    assert iso3166_numeric_key("4") == "004"
    assert iso3166_numeric_key("DE") == "276"
    assert nuts_key(" de300 ") == "DE300"
    remark = nuts_key("DE3", level=3)
    assert isinstance(remark, GeocodeKey) and remark.key == "DE3" and remark.note
    assert isinstance(nuts_key("D"), GeocodeKey)


# -- the registry API -------------------------------------------------------------------------


def test_add_geometries_and_fallback_order() -> None:
    reg = GeocodeRegistry()
    first = shapely.box(0, 0, 1, 1)
    second = shapely.box(5, 5, 6, 6)
    reg.add_geometries("ZONE", {"A1": first}, label="zones-a")
    reg.add_geometries("zone", {"a1": second, "B2": second}, label="zones-b")
    assert reg.resolve("Zone", "a1") is first
    assert reg.lookup("ZONE", "B2").source == "zones-b"
    assert reg.sources("ZONE") == ("zones-a", "zones-b")
    assert reg.value_names() == ("ZONE",)
    with pytest.raises(InvalidGeoInput):
        reg.add_geometries("  ", {})


def test_transform_decides_the_key() -> None:
    reg = GeocodeRegistry()
    reg.add_geometries("CODE", {"7": shapely.box(0, 0, 1, 1)},
                       transform=lambda v: v.lstrip("0") or None)
    assert reg.resolve("CODE", "0007") is not None
    assert reg.lookup("CODE", "000").status is GeocodeStatus.NOT_DERIVABLE


def test_missing_and_broken_files(tmp_path: Path) -> None:
    reg = GeocodeRegistry()
    with pytest.raises(GeodataError, match="no such file"):
        reg.add_file(tmp_path / "nope.geojson", value_name="X")
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    reg.add_file(broken, value_name="X")  # lazy: not read yet
    with pytest.raises(GeodataError) as info:
        reg.lookup("X", "1")
    assert info.value.path == str(broken) and isinstance(info.value, GeoError)
    bare = tmp_path / "bare.geojson"
    bare.write_text('{"type": "Point", "coordinates": [0, 0]}')
    reg.add_file(bare, value_name="Y")
    with pytest.raises(GeodataError, match="FeatureCollection"):
        reg.lookup("Y", "1")
    with pytest.raises(GeodataError, match="no such folder"):
        default_registry(tmp_path / "absent")


def test_unknown_topojson_layer_lists_the_layers() -> None:
    reg = only("us-atlas-states-10m.topo.json", "S", layer="provinces")
    with pytest.raises(GeodataError, match="nation, states"):
        reg.lookup("S", "06")


def test_property_ids_and_feature_ids(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "id": 17, "properties": {"code": "A", "id": "p1"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {"code": "A", "id": "p2"},
         "geometry": {"type": "Polygon", "coordinates": [[[1, 0], [2, 0], [2, 1], [1, 0]]]}},
        {"type": "Feature", "id": 18, "properties": {"code": "B"}, "geometry": None},
    ]
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    reg = GeocodeRegistry()
    reg.add_file(path, value_name="BYID")
    reg.add_file(path, value_name="BYCODE", id_property="code")
    reg.add_file(path, value_name="ID", id_property="id")
    assert reg.resolve("BYID", "17").area == pytest.approx(0.5)
    assert reg.resolve("BYID", "18") is None  # no geometry
    assert reg.resolve("BYCODE", "A").area == pytest.approx(1.0)  # two features, one key
    # "id": the feature id where there is one, else the property
    assert reg.resolve("ID", "17") is not None and reg.resolve("ID", "p2") is not None


def test_topojson_decoding(tmp_path: Path) -> None:
    # A 4 x 2 rectangle in two squares sharing the middle arc (used reversed by
    # the second), quantized with scale 0.5 and translate (10, 20), plus a
    # square with a hole and a point.
    topology = {
        "type": "Topology",
        "transform": {"scale": [0.5, 0.5], "translate": [10, 20]},
        "arcs": [
            [[4, 0], [0, 4]],                         # 0: middle, (12,20)->(12,22)
            [[4, 4], [-4, 0], [0, -4], [4, 0]],       # 1: west square rest
            [[4, 0], [4, 0], [0, 4], [-4, 0]],        # 2: east square rest
            [[0, 10], [8, 0], [0, 8], [-8, 0], [0, -8]],   # 3: big square (10..14, 25..29)
            [[2, 12], [0, 4], [4, 0], [0, -4], [-4, 0]],   # 4: hole (11..13, 26..28)
        ],
        "objects": {"shapes": {"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "id": "west", "arcs": [[0, 1]]},
            {"type": "Polygon", "id": "east", "arcs": [[2, -1]]},
            {"type": "Polygon", "id": "holed", "arcs": [[3], [4]]},
            {"type": "Point", "id": "pt", "coordinates": [2, 2]},
        ]}},
    }
    path = tmp_path / "t.topo.json"
    path.write_text(json.dumps(topology))
    reg = GeocodeRegistry()
    reg.add_file(path, value_name="T")
    west, east = reg.resolve("T", "west"), reg.resolve("T", "east")
    assert west.normalize().equals(shapely.box(10, 20, 12, 22).normalize())
    assert east.normalize().equals(shapely.box(12, 20, 14, 22).normalize())
    holed = reg.resolve("T", "holed")
    assert holed.area == pytest.approx(16.0 - 4.0)
    assert not holed.covers(shapely.Point(12, 27))
    assert reg.resolve("T", "pt").equals(shapely.Point(11, 21))
