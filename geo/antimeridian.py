"""Geometry across the antimeridian (±180° longitude) and around the poles.

Shapely is planar: a ring whose consecutive vertices go from longitude 179.5
to -179.8 is, to it, a band running the long way round the globe through
longitude 0. Alerts for Fiji, Tonga, Kiribati, Chukotka or the Aleutians, and
the cells that cover them, must instead come out as the short shape on both
sides of the antimeridian. The method throughout:

1. read every step between consecutive vertices the shorter way round and
   *unwrap* the longitudes into one continuous frame (they may then run past
   180 or below -180);
2. build (and, if needed, repair) the geometry in that frame, where it is an
   ordinary planar shape;
3. *cut* it at ±180 (and at every further multiple of 360) and shift each
   piece back by a whole number of turns, giving a Polygon or a MultiPolygon
   whose parts meet the antimeridian from both sides.

Polar caps. A ring that goes once round a pole (its unwrapped longitudes end
one full turn, 360°, away from where they started) encloses that pole. In the
continuous frame it is closed through the pole: down the last vertex's
meridian to latitude ±90, along the pole "edge" of the plate carrée map, and
back up the first vertex's meridian. After the cut this is the familiar map
shape of a polar cap: everything poleward of the ring, all longitudes from
-180 to 180. For a CAP polygon the pole is the one on the side of the
equator where the ring's mean latitude lies; a circle knows which pole it
contains (see :func:`geo.areas.circle_geometry`).

Public API (used by other ``geo`` modules): :func:`split_ring` (one ring),
:func:`fix_antimeridian` (arrays of cell coverage, vectorized: only the few
cells that cross are touched), :func:`crosses_antimeridian`,
:func:`split_polygon` (boundary-file polygons drawn the spherical way, holes
and polar rings included), and the building blocks :func:`unwrap_longitudes`,
:func:`continuous_ring`, :func:`close_at_pole`, :func:`cut_at_antimeridian`
and :func:`polygonal`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidGeoInput

__all__ = [
    "close_at_pole",
    "continuous_ring",
    "crosses_antimeridian",
    "cut_at_antimeridian",
    "fix_antimeridian",
    "polygonal",
    "split_polygon",
    "split_ring",
    "unwrap_longitudes",
    "wrap_longitude",
]

FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]

#: shapely type ids (shapely.GeometryType) used to pick parts apart.
_POLYGON, _MULTIPOLYGON, _COLLECTION = 3, 6, 7

#: Boxes for turns -1, 0 and +1: enough for any geometry whose continuous
#: frame stays within [-540, 540], which is all that unwrapping can produce
#: from input in [-180, 180].
_TURNS = np.array([-1, 0, 1])
_BOXES = shapely.box(-180.0 + 360.0 * _TURNS, -90.0, 180.0 + 360.0 * _TURNS, 90.0)


def wrap_longitude(lon: npt.ArrayLike) -> FloatArray:
    """Longitudes brought into [-180, 180] by whole turns; values already in range are kept.

    Keeping in-range values untouched (rather than ``(lon + 180) % 360 - 180``)
    matters: +180 stays +180 and no coordinate changes by a rounding error.
    """
    values = np.asarray(lon, dtype=np.float64)
    wrapped = (values + 180.0) % 360.0 - 180.0
    inside = (values >= -180.0) & (values <= 180.0)
    return np.where(inside, values, wrapped)


def unwrap_longitudes(lon: npt.ArrayLike) -> FloatArray:
    """Make a sequence of longitudes continuous: each step is taken the shorter way round.

    The first longitude is wrapped into [-180, 180]; each later one is shifted
    by whole turns so that it differs from its predecessor by at most 180°.
    A step of exactly 180° is kept as given. Vertices that need no shift are
    returned bit for bit.
    """
    values = np.asarray(lon, dtype=np.float64)
    if values.ndim != 1:
        raise InvalidGeoInput("lon", values.shape, "expected a 1-d sequence of longitudes")
    if values.size == 0:
        return values.copy()
    raw = np.diff(values)
    short = raw.copy()
    long_way = np.abs(raw) > 180.0
    short[long_way] = (raw[long_way] + 180.0) % 360.0 - 180.0
    turns = np.rint((short - raw) / 360.0)
    first_turn = np.rint((float(wrap_longitude(values[0])) - values[0]) / 360.0)
    total = np.concatenate(([first_turn], first_turn + np.cumsum(turns)))
    return np.where(total == 0.0, values, values + 360.0 * total)


def _as_ring(lonlat: npt.ArrayLike) -> FloatArray:
    ring = np.asarray(lonlat, dtype=np.float64)
    if ring.ndim != 2 or ring.shape[1] < 2:
        raise InvalidGeoInput("lonlat", ring.shape, "expected an (n, 2) array of lon, lat rows")
    ring = ring[:, :2]
    if not np.isfinite(ring).all():
        raise InvalidGeoInput("lonlat", "...", "the ring has NaN or infinite coordinates")
    if len(ring) and not np.array_equal(ring[0], ring[-1]):
        ring = np.vstack([ring, ring[:1]])
    if len(ring) < 4:
        raise InvalidGeoInput("lonlat", len(ring),
                              "a ring needs at least 3 distinct corners and the first repeated")
    return ring


def continuous_ring(lonlat: npt.ArrayLike) -> tuple[FloatArray, int]:
    """A closed ring of (lon, lat) rows in a continuous longitude frame, and its winding.

    The ring is closed if it is not already. The winding is the number of
    full turns its longitudes make: 0 for an ordinary ring, ±1 for a ring
    that goes round a pole (its last vertex then sits 360° away from its
    first in the continuous frame; see :func:`close_at_pole`).
    """
    ring = _as_ring(lonlat)
    lon = unwrap_longitudes(ring[:, 0])
    winding = round((lon[-1] - lon[0]) / 360.0)
    return np.column_stack([lon, ring[:, 1]]), int(winding)


def close_at_pole(ring: npt.ArrayLike, pole_lat: float) -> FloatArray:
    """Close a ring that winds once round a pole through that pole (latitude ±90).

    ``ring`` is in the continuous frame, from its first vertex to the copy
    of it one turn away. The result adds the two corners on the pole line of
    the plate carrée map and closes back to the first vertex.
    """
    coords = np.asarray(ring, dtype=np.float64)
    if pole_lat not in (90.0, -90.0):
        raise InvalidGeoInput("pole_lat", pole_lat, "a pole is at latitude 90 or -90")
    corners = np.array([[coords[-1, 0], pole_lat], [coords[0, 0], pole_lat], coords[0, :2]])
    return np.vstack([coords[:, :2], corners])


def _parts_of_dimension(geom: BaseGeometry, dim: int) -> list[BaseGeometry]:
    """The non-empty parts of ``geom`` (flattening collections) of topological dimension ``dim``."""
    parts = shapely.get_parts(geom)
    while True:
        collections = shapely.get_type_id(parts) == _COLLECTION
        if not collections.any():
            break
        parts = np.concatenate([parts[~collections], shapely.get_parts(parts[collections])])
    keep = (shapely.get_dimensions(parts) == dim) & ~shapely.is_empty(parts)
    return list(parts[keep])


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """The polygonal part of a geometry (a Polygon, a MultiPolygon, or an empty Polygon).

    Used after ``make_valid`` and overlays, which may return collections with
    stray lines or points where pieces touch.
    """
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = _parts_of_dimension(geom, 2)
    if not parts:
        return Polygon()
    if len(parts) == 1:
        return parts[0]
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, Polygon | MultiPolygon) else polygonal(merged)


def _shift(geom: Any, turns: int) -> Any:
    """Geometries (scalar or array) moved by ``turns`` full turns of longitude."""
    offset = np.array([360.0 * turns, 0.0])
    return shapely.transform(geom, lambda coords: coords + offset)


def cut_at_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """Cut a geometry given in a continuous longitude frame at ±180 and bring the pieces home.

    Pieces beyond 180 (or below -180) are shifted by whole turns into
    [-180, 180]; pieces that meet again after shifting (a polar cap) are
    merged. Latitudes are clipped to [-90, 90]. A geometry already within
    [-180, 180] is returned as it is. Only pieces of the geometry's own
    dimension are kept (cutting a polygon gives no stray seam lines).
    """
    if geom.is_empty:
        return geom
    xmin, ymin, xmax, ymax = geom.bounds
    if xmin >= -180.0 and xmax <= 180.0 and ymin >= -90.0 and ymax <= 90.0:
        return geom
    dim = int(shapely.get_dimensions(geom))
    pieces: list[BaseGeometry] = []
    for turn in range(math.floor((xmin + 180.0) / 360.0), math.ceil((xmax - 180.0) / 360.0) + 1):
        window = shapely.box(-180.0 + 360.0 * turn, -90.0, 180.0 + 360.0 * turn, 90.0)
        piece = shapely.intersection(geom, window)
        if piece.is_empty:
            continue
        pieces.extend(_parts_of_dimension(_shift(piece, -turn), dim))
    if not pieces:
        return Polygon() if dim == 2 else shapely.GeometryCollection()
    if len(pieces) == 1:
        return pieces[0]
    return shapely.union_all(pieces)


def split_ring(lonlat: npt.ArrayLike) -> Polygon | MultiPolygon:
    """One closed ring of (lon, lat) rows, which may jump across 180°, as a correct polygon.

    The longitudes are unwrapped (each step the shorter way round), the
    polygon is built in that continuous frame, repaired with
    ``make_valid(method="structure")`` if the ring is not simple, then cut at
    ±180 with the parts shifted back: a MultiPolygon with parts on both sides
    of the antimeridian, never a band round the rest of the globe. A ring
    that winds round a pole is closed through the pole on the side of the
    equator where its mean latitude lies (see the module docstring).
    ``geo.areas`` does the same but reports every repair.
    """
    ring, winding = continuous_ring(lonlat)
    if winding:
        ring = close_at_pole(ring, 90.0 if float(np.mean(ring[:, 1])) >= 0.0 else -90.0)
    polygon = shapely.Polygon(ring)
    if not polygon.is_valid:
        polygon = polygonal(shapely.make_valid(polygon, method="structure"))
    return polygonal(cut_at_antimeridian(polygon))


def _ring_crosses(coords: FloatArray) -> bool:
    if len(coords) < 2:
        return False
    lon = coords[:, 0]
    return bool((np.abs(np.diff(lon)) > 180.0).any() or lon.min() < -180.0 or lon.max() > 180.0)


def split_polygon(geom: BaseGeometry) -> BaseGeometry:
    """A Polygon/MultiPolygon whose rings jump across 180° (the spherical, d3/TopoJSON way) fixed.

    Boundary files drawn for spherical renderers (world-atlas TopoJSON, for
    one) give Russia, Fiji and Antarctica rings that step from 179.9 to -180
    or wind round the South Pole. Each polygon with such a ring is rebuilt
    with :func:`split_ring` per ring, combined by the even-odd rule (the
    exclusive-or of the rings, which for an ordinary polygon is its shell
    minus its holes, and which stays right when a hole or a shell is a ring
    round a pole). Polygons without such rings are kept as they are; other
    geometry types are returned unchanged.
    """
    if not isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    fixed = False
    out: list[BaseGeometry] = []
    for part in parts:
        rings = [np.asarray(part.exterior.coords)] + [np.asarray(r.coords)
                                                      for r in part.interiors]
        if not any(_ring_crosses(ring) for ring in rings):
            out.append(part)
            continue
        fixed = True
        region: BaseGeometry = split_ring(rings[0])
        for ring in rings[1:]:
            region = shapely.symmetric_difference(region, split_ring(ring))
        out.append(polygonal(region))
    if not fixed:
        return geom
    return polygonal(shapely.union_all(out))


def crosses_antimeridian(lonlat: npt.ArrayLike) -> bool:
    """True if a ring of (lon, lat) rows, read the shorter way round, crosses ±180°.

    That is: a step between consecutive vertices jumps across 180 (179.5 then
    -179.8), or the ring is given in a continuous frame that runs past ±180,
    or it winds round a pole. Touching ±180 is not crossing.
    """
    ring, winding = continuous_ring(lonlat)
    return bool(winding != 0 or ring[:, 0].min() < -180.0 or ring[:, 0].max() > 180.0)


def _east_of_antimeridian(coords: FloatArray) -> FloatArray:
    """Coordinates with negative longitudes moved one turn east (into 180..360)."""
    return np.where(coords[:, :1] < 0.0, coords + np.array([360.0, 0.0]), coords)


def _polygonal_or_none(pieces: GeometryArray) -> GeometryArray:
    """Keep polygonal pieces; stray lines/points from touching boxes become None (vectorized)."""
    out = pieces.copy()
    out[shapely.is_empty(out) | (shapely.get_dimensions(out) < 2)] = None
    mixed = np.flatnonzero(shapely.get_type_id(out) == _COLLECTION)
    for i in mixed:  # rare: a piece that touches a box edge along a line as well
        out[i] = polygonal(out[i])
    return out


def fix_antimeridian(geoms: Any) -> Any:
    """Vectorized repair of (cell coverage) polygons near the antimeridian.

    ``geoms`` is a shapely geometry or an array of them (None allowed); the
    result has the same shape, with untouched elements returned as the very
    same objects. Two kinds are fixed, both found with one pass over the
    bounds:

    - *jumping* polygons, wider than 180° of longitude: their vertices lie on
      both sides of the antimeridian (179.9 and -179.9). Negative longitudes
      are moved one turn east, which puts the polygon into a continuous frame.
      This assumes no cell is really wider than 180° of longitude.
    - polygons in a *continuous frame*, with longitudes beyond ±180 (as
      generated by a vectorized sector/circle synthesis around a site at
      179.9°).

    Both are cut at ±180 and shifted back (a MultiPolygon with a part on
    each side). Polar caps are not handled here (no cell coverage contains a
    pole); polygons beyond ±540° are left as they are.
    """
    array = np.asarray(geoms, dtype=object)
    scalar = array.ndim == 0
    flat = array.reshape(-1).copy()
    bounds = shapely.bounds(flat)
    wide = (bounds[:, 2] - bounds[:, 0]) > 180.0
    outside = (bounds[:, 0] < -180.0) | (bounds[:, 2] > 180.0)
    todo = np.flatnonzero(wide | outside)
    if todo.size:
        subset = flat[todo]
        jumping = wide[todo]
        if jumping.any():
            subset[jumping] = shapely.transform(subset[jumping], _east_of_antimeridian)
        pieces = np.empty((subset.size, _TURNS.size), dtype=object)
        for column, (turn, window) in enumerate(zip(_TURNS, _BOXES, strict=True)):
            piece = shapely.intersection(subset, window)
            if turn:
                piece = _shift(piece, -int(turn))
            pieces[:, column] = _polygonal_or_none(piece)
        flat[todo] = shapely.union_all(pieces, axis=1)
    return flat[0] if scalar else flat.reshape(array.shape)
