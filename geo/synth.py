"""Coverage synthesis (sector wedges, omni circles) and synthetic national inventories.

Coverage polygons are built for whole arrays of cells at once: every vertex
is computed with numpy, then one ``shapely.polygons`` call makes the polygons
(no Python loop per cell). Each polygon has :data:`VERTICES` coordinates
(the closing one included):

- a *sector wedge*: the site (apex), an arc of ``beamwidth`` degrees centred
  on ``azimuth`` at ``range`` metres sampled at :data:`VERTICES` - 2 points,
  and the apex again. Azimuths are degrees clockwise from true north.
- an *omni circle* (a beamwidth of :data:`OMNI_BEAMWIDTH` = 359 degrees or
  more, since the two edges of a wider wedge would all but meet; or
  OpenCelliD's ``range``):
  :data:`VERTICES` - 1 points at ``range`` metres, then the first again.

Rings run counter-clockwise (the GeoJSON convention); vertices lie *on* the
arc or circle, at the given geodesic distance from the site.

Geodesy. Calling ``pyproj.Geod.fwd`` for the 19 million vertices of a
million cells costs 14 s. Instead, vertices are placed by a second-order
expansion of the direct geodesic problem about the site on the WGS84
ellipsoid (east and north offsets scaled by the radii of curvature N and M,
plus the meridian-convergence terms in tan(latitude)). Checked against
``Geod.inv`` (``tests/unit/test_cells.py``, ``ops/bench/cells.py``): the
distance is within 1e-4 relative and the azimuth within 0.01 degrees for
ranges up to 35 km at latitudes up to 70 degrees (7e-4 at 100 km). Sites
poleward of 70 degrees, where the expansion degrades, use ``Geod.fwd``
itself. Longitudes come out in a continuous frame (179.9 + 0.3 = 180.2);
polygons that reach past ±180 are cut and brought home by
:func:`geo.antimeridian.fix_antimeridian` (a MultiPolygon with a part on each
side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from geo.antimeridian import fix_antimeridian, wrap_longitude
from geo.errors import InvalidGeoInput
from geo.inventory import (
    FloatArray,
    GeometryArray,
    IntArray,
    Inventory,
    StrArray,
    format_cell_ids,
    iter_chunks,
)

__all__ = [
    "DEFAULT_BBOX",
    "OMNI_BEAMWIDTH",
    "VERTICES",
    "circle_polygons",
    "destination",
    "sector_polygons",
    "synthesize",
]

#: Coordinates per coverage polygon, the closing one included.
VERTICES: Final = 20

#: Beamwidths from this up are drawn as circles (module docstring).
OMNI_BEAMWIDTH: Final = 359.0

#: WGS84 semi-major axis (m) and first eccentricity squared.
_A: Final = 6378137.0
_F: Final = 1 / 298.257223563
_E2: Final = _F * (2 - _F)

#: Sites poleward of this latitude are computed with pyproj's exact Geod.fwd.
_EXPANSION_MAX_LAT: Final = 70.0

#: Cells per vectorized chunk: bounds the temporary arrays to some 100 MB.
_CHUNK: Final = 65536

#: A mid-size country: the extent of Germany (about 650 km by 850 km).
DEFAULT_BBOX: Final = (5.9, 47.3, 15.0, 55.0)


def destination(lon: npt.ArrayLike, lat: npt.ArrayLike, azimuth_deg: npt.ArrayLike,
                distance_m: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Points at a geodesic distance and azimuth from sites (broadcasting, vectorized).

    Returns (lon, lat) in degrees; longitudes are continuous with the site's
    (they may pass ±180). Accuracy as in the module docstring.
    """
    az = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
    return _offsets(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64),
                    np.sin(az), np.cos(az), np.asarray(distance_m, dtype=np.float64))


