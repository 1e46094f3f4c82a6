"""CAP areas to geometry: polygons, geodesic circles, geocodes, repairs, the corpus."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

import geo.areas
from cap import model
from cap.errors import CapError
from cap.parse import parse_alert
from geo.areas import (
    DEFAULT_TOLERANCE,
    AreaGeometry,
    GeocodeUse,
    SourceKind,
    alert_geometry,
    area_geometry,
    circle_geometry,
    circle_shape,
    circle_vertex_count,
    geodesic_area_km2,
    info_geometry,
    polygon_geometry,
)
from geo.errors import InvalidGeoInput
from geo.geocodes import GeocodeRegistry, default_registry

GEOD = Geod(ellps="WGS84")
GEODATA = Path(__file__).resolve().parents[1] / "geodata"
R_MEAN_KM = 6371.0088  # IUGG mean Earth radius, for spherical-cap cross-checks


@pytest.fixture(scope="module")
def registry() -> GeocodeRegistry:
    return default_registry(GEODATA)


def cap_polygon(lonlat: list[tuple[float, float]]) -> model.Polygon:
    """A CAP polygon (lat,lon points) from (lon, lat) pairs."""
    return model.Polygon(points=tuple((lat, lon) for lon, lat in lonlat))


def an_area(**parts: object) -> model.Area:
    return model.Area(area_desc="test area", **parts)  # type: ignore[arg-type]


def codes(result: AreaGeometry) -> list[str]:
    return [note.code for note in result.notes]


def geod_ring_km2(ring: np.ndarray) -> float:
    area, _ = GEOD.polygon_area_perimeter(ring[:, 0], ring[:, 1])
    return abs(area) / 1e6


def spherical_cap_km2(radius_km: float) -> float:
    return 2 * math.pi * R_MEAN_KM**2 * (1 - math.cos(radius_km / R_MEAN_KM))


def boundary_errors(lat: float, lon: float, radius_km: float, ring: np.ndarray,
                    samples: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Relative radius errors at the vertices, and along every straight lon/lat edge.

    Edges are sampled at ``samples - 1`` interior points (the midpoint among
    them), interpolated in the ring's continuous longitude frame: that is the
    segment shapely draws.
    """
    t = np.arange(1, samples) / samples
    a, b = ring[:-1], ring[1:]
    points = (a[:, None, :] * (1 - t)[None, :, None] + b[:, None, :] * t[None, :, None])
    points = points.reshape(-1, 2)
    _, _, d_vertices = GEOD.inv(np.full(len(ring), lon), np.full(len(ring), lat),
                                ring[:, 0], ring[:, 1])
    _, _, d_edges = GEOD.inv(np.full(len(points), lon), np.full(len(points), lat),
                             points[:, 0], points[:, 1])
    r = radius_km * 1000.0
    return np.abs(np.asarray(d_vertices) / r - 1), np.abs(np.asarray(d_edges) / r - 1)


# -- polygons --------------------------------------------------------------------


def test_polygon_reads_cap_lat_lon_pairs() -> None:
    # OASIS CAP 1.2 appendix example polygon (lat,lon)
    polygon = model.Polygon(points=((38.47, -120.14), (38.34, -119.95), (38.52, -119.74),
                                    (38.62, -119.89), (38.47, -120.14)))
    result = polygon_geometry(polygon, path="alert/info[0]/area[0]/polygon[0]")
    assert result.notes == ()
    assert result.geometry.bounds == (-120.14, 38.34, -119.74, 38.62)
    assert result.sources[0].kind is SourceKind.POLYGON
    assert result.sources[0].path == "alert/info[0]/area[0]/polygon[0]"


def test_area_output_is_counter_clockwise() -> None:
    clockwise = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.0)]
    assert not shapely.LinearRing(clockwise).is_ccw
    result = area_geometry(an_area(polygons=(cap_polygon(clockwise),)))
    assert result.geometry.exterior.is_ccw


