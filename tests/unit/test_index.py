"""geo.CellIndex against the plain reference: STRtree, then GEOS intersection and area.

The reference is what DESIGN.md's targeting contract means: ``min_overlap=0``
is ``intersects`` on the lon/lat geometries (touching counts); ``f > 0`` is
area(cell ∩ area) / area(cell) >= f with both projected (vertex by vertex) to
the index's equal-area CRS. Sets must be identical, except cells whose
reference overlap is within 1e-6 of the threshold (rounding decides those).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import CellIndex
from geo.antimeridian import fix_antimeridian
from geo.crs import equal_area_for, lon_center
from geo.errors import GeoError, InvalidGeoInput
from geo.index import IndexHolder, TargetResult

TOLERANCE = 1e-6


# -- test data ---------------------------------------------------------------------------


def sector_cells(n: int, seed: int, *, bbox: tuple[float, float, float, float] = (
        9.0, 49.0, 11.0, 51.0), vertices: int = 18) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sector wedges (apex, arc, apex) of 0.3 to 8 km, some omni circles; three operators."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(bbox[0], bbox[2], n)
    lat = rng.uniform(bbox[1], bbox[3], n)
    radius_km = np.exp(rng.uniform(np.log(0.3), np.log(8.0), n))
    azimuth = rng.uniform(0, 360, n)
    width = rng.choice([65.0, 90.0, 120.0, 360.0], n)
    t = np.radians(azimuth[:, None] + np.linspace(-0.5, 0.5, vertices)[None, :] * width[:, None])
    dlat = radius_km[:, None] / 111.2 * np.cos(t)
    dlon = radius_km[:, None] / (111.2 * np.cos(np.radians(lat[:, None]))) * np.sin(t)
    polygons = np.empty(n, dtype=object)
    omni = width == 360.0
    ring_x = lon[:, None] + dlon
    ring_y = lat[:, None] + dlat
    polygons[omni] = shapely.polygons(np.stack([ring_x[omni, :-1], ring_y[omni, :-1]], -1))
    wedge_x = np.concatenate([lon[~omni, None], ring_x[~omni]], 1)
    wedge_y = np.concatenate([lat[~omni, None], ring_y[~omni]], 1)
    polygons[~omni] = shapely.polygons(np.stack([wedge_x, wedge_y], -1))
    ids = np.array([f"001-01-{i % 7}-{(i * 7919) % 100003}" for i in range(n)])
    operators = np.array(["Alpha", "Bravo", "Charlie"])[rng.integers(0, 3, n)]
    return ids, polygons, operators


def grid_cells(step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Square cells on an exact binary grid: shared edges and corners are exact."""
    xs = np.arange(8.0, 12.0, step)
    ys = np.arange(48.0, 52.0, step)
    boxes = [shapely.box(x, y, x + step, y + step) for y in ys for x in xs]
    ids = np.array([f"g-{i:04d}" for i in range(len(boxes))])
    return ids, np.array(boxes, dtype=object)


def reference(index: CellIndex, polygons: np.ndarray, area: shapely.Geometry,
              min_overlap: float) -> tuple[np.ndarray, dict[int, float]]:
    """Positions targeted by the plain method, and the overlap of every candidate."""
    tree = shapely.STRtree(polygons)
    candidates = tree.query(area, predicate="intersects")
    crs = index.crs
    projected_cells = crs.transform(polygons[candidates])
    projected_area = crs.transform(area)
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = shapely.area(shapely.intersection(projected_cells, projected_area)) / \
            shapely.area(projected_cells)
    overlap = np.nan_to_num(overlap)
    overlaps = dict(zip(candidates.tolist(), overlap.tolist(), strict=True))
    if min_overlap == 0.0:
        return np.sort(candidates), overlaps
    return np.sort(candidates[overlap >= min_overlap]), overlaps


def assert_same(index: CellIndex, polygons: np.ndarray, area: shapely.Geometry,
                min_overlap: float) -> TargetResult:
    result = index.target(area, min_overlap)
    expected, overlaps = reference(index, polygons, area, min_overlap)
    got = np.sort(result.indices)
    differ = np.setxor1d(expected, got)
    near = [int(i) for i in differ if abs(overlaps.get(int(i), 0.0) - min_overlap) <= TOLERANCE]
    assert sorted(set(differ.tolist()) - set(near)) == [], (
        f"min_overlap={min_overlap}: only in reference "
        f"{sorted(set(expected.tolist()) - set(got.tolist()))[:10]}, only in index "
        f"{sorted(set(got.tolist()) - set(expected.tolist()))[:10]}")
    # Overlaps agree with the reference for every cell returned.
    for position, value in zip(result.indices.tolist(), result.overlap.tolist(), strict=True):
        assert value == pytest.approx(overlaps.get(position, 0.0), abs=1e-9)
    return result


