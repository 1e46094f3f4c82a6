"""CAP areas to geometry: one shapely geometry in lon/lat (EPSG:4326) per area, info or alert.

An ``<area>`` is the union of its parts:

- ``<polygon>``: CAP writes ``lat,lon`` pairs; they become (lon, lat). Each
  step between consecutive vertices is read the shorter way round, so a
  ring that jumps from 179.5 to -179.8 crosses the antimeridian and comes
  out as a MultiPolygon with parts on both sides (``geo.antimeridian``). A
  ring that is not simple is repaired with ``make_valid(method="structure")``
  (everything the ring encloses is kept, overlapping loops included) and
  the repair is *reported*.
- ``<circle>``: a geodesic circle on the WGS 84 ellipsoid (pyproj ``Geod``).
  Vertices lie exactly at the radius; their number is chosen from the
  radius and the tolerance and refined until the midpoint of every edge is
  within half the tolerance of the radius (default tolerance 0.1%), so the
  whole boundary is within it. Radius 0 is the centre point. Circles that
  reach past ±180 are split there; a circle that contains a pole becomes
  the polar cap (all longitudes up to that pole); one that contains both
  poles (radius over about 10,000 km) is the globe minus the loop round the
  far side. Only within some tens of km of the antipodal distance, where
  geodesics stop being shortest paths, is that loop drawn as a circle round
  the antipode (exact on a sphere, within about 33 km on the ellipsoid); a
  radius reaching the antipode is the whole globe.
- ``<geocode>``: resolved through a :class:`~geo.geocodes.GeocodeRegistry`;
  a code it cannot resolve is reported, never fatal. DWD's
  ``EXCLUDE_POLYGON`` geocodes (a CAP polygon as the value) are *removed*
  from the area, as DWD specifies. :class:`GeocodeUse` chooses whether
  geocodes add to polygons and circles (``union``, CAP's reading) or are used
  only for areas with neither (``fallback``, the rule IPAWS/WEA apply).

Everything that changed or could not be used is an :class:`AreaNote` with a
stable ``code``, the CAP element path (``alert/info[0]/area[1]/polygon[0]``,
indexes 0-based, as in ``cap.findings``) and a message. Note codes:

==========================  ==================================================
``polygon-repaired``        the ring was not simple; repaired (where, parts, km²)
``polygon-collapsed``       the ring encloses no area; its line/point is kept
``polygon-antimeridian``    the ring crosses ±180; split into parts on each side
``polygon-polar``           the ring goes round a pole; read as the polar cap
``circle-point``            radius 0: the centre point is the area
``circle-antimeridian``     the circle reaches past ±180; split
``circle-polar``            the circle contains a pole (or both)
``circle-whole-earth``      the radius reaches the antipode: the whole globe
``geocode-unknown-name``    no boundary file for this valueName
``geocode-not-derivable``   the value cannot be mapped to a boundary key
``geocode-not-found``       no boundary for this value
``geocode-approximated``    resolved to a larger area (e.g. a SAME subdivision)
``geocode-remark``          resolved, with a remark (e.g. a mislabelled NUTS level)
``geocode-ignored``         geocodes unused under ``GeocodeUse.FALLBACK``
``exclude-polygon``         an EXCLUDE_POLYGON removed part of the area
``exclude-polygon-invalid`` an EXCLUDE_POLYGON value is not a usable polygon
``area-empty``              the area gives no geometry at all
``info-no-area``            an info block has no area
==========================  ==================================================

All functions are pure (no I/O) apart from the registry reading its files
lazily on first use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from cap import model
from geo.antimeridian import (
    close_at_pole,
    continuous_ring,
    cut_at_antimeridian,
    polygonal,
    unwrap_longitudes,
    wrap_longitude,
)
from geo.errors import InvalidGeoInput
from geo.geocodes import GeocodeRegistry, GeocodeStatus, normalize_value_name

__all__ = [
    "DEFAULT_TOLERANCE",
    "AreaGeometry",
    "AreaNote",
    "AreaSource",
    "CircleShape",
    "GeocodeUse",
    "SourceKind",
    "alert_geometry",
    "area_geometry",
    "circle_geometry",
    "circle_shape",
    "circle_vertex_count",
    "geocode_geometry",
    "geodesic_area_km2",
    "info_geometry",
    "polygon_geometry",
]

FloatArray = npt.NDArray[np.float64]

#: Default bound on the relative error of a circle's boundary (0.1%).
DEFAULT_TOLERANCE = 1e-3
#: Share of the tolerance allowed at edge midpoints, leaving room for the rest of each edge.
_MIDPOINT_SHARE = 0.5
#: Refinement stops here (only reached where geodesics stop being shortest, near the antipode).
_MAX_VERTICES = 20_000
#: Geocode value names (compared case-insensitively) whose polygon is cut out of the area.
_EXCLUDE_NAMES = frozenset({"exclude_polygon"})
_GLOBE = shapely.box(-180.0, -90.0, 180.0, 90.0)


@cache
def _geod() -> Geod:
    return Geod(ellps="WGS84")


class GeocodeUse(Enum):
    """How geocodes combine with an area's polygons and circles."""

    #: The area is the union of its polygons, circles and geocodes (CAP 1.2's reading).
    UNION = "union"
    #: Geocodes count only for areas with no polygon and no circle (the IPAWS/WEA rule).
    FALLBACK = "fallback"

    @classmethod
    def coerce(cls, value: GeocodeUse | str) -> GeocodeUse:
        """The member for ``value`` (a member or its name), or an error listing the valid ones."""
        if isinstance(value, cls):
            return value
        for member in cls:
            if str(value).strip().casefold() in (member.value, member.name.casefold()):
                return member
        valid = ", ".join(repr(m.value) for m in cls)
        raise InvalidGeoInput("geocodes", value, f"valid options are {valid}")