def _offsets(lon0: FloatArray, lat0: FloatArray, sin_az: FloatArray, cos_az: FloatArray,
             dist: FloatArray) -> tuple[FloatArray, FloatArray]:
    """:func:`destination` with the azimuths given by their sine and cosine.

    Terms of the site alone are computed at the site's shape (one per cell,
    not one per vertex) and broadcast over the vertices.
    """
    phi = np.radians(lat0)
    sin_phi, cos_phi = np.sin(phi), np.cos(phi)
    cos_phi = np.where(cos_phi == 0.0, 1e-300, cos_phi)
    w2 = 1.0 - _E2 * sin_phi * sin_phi
    n_radius = _A / np.sqrt(w2)
    m_radius = n_radius * (1.0 - _E2) / w2
    tan_phi = sin_phi / cos_phi
    north_scale = np.degrees(1.0 / m_radius)
    east_scale = np.degrees(1.0 / (n_radius * cos_phi))
    east = dist * sin_az
    north = dist * cos_az
    # Second order: lat -= east^2 tan(phi) / (2 M N), lon += east north tan(phi) / (M N).
    out_lat = north - (0.5 * tan_phi / n_radius) * (east * east)
    out_lat *= north_scale
    out_lat += lat0
    out_lon = north * (tan_phi / m_radius)
    out_lon += 1.0
    out_lon *= east
    out_lon *= east_scale
    out_lon += lon0
    shape = np.broadcast_shapes(np.shape(out_lon), np.shape(out_lat))
    polar = np.broadcast_to(np.abs(lat0) > _EXPANSION_MAX_LAT, shape)
    if polar.any():
        out_lon = np.array(np.broadcast_to(out_lon, shape))
        out_lat = np.array(np.broadcast_to(out_lat, shape))
        from pyproj import Geod

        lon_b, lat_b, dist_b = (np.broadcast_to(v, shape)[polar] for v in (lon0, lat0, dist))
        az_b = np.degrees(np.arctan2(np.broadcast_to(sin_az, shape)[polar],
                                     np.broadcast_to(cos_az, shape)[polar]))
        exact_lon, exact_lat, _ = Geod(ellps="WGS84").fwd(lon_b, lat_b, az_b, dist_b)
        # Keep the continuous frame: the exact longitude, shifted by whole turns
        # to within 180 degrees of its site.
        step = (np.asarray(exact_lon) - lon_b + 180.0) % 360.0 - 180.0
        out_lon[polar] = lon_b + step
        out_lat[polar] = exact_lat
    return out_lon, out_lat


