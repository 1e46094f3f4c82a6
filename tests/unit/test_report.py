"""Targeting report: overshoot, undershoot and farthest reach under each policy."""

from __future__ import annotations

import json
import math
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
import shapely

from geo.crs import equal_area_for
from geo.report import POLICIES, targeting_report, to_geojson, to_svg

# A 10 x 10 grid of cells near the equator, each 0.01 degree (about 1.11 km) square.
STEP = 0.01
KM_PER_DEGREE = 111.32  # at the equator, close enough for the tolerances below


def grid(n: int = 10, operators: tuple[str, ...] = ("Alpha",)) -> tuple[Any, Any, Any]:
    cells, ops, ids = [], [], []
    for operator in operators:
        for i in range(n):
            for j in range(n):
                cells.append(shapely.box(i * STEP, j * STEP, (i + 1) * STEP, (j + 1) * STEP))
                ops.append(operator)
                ids.append(f"{operator}-{i}-{j}")
    return np.array(cells, dtype=object), np.array(ops), np.array(ids)


def reference(area: Any, polygons: Any) -> tuple[Any, Any]:
    """Positions and overlap fractions of every intersecting cell (plain shapely)."""
    hit = np.flatnonzero(shapely.intersects(polygons, area))
    projection = equal_area_for(shapely.bounds(polygons))
    cells = projection.transform(polygons[hit])
    inside = shapely.area(shapely.intersection(cells, projection.transform(area)))
    return hit, inside / shapely.area(cells)


def report_for(area: Any, polygons: Any, operators: Any, min_overlap: float = 0.5) -> Any:
    hit, overlap = reference(area, polygons)
    return targeting_report(area, polygons=polygons, operators=operators, any_indices=hit,
                            overlap=overlap, min_overlap=min_overlap)


def test_area_aligned_with_cells_has_no_undershoot_and_only_touching_overshoot() -> None:
    polygons, operators, _ = grid()
    area = shapely.box(2 * STEP, 2 * STEP, 5 * STEP, 5 * STEP)  # exactly 3 x 3 cells
    report = report_for(area, polygons, operators)
    outcomes = report.outcomes["Alpha"]
    assert set(outcomes) == set(POLICIES)
    threshold = outcomes["threshold"]
    assert threshold.cell_count == 9
    assert threshold.undershoot_km2 == pytest.approx(0, abs=1e-6)
    assert threshold.overshoot_km2 == pytest.approx(0, abs=1e-6)
    assert threshold.overshoot_max_km == pytest.approx(0, abs=1e-3)
    assert outcomes["centroid"].cell_count == 9
    # ST_Intersects semantics: the 16 cells that only touch the area are targeted too.
    loose = outcomes["any-overlap"]
    assert loose.cell_count == 25
    cell_km2 = (STEP * KM_PER_DEGREE) ** 2
    assert loose.overshoot_km2 == pytest.approx(16 * cell_km2, rel=0.01)
    # The farthest reach is a corner cell's far corner: one cell diagonal from the area.
    assert loose.overshoot_max_km == pytest.approx(math.sqrt(2) * STEP * KM_PER_DEGREE,
                                                   rel=0.02)
    assert report.area_km2 == pytest.approx(9 * cell_km2, rel=0.01)


def test_undershoot_when_the_area_leaves_the_coverage() -> None:
    polygons, operators, _ = grid(n=4)
    # Half of this area lies east of the last column of cells.
    area = shapely.box(2 * STEP, 0, 6 * STEP, 4 * STEP)
    report = report_for(area, polygons, operators)
    outcome = report.outcomes["Alpha"]["threshold"]
    assert outcome.cell_count == 8
    assert outcome.undershoot_km2 == pytest.approx(report.area_km2 / 2, rel=0.01)


def test_threshold_trades_overshoot_for_undershoot() -> None:
    polygons, operators, _ = grid()
    # Shifted by 0.3 cell: edge cells overlap 70% on one side and 30% on the other.
    area = shapely.box(2.3 * STEP, 2.3 * STEP, 5.3 * STEP, 5.3 * STEP)
    outcomes = report_for(area, polygons, operators, min_overlap=0.5).outcomes["Alpha"]
    strict, loose = outcomes["threshold"], outcomes["any-overlap"]
    assert strict.cell_count < loose.cell_count
    assert strict.overshoot_km2 < loose.overshoot_km2
    assert strict.undershoot_km2 > loose.undershoot_km2 == pytest.approx(0, abs=1e-6)
    assert set(strict.indices) <= set(loose.indices)


def test_each_operator_is_measured_on_its_own_cells() -> None:
    polygons, operators, _ = grid(n=6, operators=("Alpha", "Bravo"))
    keep = ~((operators == "Bravo") & (np.arange(len(operators)) % 2 == 0))
    polygons, operators = polygons[keep], operators[keep]
    area = shapely.box(STEP, STEP, 4 * STEP, 4 * STEP)
    report = report_for(area, polygons, operators)
    alpha, bravo = report.chosen("Alpha"), report.chosen("Bravo")
    assert alpha.undershoot_km2 == pytest.approx(0, abs=1e-6)
    assert bravo.undershoot_km2 > 0
    assert set(operators[alpha.indices]) == {"Alpha"}
    assert set(operators[bravo.indices]) == {"Bravo"}


def test_no_cells_means_everything_is_undershoot() -> None:
    polygons, operators, _ = grid(n=2)
    area = shapely.box(1.0, 1.0, 1.01, 1.01)
    report = report_for(area, polygons, operators)
    outcome = report.chosen("Alpha")
    assert outcome.cell_count == 0
    assert outcome.undershoot_km2 == pytest.approx(report.area_km2) and report.area_km2 > 1
    assert outcome.overshoot_km2 == 0 and outcome.coverage_km2 == 0


def test_unknown_policy_is_refused_with_the_valid_ones() -> None:
    polygons, operators, _ = grid(n=2)
    with pytest.raises(ValueError, match="any-overlap, threshold, centroid"):
        targeting_report(shapely.box(0, 0, STEP, STEP), polygons=polygons, operators=operators,
                         any_indices=np.array([0]), overlap=np.array([1.0]), min_overlap=0,
                         policies=("nearest",))


def test_geojson_and_svg_render() -> None:
    polygons, operators, ids = grid(n=5)
    area = shapely.box(1.3 * STEP, 1.3 * STEP, 3.3 * STEP, 3.3 * STEP)
    report = report_for(area, polygons, operators)
    collection = json.loads(json.dumps(to_geojson(report, polygons=polygons, cell_ids=ids,
                                                  operators=operators)))
    roles = [f["properties"]["role"] for f in collection["features"]]
    assert roles[0] == "alert-area" and roles.count("cell") == report.chosen(
        "Alpha").cell_count + (report.outcomes["Alpha"]["any-overlap"].cell_count
                               - report.chosen("Alpha").cell_count)
    targeted = [f for f in collection["features"] if f["properties"].get("targeted")]
    assert len(targeted) == report.chosen("Alpha").cell_count
    assert collection["properties"]["operators"]["Alpha"]["threshold"]["cells"] == len(targeted)
    svg = to_svg(report, polygons=polygons, operators=operators)
    root = ElementTree.fromstring(svg)
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == report.outcomes["Alpha"]["any-overlap"].cell_count + 1