class SourceKind(Enum):
    """Which CAP element an area part came from."""

    #: A <polygon>.
    POLYGON = "polygon"
    #: A <circle>.
    CIRCLE = "circle"
    #: A <geocode> resolved through the registry.
    GEOCODE = "geocode"
    #: A DWD EXCLUDE_POLYGON geocode, cut out of the area.
    EXCLUDE = "exclude"


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaNote:
    """Something about an area a user should know: a repair, an approximation, a gap.

    ``code`` is stable (see the module docstring); ``path`` is the CAP element
    path like ``alert/info[0]/area[1]/polygon[0]``.
    """

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} at {self.path}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaSource:
    """One part of an area: where it came from and its geometry (lon/lat)."""

    kind: SourceKind
    path: str
    description: str
    geometry: BaseGeometry


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaGeometry:
    """The geometry of a CAP area (or info, or alert) with what was noted on the way.

    ``geometry`` is in lon/lat (EPSG:4326), valid, with counter-clockwise
    exteriors (RFC 7946); it is empty when nothing could be resolved.
    """

    geometry: BaseGeometry
    notes: tuple[AreaNote, ...] = ()
    sources: tuple[AreaSource, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the area has no geometry."""
        return bool(self.geometry.is_empty)

    @property
    def area_km2(self) -> float:
        """The geodesic area on the WGS 84 ellipsoid, in km² (0 for points and lines)."""
        return geodesic_area_km2(self.geometry)


#: Octants of the globe: a geodesic polygon's area is only defined modulo the
#: Earth's area, so large shapes are measured piecewise, each piece well under
#: a hemisphere.
_OCTANTS = shapely.box(np.repeat([-180.0, -90.0, 0.0, 90.0], 2), np.tile([-90.0, 0.0], 4),
                       np.repeat([-90.0, 0.0, 90.0, 180.0], 2), np.tile([0.0, 90.0], 4))


def geodesic_area_km2(geom: BaseGeometry) -> float:
    """Geodesic area (WGS 84) of the polygonal parts of a lon/lat geometry, in km².

    Edges are taken as geodesics between vertices (close to shapely's
    straight lon/lat edges when vertices are dense). Shapes wider than 90°
    or taller than 45° are measured octant by octant, so that polar caps and
    near-global areas come out right.
    """
    shape = polygonal(geom)
    if shape.is_empty:
        return 0.0
    xmin, ymin, xmax, ymax = shape.bounds
    if xmax - xmin > 90.0 or ymax - ymin > 45.0:
        pieces = [polygonal(p) for p in shapely.intersection(shape, _OCTANTS)]
    else:
        pieces = [shape]
    geod = _geod()
    total = 0.0
    for piece in pieces:
        if not piece.is_empty:
            area, _ = geod.geometry_area_perimeter(shapely.orient_polygons(piece))
            total += abs(float(area))
    return total / 1e6


def _finish(geom: BaseGeometry) -> BaseGeometry:
    """Counter-clockwise exteriors, clockwise holes (RFC 7946), whatever the input winding."""
    return shapely.orient_polygons(geom, exterior_cw=False)


def _union(geoms: Iterable[BaseGeometry]) -> BaseGeometry:
    parts = [g for g in geoms if g is not None and not g.is_empty]
    if not parts:
        return Polygon()
    if len(parts) == 1:
        return parts[0]
    return shapely.union_all(parts)


def _fmt_point(lon: float, lat: float) -> str:
    return f"({float(wrap_longitude(lon)):.5f}, {lat:.5f})"


def _count_parts(geom: BaseGeometry) -> int:
    return len(geom.geoms) if isinstance(geom, MultiPolygon) else int(not geom.is_empty)


# -- polygons ------------------------------------------------------------------

_REASON_AT = re.compile(r"^(?P<what>[^\[]*)\[(?P<x>\S+) (?P<y>\S+)\]")


def _describe_reason(reason: str) -> str:
    match = _REASON_AT.match(reason)
    if match is None:
        return reason.lower()
    what = match["what"].strip().lower()
    try:
        return f"{what} at {_fmt_point(float(match['x']), float(match['y']))}"
    except ValueError:
        return reason.lower()


def _ring_area_km2(ring: FloatArray) -> float:
    """Signed-lobe geodesic area of a ring as drawn (shoelace on the ellipsoid), km²."""
    area, _ = _geod().polygon_area_perimeter(ring[:, 0], ring[:, 1])
    return abs(float(area)) / 1e6


def polygon_geometry(polygon: model.Polygon, *, path: str = "polygon") -> AreaGeometry:
    """One CAP ``<polygon>`` (lat,lon pairs) as a lon/lat geometry, with repairs reported."""
    lonlat = np.array(polygon.lonlat, dtype=np.float64)
    notes: list[AreaNote] = []
    ring, winding = continuous_ring(lonlat)
    crosses = bool(ring[:, 0].min() < -180.0 or ring[:, 0].max() > 180.0)
    if winding:
        north = float(np.mean(ring[:, 1])) >= 0.0
        ring = close_at_pole(ring, 90.0 if north else -90.0)
        notes.append(AreaNote(
            code="polygon-polar", path=path,
            message=f"the ring goes round the {'North' if north else 'South'} Pole (its "
                    "longitudes make a full turn); it is read as the polar cap on that side, "
                    "closed through the pole"))
    shape: BaseGeometry = shapely.Polygon(ring)
    if not shape.is_valid:
        reason = _describe_reason(str(shapely.is_valid_reason(shape)))
        repaired = shapely.make_valid(shape, method="structure")
        area_part = polygonal(repaired)
        if area_part.is_empty:
            shape = repaired
            notes.append(AreaNote(
                code="polygon-collapsed", path=path,
                message=f"{reason}: the ring encloses no area (its points are collinear or "
                        f"repeated); its {repaired.geom_type} is kept as the area"))
        else:
            drawn = _ring_area_km2(ring)
            covered = geodesic_area_km2(area_part)
            parts = _count_parts(area_part)
            notes.append(AreaNote(
                code="polygon-repaired", path=path,
                message=f"{reason}: repaired into {parts} part{'s' if parts != 1 else ''} "
                        f"covering {covered:.3f} km², area changed by {covered - drawn:+.3f} "
                        f"km² against the ring as drawn ({drawn:.3f} km², where lobes of "
                        "opposite winding cancel)"))
            shape = area_part
    geometry = cut_at_antimeridian(shape)
    if crosses:
        notes.append(AreaNote(
            code="polygon-antimeridian", path=path,
            message=f"the ring crosses the 180th meridian (read the shorter way round); "
                    f"split into {_count_parts(polygonal(geometry))} parts on either side"))
    description = f"polygon of {len(lonlat) - 1} points"
    return AreaGeometry(geometry=geometry, notes=tuple(notes),
                        sources=(AreaSource(kind=SourceKind.POLYGON, path=path,
                                            description=description, geometry=geometry),))


# -- circles -------------------------------------------------------------------


def circle_vertex_count(tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The starting vertex count of a circle for a relative boundary tolerance.

    An edge between two of n equally spaced vertices on a circle comes within
    r·cos(π/n) of the centre at its midpoint; the count keeps that within
    half the tolerance (:func:`circle_shape` then refines where the
    lon/lat grid distorts large or polar circles).
    """
    if not 0.0 < tolerance < 0.5:
        raise InvalidGeoInput("tolerance", tolerance, "must be between 0 and 0.5 (e.g. 1e-3)")
    return max(8, math.ceil(math.pi / math.acos(1.0 - tolerance * _MIDPOINT_SHARE)))


@dataclass(frozen=True, slots=True, kw_only=True)
class CircleShape:
    """A geodesic circle as a polygon, with how it was built.

    ``ring`` is the closed boundary in a continuous longitude frame (it may
    run past ±180), ``vertices`` its vertex count, ``max_error`` the largest
    relative deviation from the radius measured at edge midpoints (NaN for
    the rare circle drawn round the antipode, below), and ``poles`` the poles
    it contains (+90 and/or -90).
    """

    geometry: BaseGeometry
    ring: FloatArray
    vertices: int
    max_error: float
    poles: tuple[float, ...]
    crosses_antimeridian: bool
    whole_earth: bool = False


def _circle_ring(lat: float, lon: float, radius_m: float,
                 tolerance: float) -> tuple[FloatArray, float]:
    geod = _geod()
    azimuths = np.linspace(0.0, 360.0, circle_vertex_count(tolerance), endpoint=False)
    limit = tolerance * _MIDPOINT_SHARE
    for _ in range(16):
        n = len(azimuths)
        lons, lats, _ = geod.fwd(np.full(n, lon), np.full(n, lat), azimuths,
                                 np.full(n, radius_m))
        lons = unwrap_longitudes(np.append(lons, lons[0]))
        lats = np.append(lats, lats[0])
        # The straight lon/lat edge (what shapely draws) between two vertices:
        # its midpoint is where it strays furthest from the circle.
        mid_lon = (lons[:-1] + lons[1:]) / 2.0
        mid_lat = (lats[:-1] + lats[1:]) / 2.0
        _, _, dist = geod.inv(np.full(n, lon), np.full(n, lat), mid_lon, mid_lat)
        error = np.abs(np.asarray(dist) / radius_m - 1.0)
        bad = error > limit
        if not bad.any() or n > _MAX_VERTICES:
            break
        following = np.append(azimuths[1:], 360.0)
        azimuths = np.sort(np.concatenate([azimuths, (azimuths[bad] + following[bad]) / 2.0]))
    return np.column_stack([lons, lats]), float(error.max())


def circle_shape(lat: float, lon: float, radius_km: float, *,
                 tolerance: float = DEFAULT_TOLERANCE) -> CircleShape:
    """A geodesic circle (WGS 84) round (lat, lon) of ``radius_km`` as a lon/lat polygon.

    The boundary is within ``tolerance`` (relative) of the true radius
    everywhere. Radius 0 gives the centre Point. See the module docstring for
    circles across the antimeridian and round the poles.
    """
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidGeoInput("lat", lat, "latitude must be within -90..90")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidGeoInput("lon", lon, "longitude must be within -180..180")
    if not (math.isfinite(radius_km) and radius_km >= 0.0):
        raise InvalidGeoInput("radius_km", radius_km, "the radius must be 0 or more km")
    if radius_km == 0.0:
        return CircleShape(geometry=Point(lon, lat), ring=np.array([[lon, lat]]), vertices=1,
                           max_error=0.0, poles=(), crosses_antimeridian=False)
    geod = _geod()
    radius_m = radius_km * 1000.0
    antipode_lon = lon + 180.0 if lon <= 0.0 else lon - 180.0
    _, _, to_antipode = geod.inv(lon, lat, antipode_lon, -lat)
    if radius_m >= to_antipode:
        return CircleShape(geometry=_GLOBE, ring=np.empty((0, 2)), vertices=0, max_error=0.0,
                           poles=(90.0, -90.0), crosses_antimeridian=True, whole_earth=True)
    _, _, to_north = geod.inv(lon, lat, lon, 90.0)
    _, _, to_south = geod.inv(lon, lat, lon, -90.0)
    poles = tuple(p for p, d in ((90.0, to_north), (-90.0, to_south)) if d <= radius_m)
    ring, max_error = _circle_ring(lat, lon, radius_m, tolerance)
    winding = round((ring[-1, 0] - ring[0, 0]) / 360.0)
    crosses = bool(ring[:, 0].min() < -180.0 or ring[:, 0].max() > 180.0)
    if len(poles) == 2:
        # The boundary is a loop round the far side (it winds round neither pole):
        # the circle is everything outside that loop.
        loop = shapely.Polygon(ring)
        if not loop.is_valid or max_error > tolerance:
            # Near the antipode geodesics of length r stop being shortest paths
            # and the loop folds on itself: use the circle round the antipode
            # instead (exact on a sphere; on the ellipsoid within the spread of
            # antipodal distances, about 33 km, of the radius).
            far = circle_shape(-lat, antipode_lon, (to_antipode - radius_m) / 1000.0,
                               tolerance=tolerance)
            ring, max_error, loop = far.ring, float("nan"), far.geometry
        hole = polygonal(cut_at_antimeridian(loop))
        geometry = polygonal(shapely.difference(_GLOBE, hole))
    else:
        polygon_ring = close_at_pole(ring, poles[0]) if poles and winding else ring
        geometry = polygonal(cut_at_antimeridian(shapely.Polygon(polygon_ring)))
    return CircleShape(geometry=geometry, ring=ring, vertices=len(ring) - 1,
                       max_error=max_error, poles=poles,
                       crosses_antimeridian=crosses or bool(poles))


def circle_geometry(circle: model.Circle, *, path: str = "circle",
                    tolerance: float = DEFAULT_TOLERANCE) -> AreaGeometry:
    """One CAP ``<circle>`` as a geodesic polygon (lon/lat), with notes."""
    shape = circle_shape(circle.lat, circle.lon, circle.radius_km, tolerance=tolerance)
    notes: list[AreaNote] = []
    centre = f"{circle.lat:g},{circle.lon:g}"
    if circle.radius_km == 0.0:
        notes.append(AreaNote(code="circle-point", path=path,
                              message=f"radius 0: the area is the point {centre}"))
        description = f"circle {centre} radius 0 (a point)"
    elif shape.whole_earth:
        notes.append(AreaNote(code="circle-whole-earth", path=path,
                              message=f"radius {circle.radius_km:g} km reaches the far side "
                                      "of the Earth: the area is the whole globe"))
        description = f"circle {centre} radius {circle.radius_km:g} km (the whole globe)"
    else:
        if shape.poles:
            which = " and ".join("the North Pole" if p > 0 else "the South Pole"
                                 for p in shape.poles)
            notes.append(AreaNote(code="circle-polar", path=path,
                                  message=f"the circle contains {which}; it is drawn as the "
                                          "cap round it, across all longitudes"))
        elif shape.crosses_antimeridian:
            notes.append(AreaNote(code="circle-antimeridian", path=path,
                                  message="the circle reaches past the 180th meridian; split "
                                          "into parts on either side"))
        description = (f"circle {centre} radius {circle.radius_km:g} km: {shape.vertices} "
                       f"vertices, boundary within {shape.max_error:.3%} of the radius")
    return AreaGeometry(geometry=shape.geometry, notes=tuple(notes),
                        sources=(AreaSource(kind=SourceKind.CIRCLE, path=path,
                                            description=description,
                                            geometry=shape.geometry),))


# -- geocodes ------------------------------------------------------------------

_GEOCODE_NOTES = {
    GeocodeStatus.UNKNOWN_NAME: "geocode-unknown-name",
    GeocodeStatus.NOT_DERIVABLE: "geocode-not-derivable",
    GeocodeStatus.NOT_FOUND: "geocode-not-found",
    GeocodeStatus.APPROXIMATED: "geocode-approximated",
}


def geocode_geometry(geocode: model.ValuePair, registry: GeocodeRegistry | None, *,
                     path: str = "geocode") -> AreaGeometry:
    """One CAP ``<geocode>`` resolved through ``registry``; unresolved codes give a note."""
    label = f"{geocode.value_name} {geocode.value}"
    if registry is None:
        return AreaGeometry(geometry=Polygon(), notes=(AreaNote(
            code="geocode-unknown-name", path=path,
            message=f"geocode {label} not resolved: no geocode registry was given"),))
    result = registry.lookup(geocode.value_name, geocode.value)
    notes: list[AreaNote] = []
    if result.status is GeocodeStatus.UNKNOWN_NAME:
        names = registry.value_names()
        known = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        notes.append(AreaNote(code="geocode-unknown-name", path=path,
                              message=f"geocode {label} not resolved: no boundaries are "
                                      f"registered for valueName {geocode.value_name!r} "
                                      f"(registered: {known or 'none'}); it adds nothing to "
                                      "the area"))
    elif result.geometry is None:
        notes.append(AreaNote(code=_GEOCODE_NOTES[result.status], path=path,
                              message=f"geocode {label} not resolved: {result.note}; it adds "
                                      "nothing to the area"))
    elif result.note:
        code = _GEOCODE_NOTES.get(result.status, "geocode-remark")
        notes.append(AreaNote(code=code, path=path, message=f"geocode {label}: {result.note}"))
    if result.geometry is None:
        return AreaGeometry(geometry=Polygon(), notes=tuple(notes))
    source = AreaSource(kind=SourceKind.GEOCODE, path=path, geometry=result.geometry,
                        description=f"{label} -> {result.source} feature {result.key}"
                                    + (f" ({result.name})" if result.name else ""))
    return AreaGeometry(geometry=result.geometry, notes=tuple(notes), sources=(source,))


def _parse_cap_polygon(text: str) -> model.Polygon | str:
    """A CAP polygon text (``lat,lon lat,lon ...``) as a model polygon, or why it is not one."""
    try:
        points = tuple((float(lat), float(lon)) for lat, lon in
                       (token.split(",") for token in text.split()))
    except ValueError:
        return "not a list of lat,lon pairs"
    if len(points) < 4:
        return f"{len(points)} points; at least 4 are needed"
    if points[0] != points[-1]:
        return "the ring is not closed (the last pair differs from the first)"
    if not all(-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 for lat, lon in points):
        return "a coordinate is out of range"
    return model.Polygon(points=points)


def _exclude(text: str, path: str) -> AreaGeometry:
    polygon = _parse_cap_polygon(text)
    if isinstance(polygon, str):
        return AreaGeometry(geometry=Polygon(), notes=(AreaNote(
            code="exclude-polygon-invalid", path=path,
            message=f"EXCLUDE_POLYGON ignored: {polygon}"),))
    part = polygon_geometry(polygon, path=path)
    source = AreaSource(kind=SourceKind.EXCLUDE, path=path, geometry=part.geometry,
                        description=f"EXCLUDE_POLYGON of {len(polygon.points) - 1} points")
    return AreaGeometry(geometry=part.geometry, notes=part.notes, sources=(source,))


# -- areas, infos, alerts ------------------------------------------------------


def area_geometry(area: model.Area, *, registry: GeocodeRegistry | None = None,
                  path: str = "area", tolerance: float = DEFAULT_TOLERANCE,
                  geocodes: GeocodeUse | str = GeocodeUse.UNION) -> AreaGeometry:
    """A CAP ``<area>`` as one lon/lat geometry: the union of its parts, minus exclusions.

    ``path`` is the element path of the area (``alert/info[0]/area[1]``);
    notes name its parts below it.
    """
    use = GeocodeUse.coerce(geocodes)
    parts: list[AreaGeometry] = []
    excludes: list[AreaGeometry] = []
    for i, polygon in enumerate(area.polygons):
        parts.append(polygon_geometry(polygon, path=f"{path}/polygon[{i}]"))
    for i, circle in enumerate(area.circles):
        parts.append(circle_geometry(circle, path=f"{path}/circle[{i}]", tolerance=tolerance))
    has_shape = bool(area.polygons or area.circles)
    ignored = 0
    for i, geocode in enumerate(area.geocodes):
        where = f"{path}/geocode[{i}]"
        if normalize_value_name(geocode.value_name) in _EXCLUDE_NAMES:
            excludes.append(_exclude(geocode.value, where))
        elif use is GeocodeUse.FALLBACK and has_shape:
            ignored += 1
        else:
            parts.append(geocode_geometry(geocode, registry, path=where))
    notes = [note for part in (*parts, *excludes) for note in part.notes]
    sources = [source for part in (*parts, *excludes) for source in part.sources]
    if ignored:
        notes.append(AreaNote(code="geocode-ignored", path=path,
                              message=f"{ignored} geocode{'s' if ignored != 1 else ''} not "
                                      "used: the area has a polygon or circle and geocodes "
                                      "are used only without one (GeocodeUse.FALLBACK)"))
    geometry = _union(part.geometry for part in parts)
    cut = _union(part.geometry for part in excludes)
    if not cut.is_empty:
        if geometry.is_empty:
            notes.append(AreaNote(code="exclude-polygon", path=path,
                                  message="EXCLUDE_POLYGON given, but the area has nothing "
                                          "to exclude it from"))
        else:
            before = geodesic_area_km2(geometry)
            geometry = shapely.difference(geometry, cut)
            removed = before - geodesic_area_km2(geometry)
            notes.append(AreaNote(code="exclude-polygon", path=path,
                                  message=f"{len(excludes)} EXCLUDE_POLYGON geocode"
                                          f"{'s' if len(excludes) != 1 else ''} removed "
                                          f"{removed:.3f} km² from the area"))
    if geometry.is_empty:
        notes.append(AreaNote(code="area-empty", path=path,
                              message=f"area {area.area_desc!r} gives no geometry: "
                                      + ("none of its parts could be resolved"
                                         if parts or excludes else
                                         "it has no polygon, circle or geocode")))
    return AreaGeometry(geometry=_finish(geometry), notes=tuple(notes), sources=tuple(sources))


def _combine(items: list[tuple[str, model.Area]], *, registry: GeocodeRegistry | None,
             tolerance: float, geocodes: GeocodeUse | str,
             memo: dict[model.Area, AreaGeometry]) -> tuple[BaseGeometry, list[AreaNote],
                                                            list[AreaSource]]:
    geoms: list[BaseGeometry] = []
    notes: list[AreaNote] = []
    sources: list[AreaSource] = []
    for path, area in items:
        done = memo.get(area)
        if done is None:
            done = area_geometry(area, registry=registry, path=path, tolerance=tolerance,
                                 geocodes=geocodes)
            memo[area] = done
            notes.extend(done.notes)
            sources.extend(done.sources)
        geoms.append(done.geometry)
    return _union(geoms), notes, sources


def info_geometry(info: model.Info, *, registry: GeocodeRegistry | None = None,
                  path: str = "info", tolerance: float = DEFAULT_TOLERANCE,
                  geocodes: GeocodeUse | str = GeocodeUse.UNION) -> AreaGeometry:
    """A CAP ``<info>`` block's areas as one lon/lat geometry (their union).

    An area repeated in the block is computed once; its notes appear once.
    """
    memo: dict[model.Area, AreaGeometry] = {}
    items = [(f"{path}/area[{i}]", area) for i, area in enumerate(info.areas)]
    geometry, notes, sources = _combine(items, registry=registry, tolerance=tolerance,
                                        geocodes=geocodes, memo=memo)
    if not info.areas:
        notes.append(AreaNote(code="info-no-area", path=path,
                              message="the info block has no <area>: it names no geometry"))
    return AreaGeometry(geometry=_finish(geometry), notes=tuple(notes), sources=tuple(sources))


def alert_geometry(alert: model.Alert, info_index: int | None = None, *,
                   registry: GeocodeRegistry | None = None,
                   tolerance: float = DEFAULT_TOLERANCE,
                   geocodes: GeocodeUse | str = GeocodeUse.UNION) -> AreaGeometry:
    """The geometry of an alert: the union of all its info blocks' areas, or of one block.

    Info blocks in several languages usually repeat the same areas: each
    distinct area is computed once and its notes are reported once, at its
    first path (``alert/info[0]/area[3]``).
    """
    count = len(alert.infos)
    if info_index is None:
        indexes = list(range(count))
    elif -count <= info_index < count:
        indexes = [info_index % count]
    else:
        valid = f"0..{count - 1} or None for all" if count else "None (it has none)"
        raise InvalidGeoInput("info_index", info_index,
                              f"the alert has {count} info blocks (valid: {valid})")
    memo: dict[model.Area, AreaGeometry] = {}
    geoms: list[BaseGeometry] = []
    notes: list[AreaNote] = []
    sources: list[AreaSource] = []
    for index in indexes:
        info = alert.infos[index]
        path = f"alert/info[{index}]"
        items = [(f"{path}/area[{i}]", area) for i, area in enumerate(info.areas)]
        geometry, info_notes, info_sources = _combine(
            items, registry=registry, tolerance=tolerance, geocodes=geocodes, memo=memo)
        if not info.areas:
            info_notes.append(AreaNote(code="info-no-area", path=path,
                                       message="the info block has no <area>: it names no "
                                               "geometry"))
        geoms.append(geometry)
        notes.extend(info_notes)
        sources.extend(info_sources)
    return AreaGeometry(geometry=_finish(_union(geoms)), notes=tuple(notes),
                        sources=tuple(sources))