def _as_column(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise InvalidGeoInput(name, array.shape, f"expected a scalar or {n} values")
    return array


#: Offsets (degrees) of the arc vertices from the centre azimuth, per degree of
#: beamwidth, counter-clockwise (azimuth decreasing); and of a circle's vertices.
_ARC: Final[FloatArray] = np.linspace(0.5, -0.5, VERTICES - 2)
_RING: Final[FloatArray] = np.arange(VERTICES - 1, dtype=np.float64) * (-360.0 / (VERTICES - 1))
#: Up to this many distinct beamwidths, arc offsets come from a small table.
_TABLE_MAX: Final = 256


def _azimuths(centre_deg: FloatArray, offsets_deg: FloatArray | None,
              beamwidth: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sine and cosine of centre + offset for each cell and vertex, by angle addition.

    The per-vertex trigonometry is replaced by a few multiplications: the
    offsets' sines and cosines come from a table (one row per distinct
    beamwidth; inventories have a handful).
    """
    centre = np.radians(centre_deg)[:, None]
    sin_c, cos_c = np.sin(centre), np.cos(centre)
    if offsets_deg is not None:  # the same offsets for every cell (circles)
        sin_o, cos_o = np.sin(np.radians(offsets_deg)), np.cos(np.radians(offsets_deg))
    else:
        widths, inverse = np.unique(beamwidth, return_inverse=True)
        if len(widths) <= _TABLE_MAX:
            table = np.radians(widths[:, None] * _ARC[None, :])
            sin_o, cos_o = np.sin(table)[inverse], np.cos(table)[inverse]
        else:
            offsets = np.radians(beamwidth[:, None] * _ARC[None, :])
            sin_o, cos_o = np.sin(offsets), np.cos(offsets)
    return sin_c * cos_o + cos_c * sin_o, cos_c * cos_o - sin_c * sin_o


def sector_polygons(lon: npt.ArrayLike, lat: npt.ArrayLike, azimuth_deg: npt.ArrayLike,
                    beamwidth_deg: npt.ArrayLike, range_m: npt.ArrayLike) -> GeometryArray:
    """Sector wedges (omni circles where the beamwidth is 359 or more) for arrays of cells.

    Scalars broadcast. Beamwidths must be in (0, 360] and ranges positive
    (the importers check; here they raise :class:`~geo.errors.InvalidGeoInput`).
    Returns an object array of Polygons (MultiPolygons where cut at ±180).
    """
    lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    n = lon_a.shape[0]
    lat_a = _as_column(lat, n, "lat")
    az_a = _as_column(azimuth_deg, n, "azimuth_deg")
    bw_a = _as_column(beamwidth_deg, n, "beamwidth_deg")
    range_a = _as_column(range_m, n, "range_m")
    if n and not ((bw_a > 0.0) & (bw_a <= 360.0)).all():
        raise InvalidGeoInput("beamwidth_deg", "...", "every beamwidth must be in (0, 360]")
    if n and not (range_a > 0.0).all():
        raise InvalidGeoInput("range_m", "...", "every range must be positive")
    result = np.empty(n, dtype=object)
    for part in iter_chunks(n, _CHUNK):
        omni = bw_a[part] >= OMNI_BEAMWIDTH
        coords = np.empty((part.stop - part.start, VERTICES, 2))
        for mask, is_circle in ((~omni, False), (omni, True)):
            if not mask.any():
                continue
            rows = np.flatnonzero(mask) + part.start
            site_lon, site_lat = lon_a[rows, None], lat_a[rows, None]
            sin_az, cos_az = _azimuths(az_a[rows], _RING if is_circle else None, bw_a[rows])
            x, y = _offsets(site_lon, site_lat, sin_az, cos_az, range_a[rows, None])
            # Fill the rows of this kind in place when they are the whole chunk.
            block = coords if mask.all() else coords[mask]
            if is_circle:  # the ring, then its first point again
                block[:, : VERTICES - 1, 0], block[:, : VERTICES - 1, 1] = x, y
                block[:, VERTICES - 1] = block[:, 0]
            else:  # apex, arc, apex
                block[:, 0, 0], block[:, 0, 1] = site_lon[:, 0], site_lat[:, 0]
                block[:, 1: VERTICES - 1, 0], block[:, 1: VERTICES - 1, 1] = x, y
                block[:, VERTICES - 1] = block[:, 0]
            if block is not coords:
                coords[mask] = block
        result[part] = _polygons(coords)
    return _fix_edges(result)


def _polygons(coords: FloatArray) -> GeometryArray:
    """Polygons of one ring each from an (n, k, 2) array of closed rings.

    ``shapely.from_ragged_array`` copies whole coordinate blocks into GEOS and
    is several times faster than ``shapely.polygons`` on the same array.
    """
    n, k = coords.shape[:2]
    return np.asarray(shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, coords.reshape(n * k, 2),
        (np.arange(n + 1, dtype=np.int64) * k, np.arange(n + 1, dtype=np.int64))), dtype=object)


def circle_polygons(lon: npt.ArrayLike, lat: npt.ArrayLike,
                    range_m: npt.ArrayLike) -> GeometryArray:
    """Omni coverage circles of ``range_m`` metres around sites (vectorized)."""
    return sector_polygons(lon, lat, 0.0, 360.0, range_m)


def _fix_edges(polygons: GeometryArray) -> GeometryArray:
    """Cut coverage that reaches past ±180 (only those polygons are touched)."""
    if not polygons.size:
        return polygons
    bounds = shapely.bounds(polygons)
    if (bounds[:, 0] >= -180.0).all() and (bounds[:, 2] <= 180.0).all():
        return polygons
    return np.asarray(fix_antimeridian(polygons), dtype=object)


# -- synthetic national inventories -------------------------------------------------

#: Radio mix of synthetic sites (all sectors of a site share the radio).
_RADIO_MIX: Final = (("LTE", 0.55), ("NR", 0.25), ("UMTS", 0.10), ("GSM", 0.10))
#: Share of sites in urban clusters; the rest are spread over the whole country.
_URBAN_SHARE: Final = 0.7
#: Towns and cities per country, their spread (km, 1-sigma) by rank.
_CITIES: Final = 60
_URBAN_RANGE_KM: Final = (0.3, 2.0)
_RURAL_RANGE_KM: Final = (3.0, 15.0)
_BEAMWIDTH: Final = 120.0
_SECTORS: Final = 3
#: LTE eNB ids are 20 bits; one site per eNB id (1..2**20-1).
_MAX_SITES_PER_OPERATOR: Final = (1 << 20) - 2


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    if len(bbox) != 4:
        raise InvalidGeoInput("bbox", bbox, "expected (lon0, lat0, lon1, lat1)")
    lon0, lat0, lon1, lat1 = (float(v) for v in bbox)
    if not (-90.0 <= lat0 < lat1 <= 90.0 and -180.0 <= lon0 <= 180.0
            and -180.0 <= lon1 <= 180.0 and lon0 != lon1):
        raise InvalidGeoInput("bbox", bbox, "expected lon0, lon1 in [-180, 180] and "
                                            "-90 <= lat0 < lat1 <= 90 (lon0 > lon1 crosses "
                                            "the antimeridian)")
    if lon1 < lon0:  # across the antimeridian: a continuous frame east of lon0
        lon1 += 360.0
    return lon0, lat0, lon1, lat1


def _km_to_degrees(lat: FloatArray, east_km: FloatArray,
                   north_km: FloatArray) -> tuple[FloatArray, FloatArray]:
    cos_lat = np.maximum(np.cos(np.radians(lat)), 0.01)
    return east_km / (111.32 * cos_lat), north_km / 110.57


def _sites(rng: np.random.Generator, n_sites: int, box: tuple[float, float, float, float],
           cities_rng: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray,
                                                     npt.NDArray[np.bool_]]:
    """Site positions, sector ranges (m) and the urban flag."""
    lon0, lat0, lon1, lat1 = box
    inset_lon, inset_lat = 0.05 * (lon1 - lon0), 0.05 * (lat1 - lat0)
    # Cities depend on the seed only, not on n: 10k and 1M inventories of one
    # seed share their geography.
    city_lon = cities_rng.uniform(lon0 + inset_lon, lon1 - inset_lon, _CITIES)
    city_lat = cities_rng.uniform(lat0 + inset_lat, lat1 - inset_lat, _CITIES)
    weight = 1.0 / np.arange(1, _CITIES + 1) ** 1.1  # Zipf-like populations
    weight /= weight.sum()
    sigma_km = 2.0 + 10.0 * np.sqrt(weight / weight[0])

    urban = rng.random(n_sites) < _URBAN_SHARE
    city = rng.choice(_CITIES, size=n_sites, p=weight)
    offset_e, offset_n = rng.normal(size=(2, n_sites)) * sigma_km[city]
    d_lon, d_lat = _km_to_degrees(city_lat[city], offset_e, offset_n)
    lon = np.where(urban, city_lon[city] + d_lon, rng.uniform(lon0, lon1, n_sites))
    lat = np.where(urban, city_lat[city] + d_lat, rng.uniform(lat0, lat1, n_sites))
    lon, lat = np.clip(lon, lon0, lon1), np.clip(lat, lat0, lat1)
    # Urban sectors are smaller towards the centre of their town: the log of
    # the range grows with the distance from it (in sigmas), plus jitter.
    distance = np.hypot(offset_e, offset_n) / sigma_km[city]
    u_urban = np.clip(distance / 2.5 + rng.normal(0.0, 0.15, n_sites), 0.0, 1.0)
    lo, hi = _URBAN_RANGE_KM
    urban_km = lo * (hi / lo) ** u_urban
    lo, hi = _RURAL_RANGE_KM
    rural_km = lo * (hi / lo) ** rng.random(n_sites)
    return lon, lat, 1000.0 * np.where(urban, urban_km, rural_km), urban


def _site_cell_ids(radio: StrArray, operator_index: IntArray, site_number: IntArray,
                   sector: IntArray, n_operators: int) -> StrArray:
    """Unique identifiers: one PLMN per operator (MCC 001, the test network), per site.

    LTE: eNB id = site number + 1, cell = sector. NR: gNB id = 2**16 + site
    number + 1 (so every NCI is at least 2**28 and never equals an ECI),
    cell = sector. GSM: LAC = 1 + site // 20000, CI = 3 * (site % 20000) +
    sector + 1. UMTS: LAC likewise, cell = 65536 + 4 * site + sector (above
    every GSM CI).
    """
    mnc = operator_index + 1
    digits = 2 if n_operators < 100 else 3
    lte = (site_number + 1) * 256 + sector
    nr = ((1 << 16) + site_number + 1) * 4096 + sector
    gsm = 3 * (site_number % 20000) + sector + 1
    umts = 65536 + 4 * site_number + sector
    cell = np.select([radio == "LTE", radio == "NR", radio == "GSM"], [lte, nr, gsm], umts)
    lac = 1 + site_number // 20000
    return format_cell_ids(radio, 1, mnc, lac, cell, digits)


def synthesize(n_cells: int, *, seed: int = 0,
               bbox: tuple[float, float, float, float] = DEFAULT_BBOX,
               operators: Sequence[str] = ("Alpha", "Bravo", "Charlie")) -> Inventory:
    """A synthetic national inventory of ``n_cells`` sector cells, deterministic by ``seed``.

    Sites (three 120-degree sectors each, azimuths 0/120/240 plus a random
    turn per site) belong to one operator each (shares falling from the first
    operator to the last). 70% of sites cluster around 60 towns and cities
    whose populations follow a Zipf law, with sector ranges from 0.3 km in a
    city centre to 2 km at its edge; the others are spread uniformly with
    ranges of 3 to 15 km. Radio mix per site: LTE 55%, NR 25%, UMTS 10%,
    GSM 10%. Each operator has its own PLMN (MCC 001, the test network,
    MNC 01, 02, ...). A ``bbox`` with lon0 > lon1 crosses the antimeridian.
    Fast: a million cells in a few seconds (``ops/bench/cells.py``).
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 0:
        raise InvalidGeoInput("n_cells", n_cells, "expected a non-negative integer")
    names = [str(name) for name in operators]
    if not names or len(set(names)) != len(names) or not all(names):
        raise InvalidGeoInput("operators", operators, "expected distinct, non-empty names")
    box = _check_bbox(bbox)
    n_cells = int(n_cells)
    rng = np.random.default_rng([seed, 0])
    n_sites = math.ceil(n_cells / _SECTORS)
    share = 1.0 / (1.0 + 0.25 * np.arange(len(names)))
    share /= share.sum()
    operator_of_site = rng.choice(len(names), size=n_sites, p=share)
    counts = np.bincount(operator_of_site, minlength=len(names))
    if counts.max(initial=0) > _MAX_SITES_PER_OPERATOR:
        raise InvalidGeoInput("n_cells", n_cells, "too many sites for one operator's 20-bit "
                                                  "eNB ids; add operators")
    # The site's number within its operator: its rank among that operator's sites.
    order = np.argsort(operator_of_site, kind="stable")
    site_number = np.empty(n_sites, dtype=np.int64)
    site_number[order] = np.arange(n_sites) - np.repeat(np.cumsum(counts) - counts, counts)
    radio_names = np.array([r for r, _ in _RADIO_MIX])
    radio_of_site = radio_names[rng.choice(len(_RADIO_MIX), size=n_sites,
                                           p=[p for _, p in _RADIO_MIX])]
    lon, lat, range_m, _ = _sites(rng, n_sites, box, np.random.default_rng([seed, 1]))
    turn = rng.uniform(0.0, 360.0 / _SECTORS, n_sites)

    site = np.repeat(np.arange(n_sites), _SECTORS)[:n_cells]
    sector = np.tile(np.arange(_SECTORS), n_sites)[:n_cells]
    azimuth = (turn[site] + sector * (360.0 / _SECTORS)) % 360.0
    polygons = sector_polygons(lon[site], lat[site], azimuth, _BEAMWIDTH, range_m[site])
    cell_ids = _site_cell_ids(radio_of_site[site], operator_of_site[site], site_number[site],
                              sector, len(names))
    site_lon = wrap_longitude(lon[site])
    return Inventory(cell_ids=cell_ids,
                     operators=np.asarray(names)[operator_of_site[site]],
                     radio=radio_of_site[site],
                     polygons=polygons,
                     sites=np.column_stack([site_lon, lat[site]]),
                     source=f"synth:cells={n_cells},seed={seed},"
                            f"bbox={','.join(f'{v:g}' for v in bbox)}")