def test_bowtie_is_repaired_and_reported() -> None:
    bowtie = [(10.0, 50.0), (10.2, 50.2), (10.2, 50.0), (10.0, 50.2), (10.0, 50.0)]
    result = area_geometry(an_area(polygons=(cap_polygon(bowtie),)),
                           path="alert/info[0]/area[1]")
    assert result.geometry.is_valid
    assert result.geometry.geom_type == "MultiPolygon" and len(result.geometry.geoms) == 2
    (note,) = result.notes
    assert note.code == "polygon-repaired"
    assert note.path == "alert/info[0]/area[1]/polygon[0]"
    assert "self-intersection at (10.10000, 50.10000)" in note.message
    assert "2 parts" in note.message
    # the two lobes, measured on their own
    left = np.array([(10.0, 50.0), (10.1, 50.1), (10.0, 50.2), (10.0, 50.0)])
    right = np.array([(10.2, 50.0), (10.2, 50.2), (10.1, 50.1), (10.2, 50.0)])
    lobes = geod_ring_km2(left) + geod_ring_km2(right)
    assert result.area_km2 == pytest.approx(lobes, rel=1e-6)
    assert f"covering {lobes:.3f} km²" in note.message
    assert "area changed by +" in note.message


def test_a_ring_looping_over_itself_keeps_the_overlap() -> None:
    loop = [(0.0, 0.0), (0.4, 0.0), (0.4, 0.4), (0.1, 0.4), (0.1, 0.1), (0.3, 0.1),
            (0.3, 0.3), (0.0, 0.3), (0.0, 0.0)]
    result = polygon_geometry(cap_polygon(loop))
    assert codes(result) == ["polygon-repaired"]
    # the square enclosed twice is part of the warned area, not a hole
    assert result.geometry.covers(shapely.Point(0.2, 0.2))


def test_a_collapsed_ring_keeps_its_line() -> None:
    line = [(5.0, 5.0), (5.1, 5.1), (5.2, 5.2), (5.0, 5.0)]
    result = polygon_geometry(cap_polygon(line))
    assert codes(result) == ["polygon-collapsed"]
    assert result.geometry.geom_type in ("LineString", "MultiLineString")
    assert result.geometry.length > 0


def test_fiji_cap_polygon_across_the_antimeridian() -> None:
    fiji = model.Polygon(points=((-16.2, 179.4), (-16.0, -179.6), (-17.0, -178.6),
                                 (-18.4, -178.9), (-18.9, 179.7), (-17.6, 179.2),
                                 (-16.2, 179.4)))
    result = area_geometry(an_area(polygons=(fiji,)))
    assert codes(result) == ["polygon-antimeridian"]
    geom = result.geometry
    assert geom.is_valid and geom.geom_type == "MultiPolygon"
    assert not geom.intersects(shapely.box(-178.0, -90.0, 178.0, 90.0))  # no band round the Earth
    assert not geom.covers(shapely.Point(0.0, -17.0))
    continuous = np.array([(lon % 360.0, lat) for lat, lon in fiji.points])
    assert result.area_km2 == pytest.approx(geod_ring_km2(continuous), rel=2e-3)
    assert geom.area == pytest.approx(shapely.Polygon(continuous).area, rel=1e-12)


def test_a_polygon_round_the_pole() -> None:
    lon = np.linspace(-180.0, 170.0, 36)
    ring = [(x, 75.0) for x in lon] + [(-180.0, 75.0)]
    result = polygon_geometry(cap_polygon(ring))
    assert "polygon-polar" in codes(result)
    assert result.geometry.covers(shapely.Point(0.0, 89.0))
    assert not result.geometry.covers(shapely.Point(0.0, 70.0))


# -- circles ---------------------------------------------------------------------

CIRCLES = [
    (3.0, 5.0, 7.0),            # cap2geojson's test circle
    (0.0, 0.0, 0.5),
    (45.0, 7.0, 50.0),
    (-33.9, 151.2, 25.0),       # Sydney
    (60.0, 25.0, 300.0),
    (-60.0, -70.0, 1000.0),
    (60.0, 100.0, 2500.0),
    (-21.2, -175.2, 300.0),     # Tonga (Tongatapu)
    (1.9, -157.4, 300.0),       # Kiribati (Kiritimati)
    (-17.3, -179.4, 300.0),     # Lau group, between Fiji and Tonga: crosses 180
    (1.4, 173.0, 900.0),        # Kiribati (Tarawa), far enough to cross 180
    (52.0, 179.0, 200.0),       # Aleutians (Amchitka): crosses 180
    (65.0, -179.0, 400.0),      # Chukotka: crosses 180
]