@pytest.fixture(scope="module")
def cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return sector_cells(3000, seed=7)


@pytest.fixture(scope="module")
def index(cells: tuple[np.ndarray, np.ndarray, np.ndarray]) -> CellIndex:
    ids, polygons, operators = cells
    return CellIndex.from_arrays(ids, polygons, operators)


def wobbly(cx: float, cy: float, radius: float, n: int, seed: int) -> shapely.Geometry:
    rng = np.random.default_rng(seed)
    angle = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = radius * rng.uniform(0.4, 1.0, n)
    ring = np.c_[cx + r * np.cos(angle) / math.cos(math.radians(cy)), cy + r * np.sin(angle)]
    return shapely.make_valid(shapely.Polygon(ring))


# -- the contract ------------------------------------------------------------------------


def test_result_fields_follow_the_contract(index: CellIndex, cells: tuple) -> None:
    ids, polygons, _ = cells
    area = wobbly(10.0, 50.0, 0.3, 40, seed=1)
    result = index.target(area)
    assert len(result) > 20
    assert result.cell_ids.dtype.kind == "U"
    assert list(result.cell_ids) == sorted(result.cell_ids)
    assert list(result.cell_ids) == list(ids[result.indices])
    assert result.indices.dtype == np.int64
    assert result.overlap.shape == result.indices.shape
    assert ((result.overlap >= 0) & (result.overlap <= 1)).all()
    assert_same(index, polygons, area, 0.0)


