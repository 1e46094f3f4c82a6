"""Targeting quality: which cells each policy picks, and how far they miss the alert area.

Targeting decides who gets warned. Too few cells and people in danger are
missed (*undershoot*: alert area that no targeted cell covers); too many and
people far away learn to ignore warnings (*overshoot*: coverage of targeted
cells outside the alert area, and how far outside it reaches). This module
measures both, per operator, under several policies side by side, so that an
emergency manager can see the trade-off before choosing ``min_overlap``:

* ``any-overlap``: every cell whose coverage intersects the area (``min_overlap=0``);
* ``threshold``: cells with at least ``min_overlap`` of their coverage inside;
* ``centroid``: cells whose coverage centroid lies inside the area.

Areas are measured in the equal-area projection :func:`geo.crs.equal_area_for`
chooses for the area and the targeted cells; distances in an azimuthal
equidistant projection centred on the area (exact from the centre, within a
fraction of a percent over a province). Reports render to GeoJSON and SVG for
the console and ``capcast target --svg``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from geo.crs import equal_area_for

POLICIES = ("any-overlap", "threshold", "centroid")
#: How finely the boundary of the overshoot is sampled to find its farthest point (metres).
_DISTANCE_STEP_M = 250.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyOutcome:
    """What one policy targets for one operator, and how well that fits the area."""

    policy: str
    operator: str
    #: Positions into the inventory arrays, sorted.
    indices: npt.NDArray[np.int64]
    #: Coverage of the targeted cells outside the alert area, km².
    overshoot_km2: float
    #: The farthest any targeted coverage reaches outside the alert area, km.
    overshoot_max_km: float
    #: Alert area that no targeted cell of this operator covers, km².
    undershoot_km2: float
    #: Area covered by the targeted cells, km².
    coverage_km2: float

    @property
    def cell_count(self) -> int:
        """How many cells the policy targets."""
        return int(self.indices.size)

    def to_json(self, cell_ids: npt.NDArray[Any] | None = None) -> dict[str, Any]:
        """JSON-ready summary; with ``cell_ids`` the targeted ids are listed."""
        out: dict[str, Any] = {
            "cells": int(self.indices.size),
            "overshoot_km2": round(self.overshoot_km2, 3),
            "overshoot_max_km": round(self.overshoot_max_km, 3),
            "undershoot_km2": round(self.undershoot_km2, 3),
            "coverage_km2": round(self.coverage_km2, 3),
        }
        if cell_ids is not None:
            out["cell_ids"] = [str(c) for c in cell_ids[self.indices]]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetingReport:
    """Per operator and policy outcomes for one alert area."""

    area: BaseGeometry
    area_km2: float
    min_overlap: float
    #: outcomes[operator][policy]
    outcomes: dict[str, dict[str, PolicyOutcome]] = field(default_factory=dict)

    def chosen(self, operator: str) -> PolicyOutcome:
        """The outcome of the policy ``min_overlap`` selects (threshold, or any-overlap at 0)."""
        policy = "threshold" if self.min_overlap > 0 else "any-overlap"
        return self.outcomes[operator][policy]

    def to_json(self, cell_ids: npt.NDArray[Any] | None = None) -> dict[str, Any]:
        """JSON-ready report; cell ids are listed for the chosen policy only."""
        return {
            "area_km2": round(self.area_km2, 3),
            "min_overlap": self.min_overlap,
            "operators": {
                operator: {
                    policy: outcome.to_json(
                        cell_ids if outcome is self.chosen(operator) else None)
                    for policy, outcome in by_policy.items()
                }
                for operator, by_policy in self.outcomes.items()
            },
        }


def _policy_indices(policy: str, any_indices: npt.NDArray[np.int64],
                    overlap: npt.NDArray[np.float64], min_overlap: float,
                    centroid_inside: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    if policy == "any-overlap":
        return any_indices
    if policy == "threshold":
        return any_indices[overlap >= min_overlap] if min_overlap > 0 else any_indices
    if policy == "centroid":
        return any_indices[centroid_inside]
    raise ValueError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")


def _azimuthal(area: BaseGeometry) -> Transformer:
    centre = area.representative_point() if not area.is_empty else shapely.Point(0, 0)
    crs = CRS.from_proj4(f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 "
                         "+units=m +no_defs")
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _project(transformer: Transformer, geometry: Any) -> Any:
    return shapely.transform(geometry, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))


def _farthest_outside_km(outside: BaseGeometry, area: BaseGeometry) -> float:
    """The largest distance from the overshoot to the area, sampling the overshoot boundary."""
    if outside.is_empty or area.is_empty:
        return 0.0
    boundary = shapely.segmentize(shapely.boundary(outside), _DISTANCE_STEP_M)
    points = shapely.points(shapely.get_coordinates(boundary))
    return float(np.max(shapely.distance(points, area))) / 1000.0


def targeting_report(area: BaseGeometry, *, polygons: npt.NDArray[Any],
                     operators: npt.NDArray[Any], any_indices: npt.NDArray[np.int64],
                     overlap: npt.NDArray[np.float64], min_overlap: float,
                     policies: Sequence[str] = POLICIES) -> TargetingReport:
    """Measure each policy's fit to ``area`` (lon/lat), per operator.

    ``any_indices`` and ``overlap`` are the positions and overlap fractions of
    every cell that intersects the area (a ``min_overlap=0`` result from
    :class:`geo.CellIndex`); ``polygons`` and ``operators`` are the inventory
    arrays those positions index.
    """
    for policy in policies:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    any_indices = np.asarray(any_indices, dtype=np.int64)
    overlap = np.asarray(overlap, dtype=np.float64)
    cells = polygons[any_indices]
    projection = equal_area_for(np.vstack([np.asarray(area.bounds).reshape(1, 4),
                                           shapely.bounds(cells).reshape(-1, 4)]))
    area_ea = projection.transform(area)
    cells_ea = projection.transform(cells)
    centroids = shapely.centroid(cells)
    centroid_inside = shapely.contains_xy(area, shapely.get_x(centroids),
                                          shapely.get_y(centroids)) if cells.size else \
        np.zeros(0, dtype=bool)
    distance_projection = _azimuthal(area)
    area_aeqd = _project(distance_projection, area)
    report = TargetingReport(area=area, area_km2=float(shapely.area(area_ea)) / 1e6,
                             min_overlap=min_overlap)
    cell_operators = operators[any_indices] if any_indices.size else np.zeros(0, dtype=object)
    for operator in sorted({str(o) for o in operators}):
        mine = cell_operators == operator
        by_policy: dict[str, PolicyOutcome] = {}
        for policy in policies:
            keep = _policy_indices(policy, np.flatnonzero(mine), overlap[mine], min_overlap,
                                   centroid_inside[mine])
            chosen_ea = cells_ea[keep]
            covered = shapely.union_all(chosen_ea) if keep.size else shapely.Polygon()
            outside = shapely.difference(covered, area_ea)
            missed = shapely.difference(area_ea, covered)
            outside_aeqd = _project(distance_projection,
                                    shapely.difference(shapely.union_all(cells[keep]), area)
                                    if keep.size else shapely.Polygon())
            by_policy[policy] = PolicyOutcome(
                policy=policy, operator=operator, indices=np.sort(any_indices[keep]),
                overshoot_km2=float(shapely.area(outside)) / 1e6,
                overshoot_max_km=_farthest_outside_km(outside_aeqd, area_aeqd),
                undershoot_km2=float(shapely.area(missed)) / 1e6,
                coverage_km2=float(shapely.area(covered)) / 1e6)
        report.outcomes[operator] = by_policy
    return report


# -- rendering ----------------------------------------------------------------


def to_geojson(report: TargetingReport, *, polygons: npt.NDArray[Any],
               cell_ids: npt.NDArray[Any], operators: npt.NDArray[Any]) -> dict[str, Any]:
    """A FeatureCollection: the alert area, then every cell any policy targets.

    Each cell feature says which policies target it (``policies``), its
    operator and id, so a map can show the trade-off by styling on them.
    """
    features: list[dict[str, Any]] = [{
        "type": "Feature", "geometry": shapely.geometry.mapping(report.area),
        "properties": {"role": "alert-area", "area_km2": round(report.area_km2, 3)}}]
    for operator, by_policy in report.outcomes.items():
        chosen = report.chosen(operator)
        members: dict[int, list[str]] = {}
        for policy, outcome in by_policy.items():
            for position in outcome.indices.tolist():
                members.setdefault(position, []).append(policy)
        for position, names in sorted(members.items()):
            features.append({
                "type": "Feature",
                "geometry": shapely.geometry.mapping(polygons[position]),
                "properties": {"role": "cell", "cell_id": str(cell_ids[position]),
                               "operator": str(operators[position]), "policies": names,
                               "targeted": chosen.policy in names}})
    return {"type": "FeatureCollection", "features": features,
            "properties": report.to_json()}


def _svg_path(geometry: BaseGeometry, to_px: Any) -> str:
    parts = []
    for polygon in getattr(geometry, "geoms", [geometry]):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            xy = to_px(np.asarray(ring.coords))
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + " Z")
    return " ".join(parts)


_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22")


def to_svg(report: TargetingReport, *, polygons: npt.NDArray[Any],
           operators: npt.NDArray[Any], width: int = 800) -> str:
    """An SVG map: the alert area in red, targeted cells per operator, others faint.

    Cells the chosen policy targets are filled; cells only ``any-overlap``
    targets are outlined, so the overshoot a looser policy would add is visible.
    """
    shown: list[int] = sorted({p for by_policy in report.outcomes.values()
                               for o in by_policy.values() for p in o.indices.tolist()})
    geometries = [report.area, *(polygons[p] for p in shown)]
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geometries, dtype=object))
    span_x, span_y = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    # Keep the map's aspect close to the ground's at this latitude.
    squash = max(np.cos(np.radians((y0 + y1) / 2)), 0.1)
    height = max(int(width * span_y / (span_x * squash)), 50)
    scale_x, scale_y = width / span_x, height / span_y

    def to_px(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.column_stack(((coords[:, 0] - x0) * scale_x, (y1 - coords[:, 1]) * scale_y))

    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f"<title>Targeting: {html.escape(f'{report.area_km2:,.1f}')} km² alert area, "
             f"min_overlap {report.min_overlap:g}</title>"]
    for number, (operator, by_policy) in enumerate(report.outcomes.items()):
        colour = _COLOURS[number % len(_COLOURS)]
        chosen = set(report.chosen(operator).indices.tolist())
        loose = set(by_policy.get("any-overlap", report.chosen(operator)).indices.tolist())
        lines.append(f'<g id="operator-{html.escape(operator)}" stroke="{colour}">')
        for position in sorted(loose | chosen):
            fill = f'fill="{colour}" fill-opacity="0.35"' if position in chosen else 'fill="none"'
            dash = "" if position in chosen else ' stroke-dasharray="3,2"'
            lines.append(f'<path d="{_svg_path(polygons[position], to_px)}" {fill}'
                         f' stroke-width="0.6"{dash}><title>{html.escape(str(operators[position]))}'
                         f"</title></path>")
        lines.append("</g>")
    lines.append(f'<path d="{_svg_path(report.area, to_px)}" fill="none" stroke="#d62728" '
                 'stroke-width="2"><title>alert area</title></path>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