@pytest.mark.parametrize(("lat", "lon", "radius"), CIRCLES)
def test_circle_boundary_within_tolerance(lat: float, lon: float, radius: float) -> None:
    shape = circle_shape(lat, lon, radius)
    vertices, edges = boundary_errors(lat, lon, radius, shape.ring)
    assert vertices.max() < 1e-9  # vertices lie on the circle
    assert edges.max() <= DEFAULT_TOLERANCE  # so does every edge, within 0.1%
    assert shape.max_error <= DEFAULT_TOLERANCE / 2
    assert shape.vertices == len(shape.ring) - 1 >= circle_vertex_count()
    geom = shape.geometry
    assert geom.is_valid and not shape.poles
    assert geom.covers(shapely.Point(lon, lat))
    # the area: geodesic area of the ring itself, and the spherical cap
    assert geodesic_area_km2(geom) == pytest.approx(geod_ring_km2(shape.ring), rel=1e-6)
    assert geodesic_area_km2(geom) == pytest.approx(spherical_cap_km2(radius), rel=2e-3)
    if shape.crosses_antimeridian:
        assert geom.geom_type == "MultiPolygon"
        xmin, _, xmax, _ = geom.bounds
        assert xmin == -180.0 and xmax == 180.0
        # no band round the rest of the globe: the far side stays clear
        far = lon + 180.0 if lon <= 0.0 else lon - 180.0
        assert not geom.intersects(shapely.box(far - 90.0, lat - 1.0, far + 90.0, lat + 1.0))


def test_circles_that_should_cross_do() -> None:
    crossing = {(lat, lon) for lat, lon, r in CIRCLES if circle_shape(lat, lon, r)
                .crosses_antimeridian}
    assert crossing == {(-17.3, -179.4), (1.4, 173.0), (52.0, 179.0), (65.0, -179.0)}


def test_circle_vertex_count_follows_the_tolerance() -> None:
    assert circle_vertex_count(1e-3) == math.ceil(math.pi / math.acos(1 - 0.5e-3))
    assert circle_vertex_count(1e-4) > 3 * circle_vertex_count(1e-3)
    coarse = circle_shape(10.0, 10.0, 100.0, tolerance=1e-2)
    _, edges = boundary_errors(10.0, 10.0, 100.0, coarse.ring)
    assert 1e-3 < edges.max() <= 1e-2
    with pytest.raises(InvalidGeoInput, match="tolerance"):
        circle_vertex_count(0.0)


def test_circle_radius_zero_is_a_point() -> None:
    result = circle_geometry(model.Circle(lat=-9.34, lon=112.53, radius_km=0.0))
    assert result.geometry.equals(shapely.Point(112.53, -9.34))
    assert codes(result) == ["circle-point"]


def test_circle_round_the_north_pole() -> None:
    result = circle_geometry(model.Circle(lat=85.0, lon=0.0, radius_km=700.0))
    assert codes(result) == ["circle-polar"]
    geom = result.geometry
    assert geom.is_valid
    for lon in (-179.9, -90.0, 0.0, 90.0, 179.9):
        assert geom.covers(shapely.Point(lon, 89.9))
    assert geom.covers(shapely.Point(0.0, 80.0)) and not geom.covers(shapely.Point(180.0, 80.0))
    assert result.area_km2 == pytest.approx(spherical_cap_km2(700.0), rel=2e-3)
    shape = circle_shape(85.0, 0.0, 700.0)
    _, edges = boundary_errors(85.0, 0.0, 700.0, shape.ring)
    assert edges.max() <= DEFAULT_TOLERANCE


def test_circle_round_the_south_pole_and_centred_on_it() -> None:
    south = circle_shape(-89.0, 30.0, 300.0)
    assert south.poles == (-90.0,)
    assert south.geometry.covers(shapely.Point(-150.0, -89.9))
    on_pole = circle_shape(90.0, 0.0, 500.0)
    assert on_pole.poles == (90.0,)
    assert geodesic_area_km2(on_pole.geometry) == pytest.approx(spherical_cap_km2(500.0),
                                                                rel=2e-3)