@pytest.mark.parametrize("min_overlap", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_agrees_with_reference_on_varied_areas(index: CellIndex, cells: tuple,
                                               min_overlap: float) -> None:
    _, polygons, _ = cells
    areas = [
        wobbly(10.0, 50.0, 0.4, 300, seed=2),  # a province-like outline
        wobbly(9.5, 49.5, 0.05, 12, seed=3),  # a storm
        shapely.Point(10.2, 50.3).buffer(0.2).difference(shapely.Point(10.2, 50.3).buffer(0.1)),
        shapely.MultiPolygon([wobbly(9.3, 49.3, 0.1, 20, seed=4),
                              wobbly(10.7, 50.7, 0.1, 20, seed=5)]),
        shapely.box(9.0, 49.0, 11.0, 51.0),  # everything
        shapely.box(20.0, 20.0, 21.0, 21.0),  # nothing
    ]
    for area in areas:
        assert_same(index, polygons, area, min_overlap)


def test_points_lines_and_collections_as_areas(index: CellIndex, cells: tuple) -> None:
    _, polygons, _ = cells
    line = shapely.LineString([(9.1, 49.1), (10.9, 50.9), (9.2, 50.8)])
    point = shapely.Point(polygons[5].representative_point())
    collection = shapely.GeometryCollection([line, wobbly(10.0, 50.0, 0.1, 16, seed=9)])
    for area in (line, point, shapely.MultiPoint([point, (10.5, 50.5)]), collection):
        result = assert_same(index, polygons, area, 0.0)
        assert len(result) > 0
    # A line has no area: no cell reaches a positive overlap through it.
    assert len(index.target(line, 0.1)) == 0
    assert len(index.target(collection, 0.1)) == len(
        index.target(wobbly(10.0, 50.0, 0.1, 16, seed=9), 0.1))


def test_empty_area_and_empty_result(index: CellIndex) -> None:
    for area in (shapely.Polygon(), shapely.GeometryCollection(), shapely.box(0, 0, 1, 1)):
        result = index.target(area, 0.0)
        assert len(result) == 0
        assert result.cell_ids.size == 0 and result.overlap.size == 0
        assert len(index.target(area, 0.5)) == 0


def test_touching_counts_for_min_overlap_zero() -> None:
    ids, boxes = grid_cells()
    index = CellIndex.from_arrays(ids, boxes)
    # Edges on grid lines: the neighbours across them touch along an edge or at a corner.
    area = shapely.box(9.0, 49.0, 10.0, 50.0)
    result = index.target(area)
    touching = np.flatnonzero(shapely.intersects(boxes, area))
    assert np.array_equal(np.sort(result.indices), touching)
    assert len(result) == 16  # 2 x 2 inside, 12 around them (edges and corners)
    # Projected, a lon/lat edge between the area's corners bends away from the cells'
    # vertices on it: overlaps come out a little under 1, as in the reference.
    inside = assert_same(index, boxes, area, 0.5)
    assert len(inside) == 4 and (inside.overlap > 0.99).all()
    # A vertex on a grid corner, a triangle whose edge runs along a grid line.
    corner = shapely.Polygon([(9.0, 49.0), (8.75, 48.75), (9.25, 48.6)])
    assert_same(index, boxes, corner, 0.0)
    sliver = shapely.Polygon([(9.0, 49.5), (10.0, 49.5), (9.5, 49.25)])
    assert_same(index, boxes, sliver, 0.0)
    assert_same(index, boxes, shapely.LineString([(8.5, 48.5), (11.5, 48.5)]), 0.0)


def test_cells_with_holes_multipolygons_and_concave_shapes() -> None:
    ring = shapely.Point(10.0, 50.0).buffer(0.2).difference(shapely.Point(10.0, 50.0).buffer(0.1))
    concave = shapely.Polygon([(9.5, 49.5), (9.9, 49.5), (9.9, 49.9), (9.7, 49.7),
                               (9.5, 49.9)])
    multi = shapely.MultiPolygon([shapely.box(10.3, 50.3, 10.4, 50.4),
                                  shapely.box(10.5, 50.3, 10.6, 50.4)])
    empty = shapely.Polygon()
    polygons = np.array([ring, concave, multi, empty], dtype=object)
    index = CellIndex.from_arrays(["ring", "concave", "multi", "empty"], polygons)
    for area in (shapely.Point(10.0, 50.0).buffer(0.05), shapely.box(9.6, 49.6, 10.45, 50.35),
                 shapely.box(9.75, 49.75, 9.85, 49.85), shapely.box(10.41, 50.3, 10.49, 50.4)):
        for min_overlap in (0.0, 0.01, 0.3):
            assert_same(index, polygons, area, min_overlap)
    assert len(index.target(shapely.Point(10.0, 50.0).buffer(0.05))) == 0  # in the hole
    assert "empty" not in index.target(shapely.box(-180, -90, 180, 90)).cell_ids


def test_invalid_area_is_repaired(index: CellIndex, cells: tuple) -> None:
    _, polygons, _ = cells
    bowtie = shapely.Polygon([(9.6, 49.6), (10.4, 50.4), (10.4, 49.6), (9.6, 50.4)])
    assert not bowtie.is_valid
    result = index.target(bowtie, 0.2)
    assert_same(index, polygons, shapely.make_valid(bowtie), 0.2)
    assert np.array_equal(result.indices, index.target(shapely.make_valid(bowtie), 0.2).indices)


def test_target_many_matches_target_in_order(index: CellIndex) -> None:
    areas = [wobbly(9.5 + 0.1 * k, 49.5 + 0.1 * k, 0.1, 20, seed=k) for k in range(8)]
    many = index.target_many(areas, 0.1)
    assert len(many) == len(areas)
    for area, result in zip(areas, many, strict=True):
        single = index.target(area, 0.1)
        assert np.array_equal(single.indices, result.indices)
        assert np.array_equal(single.overlap, result.overlap)


def test_per_operator_results(index: CellIndex, cells: tuple) -> None:
    _, _, operators = cells
    area = wobbly(10.0, 50.0, 0.5, 60, seed=11)
    result = index.target(area, 0.1)
    parts = result.by_operator()
    assert list(parts) == ["Alpha", "Bravo", "Charlie"]
    assert sum(len(p) for p in parts.values()) == len(result)
    for name, part in parts.items():
        assert (operators[part.indices] == name).all()
        assert list(part.cell_ids) == sorted(part.cell_ids)
        only = index.target(area, 0.1, operators=[name])
        assert np.array_equal(only.indices, part.indices)
        assert np.array_equal(only.overlap, part.overlap)
    assert (result.operators == operators[result.indices]).all()
    with pytest.raises(InvalidGeoInput, match="valid: Alpha, Bravo, Charlie"):
        index.target(area, operators=["Delta"])


def test_min_overlap_is_checked(index: CellIndex) -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(InvalidGeoInput, match="min_overlap"):
            index.target(shapely.box(9, 49, 10, 50), bad)
    with pytest.raises(InvalidGeoInput):
        index.target("POLYGON ((0 0, 1 0, 1 1, 0 0))")  # type: ignore[arg-type]


def test_bad_inventories_are_refused() -> None:
    with pytest.raises(GeoError, match="Polygon or MultiPolygon"):
        CellIndex.from_arrays(["a", "b"], [shapely.box(0, 0, 1, 1), shapely.Point(0, 0)])
    with pytest.raises(InvalidGeoInput):
        CellIndex.from_arrays(["a"], [shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)])
    empty = CellIndex.from_arrays(np.array([], dtype=str), np.array([], dtype=object))
    assert len(empty.target(shapely.box(0, 0, 1, 1))) == 0


