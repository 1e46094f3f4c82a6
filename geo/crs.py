"""The equal-area projection in which cell overlaps are measured.

Overlap fractions (area of cell ∩ alert over area of cell) must be measured in
an equal-area coordinate reference system: in lon/lat degrees a cell in
Lapland would count less than one in Sicily. :func:`equal_area_for` picks one
suited to an extent: a Lambert azimuthal equal-area projection centred on it
(little shape distortion over a country or a continent), or Equal Earth for
extents wider than a hemisphere. Both are equal-area everywhere, on the WGS84
ellipsoid, so areas in square metres are true ellipsoidal areas.

The projection is named by a PROJ string, so that PostGIS can be asked for
exactly the same one (``ST_Transform(geom, proj4)``) when results are compared.
Extents that cross the antimeridian (Fiji, Chukotka) are centred on it, not on
Greenwich.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer

__all__ = ["EqualArea", "equal_area_for", "lon_center"]

#: Extents wider than this (degrees of longitude or latitude) get Equal Earth.
_AZIMUTHAL_MAX_SPAN = 120.0

_local = threading.local()


@dataclass(frozen=True, slots=True, kw_only=True)
class EqualArea:
    """An equal-area projection named by its PROJ string.

    ``transform`` and ``inverse`` reproject whole arrays of coordinates or
    geometries at once; transformers are cached per thread (pyproj's are not
    meant to be shared between threads).
    """

    #: The PROJ string, e.g. ``+proj=laea +lat_0=50.0000 +lon_0=10.0000 ...``.
    proj4: str

    @property
    def crs(self) -> CRS:
        """The projection as a pyproj CRS."""
        return CRS.from_proj4(self.proj4)

    def _transformer(self, inverse: bool) -> Transformer:
        cache: dict[tuple[str, bool], Transformer] | None = getattr(_local, "cache", None)
        if cache is None:
            cache = _local.cache = {}
        key = (self.proj4, inverse)
        found = cache.get(key)
        if found is None:
            source, target = ("EPSG:4326", self.proj4) if not inverse else (self.proj4,
                                                                           "EPSG:4326")
            found = cache[key] = Transformer.from_crs(source, target, always_xy=True)
        return found

    def xy(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[
            npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Project longitudes and latitudes (degrees) to x, y in metres.

        The Lambert azimuthal projection is computed by a compiled copy of
        PROJ's own formulas (``laea.cpp``, ellipsoidal oblique and equatorial
        aspects), eight times faster than going through pyproj for the tens of
        millions of vertices of a national inventory; the tests hold it to
        pyproj within a micrometre. Anything else goes through pyproj.
        """
        lon_a = np.ascontiguousarray(lon, dtype=np.float64)
        lat_a = np.ascontiguousarray(lat, dtype=np.float64)
        params = _laea_params(self.proj4)
        if params is not None and lon_a.shape == lat_a.shape:
            # Threads pay off for big arrays only; a small call must not wait for a
            # second core that a busy machine may not give it soon.
            kernel = _laea_forward if lon_a.size >= 200_000 else _laea_forward_serial
            x, y = kernel(lon_a.ravel(), lat_a.ravel(), *params)
            return x.reshape(lon_a.shape), y.reshape(lat_a.shape)
        x, y = self._transformer(False).transform(lon_a, lat_a)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def pyproj_xy(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[
            npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Like :meth:`xy`, always through pyproj (the reference for the compiled path)."""
        x, y = self._transformer(False).transform(np.asarray(lon, dtype=np.float64),
                                                  np.asarray(lat, dtype=np.float64))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def lonlat(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[
            npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Unproject x, y in metres to longitudes and latitudes in degrees."""
        lon, lat = self._transformer(True).transform(np.asarray(x, dtype=np.float64),
                                                     np.asarray(y, dtype=np.float64))
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def transform(self, geometries: Any) -> Any:
        """Project a shapely geometry or an array of them from lon/lat (vertex by vertex)."""
        return shapely.transform(geometries, self._vertices, interleaved=False)

    def _vertices(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> tuple[
            npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return self.xy(lon, lat)


def lon_center(lon_min: npt.ArrayLike, lon_max: npt.ArrayLike) -> tuple[float, float]:
    """The centre and width of the narrowest longitude interval holding the given spans.

    Spans are ``lon_min[i] .. lon_max[i]`` in degrees (-180..180). The
    interval may cross the antimeridian: spans around 179 and -179 give a
    centre near 180, not 0. Vectorized over many spans through a one-degree
    occupancy histogram, so a million cells cost a few milliseconds.
    """
    lo = np.asarray(lon_min, dtype=np.float64).ravel()
    hi = np.asarray(lon_max, dtype=np.float64).ravel()
    if lo.size == 0:
        return 0.0, 0.0
    occupied = np.zeros(360, dtype=np.int64)
    first = np.clip(np.floor(lo + 180.0).astype(np.int64), 0, 359)
    last = np.clip(np.floor(hi + 180.0).astype(np.int64), 0, 359)
    # Mark every degree bin each span touches: a difference array, then a running sum.
    np.add.at(occupied, first, 1)
    ends = last + 1
    np.add.at(occupied, ends[ends < 360], -1)
    filled = np.cumsum(occupied) > 0
    if filled.all():
        return 0.0, 360.0
    # The longest run of empty bins (circularly) is where the interval is not.
    empty = ~filled
    doubled = np.concatenate([empty, empty])
    best_len, best_end, run = 0, 0, 0
    for i, is_empty in enumerate(doubled.tolist()):
        run = run + 1 if is_empty else 0
        if run > best_len:
            best_len, best_end = run, i
    best_len = min(best_len, 360)
    gap_start = best_end - best_len + 1
    # The occupied interval runs from the end of the gap around to its start.
    start = (gap_start + best_len) % 360 - 180.0
    width = 360.0 - best_len
    center = start + width / 2.0
    if center >= 180.0:
        center -= 360.0
    return float(center), float(width)


def equal_area_for(bounds: npt.ArrayLike) -> EqualArea:
    """The equal-area projection suited to an extent.

    ``bounds`` is one ``(lon_min, lat_min, lon_max, lat_max)`` or an array of
    them (for instance ``shapely.bounds`` of every cell). The centre is rounded
    to 1e-4 degree so that the PROJ string is short and stable.
    """
    boxes = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    if boxes.size == 0:
        return EqualArea(proj4=_laea(0.0, 0.0))
    center_lon, lon_width = lon_center(boxes[:, 0], boxes[:, 2])
    lat_min, lat_max = float(boxes[:, 1].min()), float(boxes[:, 3].max())
    if lon_width > _AZIMUTHAL_MAX_SPAN or lat_max - lat_min > _AZIMUTHAL_MAX_SPAN:
        return EqualArea(proj4=f"+proj=eqearth +lon_0={center_lon:.4f} +x_0=0 +y_0=0 "
                               "+ellps=WGS84 +units=m +no_defs")
    if lon_width < 359.0:
        # The histogram has one-degree bins: refine the centre from the spans themselves.
        lo, hi = boxes[:, 0], boxes[:, 2]
        shifted_lo = (lo - center_lon + 180.0) % 360.0 - 180.0
        shifted_hi = (hi - center_lon + 180.0) % 360.0 - 180.0
        center_lon = center_lon + (float(shifted_lo.min()) + float(shifted_hi.max())) / 2.0
        center_lon = (center_lon + 180.0) % 360.0 - 180.0
    return EqualArea(proj4=_laea((lat_min + lat_max) / 2.0, center_lon))


def _laea(lat_0: float, lon_0: float) -> str:
    lat_0 = round(lat_0, 4) + 0.0
    lon_0 = round(lon_0, 4) + 0.0
    return (f"+proj=laea +lat_0={lat_0:.4f} +lon_0={lon_0:.4f} +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs")


# -- compiled Lambert azimuthal equal-area (PROJ's laea.cpp, ellipsoidal) -------------

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit_parallel(func: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True, parallel=True)(func))


#: WGS84 semi-major axis (m) and flattening, as +ellps=WGS84 in PROJ.
_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563
_LAEA_RE = re.compile(r"^\+proj=laea \+lat_0=(-?[0-9.]+) \+lon_0=(-?[0-9.]+) \+x_0=0 \+y_0=0 "
                      r"\+ellps=WGS84 \+units=m \+no_defs$")


def _qsfn(sinphi: float, e: float, one_es: float) -> float:
    con = e * sinphi
    return one_es * (sinphi / (1.0 - con * con) - (0.5 / e) * math.log((1.0 - con) / (1.0 + con)))


def _laea_params(proj4: str) -> tuple[float, float, float, float, float, float, float, float,
                                      bool] | None:
    """The constants of PROJ's laea setup for strings made by :func:`_laea`; None otherwise."""
    match = _LAEA_RE.match(proj4)
    if match is None:
        return None
    lat_0, lon_0 = math.radians(float(match[1])), math.radians(float(match[2]))
    if abs(abs(lat_0) - math.pi / 2) < 1e-10:
        return None  # polar aspect: leave it to pyproj
    es = _WGS84_F * (2.0 - _WGS84_F)
    e = math.sqrt(es)
    one_es = 1.0 - es
    qp = _qsfn(1.0, e, one_es)
    rq = math.sqrt(0.5 * qp)
    equatorial = abs(lat_0) < 1e-10
    if equatorial:
        sinb1, cosb1, xmf, ymf = 0.0, 1.0, 1.0, 0.5 * qp
    else:
        sinphi = math.sin(lat_0)
        sinb1 = _qsfn(sinphi, e, one_es) / qp
        cosb1 = math.sqrt(1.0 - sinb1 * sinb1)
        dd = math.cos(lat_0) / (math.sqrt(1.0 - es * sinphi * sinphi) * rq * cosb1)
        xmf, ymf = rq * dd, rq / dd
    return lon_0, e, one_es, qp, sinb1, cosb1, xmf, ymf, equatorial


def _jit(func: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True)(func))


@_jit
def _laea_point(lon: float, lat: float, lon_0: float, e: float, one_es: float, qp: float,
                sinb1: float, cosb1: float, xmf: float, ymf: float,
                equatorial: bool) -> tuple[float, float]:
    deg = math.pi / 180.0
    lam = lon * deg - lon_0
    # PROJ's adjlon: bring the longitude difference into [-pi, pi].
    if abs(lam) > math.pi:
        lam = lam - 2.0 * math.pi * math.floor((lam + math.pi) / (2.0 * math.pi))
    coslam = math.cos(lam)
    sinlam = math.sin(lam)
    sinphi = math.sin(lat * deg)
    con = e * sinphi
    q = one_es * (sinphi / (1.0 - con * con) - (0.5 / e) * math.log((1.0 - con) / (1.0 + con)))
    sinb = q / qp
    cosb2 = 1.0 - sinb * sinb
    cosb = math.sqrt(cosb2) if cosb2 > 0.0 else 0.0
    if equatorial:
        b = math.sqrt(2.0 / (1.0 + cosb * coslam))
        y = _WGS84_A * (b * sinb * ymf)
    else:
        b = math.sqrt(2.0 / (1.0 + sinb1 * sinb + cosb1 * cosb * coslam))
        y = _WGS84_A * (ymf * b * (cosb1 * sinb - sinb1 * cosb * coslam))
    return _WGS84_A * (xmf * b * cosb * sinlam), y


@_jit_parallel
def _laea_forward(lon: Any, lat: Any, lon_0: float, e: float, one_es: float, qp: float,
                  sinb1: float, cosb1: float, xmf: float, ymf: float, equatorial: bool) -> Any:
    n = lon.size
    x = np.empty(n)
    y = np.empty(n)
    for i in numba.prange(n):
        x[i], y[i] = _laea_point(lon[i], lat[i], lon_0, e, one_es, qp, sinb1, cosb1, xmf, ymf,
                                 equatorial)
    return x, y


@_jit
def _laea_forward_serial(lon: Any, lat: Any, lon_0: float, e: float, one_es: float, qp: float,
                         sinb1: float, cosb1: float, xmf: float, ymf: float,
                         equatorial: bool) -> Any:
    n = lon.size
    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        x[i], y[i] = _laea_point(lon[i], lat[i], lon_0, e, one_es, qp, sinb1, cosb1, xmf, ymf,
                                 equatorial)
    return x, y