def test_circle_containing_both_poles() -> None:
    shape = circle_shape(0.0, 0.0, 12000.0)
    assert shape.poles == (90.0, -90.0)
    geom = shape.geometry
    assert geom.covers(shapely.Point(0.0, 89.9)) and geom.covers(shapely.Point(0.0, -89.9))
    assert not geom.covers(shapely.Point(180.0, 0.0))  # the antipode
    assert geodesic_area_km2(geom) == pytest.approx(spherical_cap_km2(12000.0), rel=2e-3)
    _, edges = boundary_errors(0.0, 0.0, 12000.0, shape.ring)
    assert edges.max() <= DEFAULT_TOLERANCE


def test_circle_reaching_the_antipode_is_the_globe() -> None:
    result = circle_geometry(model.Circle(lat=10.0, lon=20.0, radius_km=20050.0))
    assert codes(result) == ["circle-whole-earth"]
    assert result.geometry.equals(shapely.box(-180, -90, 180, 90))


def test_circle_refuses_bad_input() -> None:
    with pytest.raises(InvalidGeoInput, match="radius"):
        circle_shape(0.0, 0.0, -1.0)
    with pytest.raises(InvalidGeoInput, match="latitude"):
        circle_shape(91.0, 0.0, 1.0)


def test_circle_against_cap2geojson(corpus: Path) -> None:
    ref = np.array(json.loads(
        (corpus / "geometry-expected/cap2geojson-circle_estimation.json").read_text()))
    theirs = shapely.Polygon(ref)
    ours = circle_geometry(model.Circle(lat=3.0, lon=5.0, radius_km=7.0)).geometry
    # their approximation strays up to ~0.6% from 7 km, ours 0.05%: the shapes
    # agree to within 1% of the radius
    _, their_errors = boundary_errors(3.0, 5.0, 7.0, ref)
    assert their_errors.max() > DEFAULT_TOLERANCE
    km_per_degree = 111.32
    assert shapely.hausdorff_distance(theirs, ours) * km_per_degree < 0.01 * 7.0
    assert geodesic_area_km2(ours) == pytest.approx(geodesic_area_km2(theirs), rel=0.015)


@settings(max_examples=120, deadline=None)
@given(lat=st.floats(-89.9, 89.9), lon=st.floats(-180.0, 180.0),
       radius=st.floats(0.01, 3000.0))
def test_property_random_circles_within_tolerance(lat: float, lon: float,
                                                  radius: float) -> None:
    shape = circle_shape(lat, lon, radius)
    vertices, edges = boundary_errors(lat, lon, radius, shape.ring, samples=4)
    assert vertices.max() < 1e-9
    assert edges.max() <= DEFAULT_TOLERANCE
    assert shape.geometry.is_valid and not shape.geometry.is_empty
    xmin, ymin, xmax, ymax = shape.geometry.bounds
    assert xmin >= -180.0 and xmax <= 180.0 and ymin >= -90.0 and ymax <= 90.0
    if not shape.poles:
        assert geodesic_area_km2(shape.geometry) == pytest.approx(
            geod_ring_km2(shape.ring), rel=1e-5)


# -- the large clockwise ring of cap2geojson ------------------------------------------


def test_large_left_hand_polygon(corpus: Path) -> None:
    ring = json.loads(
        (corpus / "geometry-expected/cap2geojson-large_left_hand_polygon.json").read_text())
    assert not shapely.LinearRing(ring).is_ccw
    area = an_area(polygons=(cap_polygon([tuple(p) for p in ring]),))
    start = time.perf_counter()
    result = area_geometry(area)
    elapsed = time.perf_counter() - start
    print(f"large left-hand polygon ({len(ring)} points): {elapsed * 1000:.2f} ms")
    assert result.notes == ()
    assert result.geometry.is_valid and result.geometry.exterior.is_ccw
    assert result.area_km2 == pytest.approx(geod_ring_km2(np.array(ring)), rel=1e-9)


# -- geocodes, exclusions and policies -------------------------------------------------


def test_geocodes_join_the_area(registry: GeocodeRegistry) -> None:
    same = model.ValuePair(value_name="SAME", value="006037")
    result = area_geometry(an_area(geocodes=(same,)), registry=registry)
    assert result.notes == ()
    assert result.geometry.equals(registry.resolve("SAME", "006037"))
    (source,) = result.sources
    assert source.kind is SourceKind.GEOCODE and "(Los Angeles)" in source.description