def test_save_and_load_give_the_same_answers(index: CellIndex, tmp_path: Path) -> None:
    path = tmp_path / "cells.npz"
    index.save(path)
    loaded = CellIndex.load(path)
    assert loaded.crs == index.crs and loaded.operators == index.operators
    area = wobbly(10.0, 50.0, 0.3, 50, seed=12)
    for min_overlap in (0.0, 0.25):
        a, b = index.target(area, min_overlap), loaded.target(area, min_overlap)
        assert np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.cell_ids, b.cell_ids)
        assert np.array_equal(a.overlap, b.overlap)
    with pytest.raises(GeoError):
        CellIndex.load(tmp_path / "missing.npz")


def test_coverage_returns_the_cells_geometry(index: CellIndex, cells: tuple) -> None:
    _, polygons, _ = cells
    got = index.coverage([3, 0, 17])
    for geometry, position in zip(got, [3, 0, 17], strict=True):
        assert shapely.equals(geometry, polygons[position])


def test_antimeridian_cells_and_areas() -> None:
    # Cells around Fiji, some crossing 180 (split into MultiPolygons by geo.antimeridian).
    ids, polygons, operators = sector_cells(1500, seed=3, bbox=(178.5, -19.0, 181.5, -16.0))
    polygons = fix_antimeridian(shapely.transform(
        polygons, lambda xy: np.c_[((xy[:, 0] + 180) % 360) - 180, xy[:, 1]]))
    polygons = np.asarray(polygons, dtype=object)
    # Unwrapped in a continuous frame first, so transform-wrapped rings are re-cut cleanly.
    assert (shapely.get_type_id(polygons) == 6).sum() > 10
    index = CellIndex.from_arrays(ids, polygons, operators)
    lon_0 = float(index.crs.proj4.split("+lon_0=")[1].split()[0])
    assert abs(abs(lon_0) - 180.0) < 0.5  # centred on the antimeridian, not on Greenwich
    area = fix_antimeridian(shapely.Point(180.0, -17.5).buffer(0.6))
    assert shapely.get_type_id(area) == 6
    for min_overlap in (0.0, 0.1, 0.6):
        result = assert_same(index, polygons, area, min_overlap)
        assert len(result) > 50
    east = index.target(area)
    lon = np.array([p.centroid.x for p in polygons[east.indices]])
    assert (lon > 0).any() and (lon < 0).any()


# -- properties --------------------------------------------------------------------------


@st.composite
def areas(draw: st.DrawFn) -> shapely.Geometry:
    kind = draw(st.sampled_from(["wobbly", "box", "holed", "multi", "line", "point"]))
    cx = draw(st.floats(9.0, 11.0))
    cy = draw(st.floats(49.0, 51.0))
    size = draw(st.floats(0.005, 0.8))
    seed = draw(st.integers(0, 10_000))
    if kind == "wobbly":
        return wobbly(cx, cy, size, draw(st.integers(3, 200)), seed)
    if kind == "box":
        # Grid-aligned boxes touch the grid cells exactly.
        x0 = round(cx * 4) / 4
        y0 = round(cy * 4) / 4
        return shapely.box(x0, y0, x0 + draw(st.sampled_from([0.25, 0.5, 1.0])), y0 + 0.5)
    if kind == "holed":
        outer = shapely.Point(cx, cy).buffer(size)
        return outer.difference(shapely.Point(cx + size / 4, cy).buffer(size / 2))
    if kind == "multi":
        return shapely.MultiPolygon([wobbly(cx, cy, size / 3, 12, seed),
                                     wobbly(cx + size, cy - size, size / 3, 12, seed + 1)])
    if kind == "line":
        return shapely.LineString([(cx, cy), (cx + size, cy + size / 2), (cx - size, cy)])
    return shapely.Point(cx, cy)