def test_geocode_notes(registry: GeocodeRegistry) -> None:
    geocodes = (model.ValuePair(value_name="SAME", value="106037"),
                model.ValuePair(value_name="EMMA_ID", value="AT001"),
                model.ValuePair(value_name="UGC", value="CAZ041"))
    result = area_geometry(an_area(geocodes=geocodes), registry=registry, path="a")
    assert codes(result) == ["geocode-approximated", "geocode-unknown-name",
                             "geocode-not-derivable"]
    assert [n.path for n in result.notes] == ["a/geocode[0]", "a/geocode[1]", "a/geocode[2]"]
    assert not result.is_empty


def test_only_unknown_geocodes_give_an_empty_area_with_notes(registry: GeocodeRegistry) -> None:
    result = area_geometry(an_area(geocodes=(model.ValuePair(value_name="EMMA_ID",
                                                             value="AT001"),)),
                           registry=registry)
    assert result.is_empty
    assert codes(result) == ["geocode-unknown-name", "area-empty"]
    no_registry = area_geometry(an_area(geocodes=(model.ValuePair(value_name="SAME",
                                                                  value="006037"),)))
    assert no_registry.is_empty and codes(no_registry)[0] == "geocode-unknown-name"


def test_exclude_polygon_is_cut_out() -> None:
    outer = cap_polygon([(9.0, 51.0), (10.0, 51.0), (10.0, 52.0), (9.0, 52.0), (9.0, 51.0)])
    hole = [(9.4, 51.4), (9.6, 51.4), (9.6, 51.6), (9.4, 51.6), (9.4, 51.4)]
    value = " ".join(f"{lat},{lon}" for lon, lat in hole) + " "
    exclude = model.ValuePair(value_name="EXCLUDE_POLYGON", value=value)
    result = area_geometry(an_area(polygons=(outer,), geocodes=(exclude,)))
    assert codes(result) == ["exclude-polygon"]
    assert not result.geometry.covers(shapely.Point(9.5, 51.5))
    whole = area_geometry(an_area(polygons=(outer,))).area_km2
    assert result.area_km2 == pytest.approx(whole - geod_ring_km2(np.array(hole)), rel=1e-6)
    assert [s.kind for s in result.sources] == [SourceKind.POLYGON, SourceKind.EXCLUDE]
    broken = model.ValuePair(value_name="exclude_polygon", value="51.0,9.0 52.0")
    bad = area_geometry(an_area(polygons=(outer,), geocodes=(broken,)))
    assert codes(bad) == ["exclude-polygon-invalid"] and bad.area_km2 == pytest.approx(whole)


def test_geocode_use_fallback(registry: GeocodeRegistry) -> None:
    square = cap_polygon([(-118.3, 34.0), (-118.2, 34.0), (-118.2, 34.1), (-118.3, 34.0)])
    same = model.ValuePair(value_name="SAME", value="006037")
    area = an_area(polygons=(square,), geocodes=(same,))
    union = area_geometry(area, registry=registry)
    fallback = area_geometry(area, registry=registry, geocodes="fallback")
    assert union.geometry.equals(registry.resolve("SAME", "006037"))
    assert fallback.geometry.equals(polygon_geometry(square).geometry)
    assert codes(fallback) == ["geocode-ignored"]
    only_codes = area_geometry(an_area(geocodes=(same,)), registry=registry,
                               geocodes=GeocodeUse.FALLBACK)
    assert not only_codes.is_empty
    with pytest.raises(InvalidGeoInput, match="'union', 'fallback'"):
        area_geometry(area, geocodes="sometimes")


# -- infos and alerts --------------------------------------------------------------------