@pytest.fixture(scope="module")
def mixed() -> tuple[CellIndex, np.ndarray]:
    ids, sectors, _ = sector_cells(1200, seed=21)
    grid_ids, boxes = grid_cells(0.25)
    polygons = np.concatenate([sectors, boxes])
    index = CellIndex.from_arrays(np.concatenate([ids, grid_ids]), polygons)
    return index, polygons


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(area=areas(), min_overlap=st.sampled_from([0.0, 0.0, 0.05, 0.3, 0.5, 0.99, 1.0]))
def test_property_same_as_reference(mixed: tuple[CellIndex, np.ndarray],
                                    area: shapely.Geometry, min_overlap: float) -> None:
    index, polygons = mixed
    assert_same(index, polygons, area, min_overlap)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300),
       min_overlap=st.sampled_from([0.0, 0.2]))
def test_property_random_inventories(seed: int, n: int, min_overlap: float) -> None:
    ids, polygons, operators = sector_cells(n, seed, bbox=(9.8, 49.8, 10.2, 50.2))
    index = CellIndex.from_arrays(ids, polygons, operators)
    area = wobbly(10.0, 50.0, 0.15, 30, seed)
    assert_same(index, polygons, area, min_overlap)


# -- rebuilding without stopping queries -------------------------------------------------


def test_index_holder_swaps_after_background_rebuild(index: CellIndex) -> None:
    holder = IndexHolder(index)
    area = wobbly(10.0, 50.0, 0.3, 40, seed=13)
    before = len(holder.current.target(area))
    ids, polygons, operators = sector_cells(600, seed=99)
    release = threading.Event()
    answered: list[int] = []

    def build() -> CellIndex:
        release.wait(10)
        return CellIndex.from_arrays(ids, polygons, operators)

    future = holder.rebuild(build)
    # Queries go on, on the old index, while the rebuild runs.
    for _ in range(5):
        answered.append(len(holder.current.target(area)))
    assert answered == [before] * 5 and holder.generation == 0
    release.set()
    new = future.result(timeout=60)
    assert holder.current is new and holder.generation == 1
    assert len(holder.current.target(area)) == len(new.target(area))

    def broken() -> CellIndex:
        raise GeoError("inventory unreadable")

    failed = holder.rebuild(broken)
    with pytest.raises(GeoError):
        failed.result(timeout=10)
    assert holder.current is new
    assert holder.swap(index) is new and holder.current is index
    with pytest.raises(GeoError):
        _ = IndexHolder().current


def test_concurrent_queries_agree(index: CellIndex) -> None:
    areas_ = [wobbly(9.5 + 0.2 * k, 49.5 + 0.2 * k, 0.2, 30, seed=k) for k in range(6)]
    expected = [index.target(a, 0.1).indices for a in areas_]
    errors: list[str] = []

    def worker() -> None:
        for area, want in zip(areas_, expected, strict=True):
            if not np.array_equal(index.target(area, 0.1).indices, want):
                errors.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# -- the equal-area CRS ------------------------------------------------------------------


def test_equal_area_crs_is_centred_and_matches_pyproj() -> None:
    center, width = lon_center([178.0, -179.5], [179.0, -179.0])
    assert abs(abs(center) - 179.75) < 1.0 and width <= 4  # one-degree bins
    crs = equal_area_for([[5.9, 47.3, 15.0, 55.0]])
    assert crs.proj4.startswith("+proj=laea +lat_0=51.1500 +lon_0=10.4500")
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-20, 40, 5000), rng.uniform(30, 70, 5000)
    x, y = crs.xy(lon, lat)
    x2, y2 = crs.pyproj_xy(lon, lat)
    assert np.abs(x - x2).max() < 1e-6 and np.abs(y - y2).max() < 1e-6
    world = equal_area_for([[-170, -60, 170, 70]])
    assert "+proj=eqearth" in world.proj4
    # Equal area: a 1-degree square keeps its true (ellipsoidal) area, about 7,700 km2 at 50N.
    square = crs.transform(shapely.box(10, 50, 11, 51))
    assert 7.6e9 < square.area < 7.9e9