def test_info_geometry_is_the_union_of_its_areas() -> None:
    a = an_area(polygons=(cap_polygon([(0, 0), (1, 0), (1, 1), (0, 0)]),))
    b = an_area(circles=(model.Circle(lat=0.5, lon=3.0, radius_km=10.0),))
    bowtie = an_area(polygons=(cap_polygon([(5, 5), (6, 6), (6, 5), (5, 6), (5, 5)]),))
    info = model.Info(categories=(model.Category.MET,), event="test",
                      urgency=model.Urgency.IMMEDIATE, severity=model.Severity.SEVERE,
                      certainty=model.Certainty.OBSERVED, areas=(a, b, bowtie))
    result = info_geometry(info)
    assert result.geometry.geom_type == "MultiPolygon" and len(result.geometry.geoms) == 4
    assert [n.path for n in result.notes] == ["info/area[2]/polygon[0]"]
    assert len(result.sources) == 3
    empty = info_geometry(model.Info(categories=(model.Category.MET,), event="test",
                                     urgency=model.Urgency.IMMEDIATE,
                                     severity=model.Severity.SEVERE,
                                     certainty=model.Certainty.OBSERVED))
    assert empty.is_empty and codes(empty) == ["info-no-area"]


def test_alert_with_repeated_languages(corpus: Path, registry: GeocodeRegistry) -> None:
    path = corpus / "dwd/2.49.0.0.276.0.DWD.PVW.1687514160000.20999218-5d5e-4761-b271-6c243f695568.MUL.xml"  # noqa: E501
    alert = parse_alert(path.read_bytes(), max_bytes=4 << 20)
    assert len(alert.infos) == 8
    whole = alert_geometry(alert, registry=registry)
    assert all(n.path.startswith("alert/info[0]/") for n in whole.notes)
    assert "exclude-polygon" in codes(whole)
    third = alert_geometry(alert, 3, registry=registry)
    assert third.geometry.equals(whole.geometry)
    assert all(n.path.startswith("alert/info[3]/") for n in third.notes)
    assert alert_geometry(alert, -1, registry=registry).geometry.equals(whole.geometry)
    with pytest.raises(InvalidGeoInput, match=r"0\.\.7"):
        alert_geometry(alert, 8, registry=registry)


def corpus_alerts(root: Path) -> list[tuple[str, model.Alert]]:
    alerts = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in (".xml", ".cap"):
            continue
        try:
            alerts.append((str(path.relative_to(root)),
                           parse_alert(path.read_bytes(), max_bytes=4 << 20)))
        except CapError:
            continue
    return alerts


UNRESOLVED = {"geocode-unknown-name", "geocode-not-derivable", "geocode-not-found",
              "area-empty", "info-no-area"}


def test_every_corpus_alert_becomes_geometry(corpus: Path, registry: GeocodeRegistry) -> None:
    alerts = corpus_alerts(corpus)
    assert len(alerts) >= 50
    areas = 0
    elapsed = 0.0
    for name, alert in alerts:
        start = time.perf_counter()
        result = alert_geometry(alert, registry=registry)
        elapsed += time.perf_counter() - start
        areas += sum(len(info.areas) for info in alert.infos)
        assert result.geometry.is_valid, name
        assert all(n.path.startswith("alert/info[") for n in result.notes), name
        has_shape = any(a.polygons or a.circles for i in alert.infos for a in i.areas)
        if has_shape:
            assert not result.is_empty, name
        if result.is_empty:
            # nothing but unresolved geocodes (or no area at all), each reported
            assert set(codes(result)) <= UNRESOLVED, name
            geocodes = sum(len(a.geocodes) for i in alert.infos for a in i.areas)
            assert geocodes == 0 or codes(result), name
        xmin, ymin, xmax, ymax = result.geometry.bounds if not result.is_empty else (0, 0, 0, 0)
        assert -180.0 <= xmin <= xmax <= 180.0 and -90.0 <= ymin <= ymax <= 90.0, name
    print(f"{len(alerts)} corpus alerts, {areas} areas: {elapsed * 1000:.1f} ms "
          f"({elapsed / max(areas, 1) * 1e6:.1f} µs per area)")


def test_every_note_code_is_documented() -> None:
    source = Path(geo.areas.__file__).read_text(encoding="utf-8")
    emitted = set(re.findall(r'code="([a-z-]+)"', source))
    emitted |= set(re.findall(r'GeocodeStatus\.[A-Z_]+: "([a-z-]+)"', source))
    emitted.add("geocode-remark")
    documented = set(re.findall(r"^``([a-z-]+)``", geo.areas.__doc__ or "", re.MULTILINE))
    assert emitted and emitted == documented
