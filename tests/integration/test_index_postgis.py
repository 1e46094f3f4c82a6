"""geo.CellIndex gives the same cells as a real PostGIS on the same data and rule.

A throwaway PostgreSQL 15 cluster with Debian's PostGIS 3 (installed by
``ops/postgis.sh`` when missing; skipped only where there is no apt-get) holds
the same cells. For ``min_overlap=0`` the targeted sets must equal
``ST_Intersects(geom, area)`` exactly (touching counts); for a threshold f,
``ST_Area(ST_Intersection(ST_Transform(geom, p), ST_Transform(area, p))) /
ST_Area(ST_Transform(geom, p)) >= f`` with p the index's own equal-area
projection registered as an SRID, apart from cells within 1e-6 of f.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
import shapely

from geo import CellIndex
from geo.antimeridian import fix_antimeridian

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
#: Our projections get SRIDs from here on, one per table: PostGIS caches a backend's
#: projection by SRID, so an SRID must never be given a second definition.
SRID_BASE = 990001
TOLERANCE = 1e-6


def _ensure_postgis() -> None:
    if POSTGIS_CONTROL.exists() and (PG_BIN / "initdb").exists():
        return
    if shutil.which("apt-get") is None and not os.environ.get("CI"):
        # CI must run this test; there a missing PostGIS fails below instead.
        pytest.skip("PostGIS (postgresql-15-postgis-3) is missing and this machine has no "
                    "apt-get to install it with ops/postgis.sh")
    done = subprocess.run(["bash", str(REPO / "ops" / "postgis.sh")], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"ops/postgis.sh failed:\n{done.stdout}\n{done.stderr}"


class PostGIS:
    """A synchronous face on one asyncpg connection (private event loop)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: Any = self.loop.run_until_complete(asyncpg.connect(dsn))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def execute(self, sql: str, *args: Any) -> Any:
        return self.run(self.conn.execute(sql, *args))

    def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(self.run(self.conn.fetch(sql, *args)))

    def close(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.fixture(scope="module")
def postgis() -> Iterator[PostGIS]:
    """PostgreSQL 15 + PostGIS in a temporary folder, on a unix socket; removed afterwards."""
    _ensure_postgis()
    root = Path(tempfile.mkdtemp(prefix="capcast-postgis-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the postgres user (made by the Debian
        # package) runs it and owns the folder.
        for path in (root, sock):
            shutil.chown(path, "postgres")
        root.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C"], check=True,
                       capture_output=True)
        options = f"-c unix_socket_directories={sock} -c listen_addresses= -c fsync=off"
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                        "-l", str(root / "log"), "-o", options, "start"], check=True,
                       capture_output=True)
        db = PostGIS(f"postgresql://postgres@/postgres?host={sock}")
        try:
            db.execute("CREATE EXTENSION postgis")
            yield db
        finally:
            db.close()
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# -- data: the same cells in both --------------------------------------------------------


def sector_cells(n: int, seed: int, bbox: tuple[float, float, float, float]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(bbox[0], bbox[2], n)
    lat = rng.uniform(bbox[1], bbox[3], n)
    radius_km = np.exp(rng.uniform(math.log(0.3), math.log(8.0), n))
    azimuth = rng.uniform(0, 360, n)
    width = rng.choice([65.0, 90.0, 120.0], n)
    t = np.radians(azimuth[:, None] + np.linspace(-0.5, 0.5, 18)[None, :] * width[:, None])
    dlat = radius_km[:, None] / 111.2 * np.cos(t)
    dlon = radius_km[:, None] / (111.2 * np.cos(np.radians(lat[:, None]))) * np.sin(t)
    xs = np.concatenate([lon[:, None], lon[:, None] + dlon], 1)
    ys = np.concatenate([lat[:, None], lat[:, None] + dlat], 1)
    return np.asarray(shapely.polygons(np.stack([xs, ys], -1)), dtype=object)


def grid_cells() -> np.ndarray:
    return np.array([shapely.box(x, y, x + 0.25, y + 0.25)
                     for x in np.arange(9.0, 11.0, 0.25) for y in np.arange(49.0, 51.0, 0.25)],
                    dtype=object)


def wobbly(cx: float, cy: float, radius: float, n: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    angle = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = radius * rng.uniform(0.4, 1.0, n)
    ring = np.c_[cx + r * np.cos(angle) / math.cos(math.radians(cy)), cy + r * np.sin(angle)]
    return shapely.make_valid(shapely.Polygon(ring))


def load(db: PostGIS, table: str, polygons: np.ndarray, index: CellIndex) -> int:
    """Load cells into a new table; register the index's projection; return its SRID."""
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, geom geometry(Geometry, 4326))")
    db.run(db.conn.executemany(
        f"INSERT INTO {table} VALUES ($1, ST_GeomFromWKB($2, 4326))",
        [(i, bytes(w)) for i, w in enumerate(shapely.to_wkb(polygons).tolist())]))
    db.execute(f"CREATE INDEX ON {table} USING gist (geom)")
    # The index's equal-area projection, under an SRID of our own.
    srid = int(db.fetch("SELECT greatest(max(srid) + 1, $1) FROM spatial_ref_sys",
                        SRID_BASE)[0][0])
    db.execute("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, proj4text) "
               "VALUES ($1, 'capcast', $1, $2)", srid, index.crs.proj4)
    db.execute(f"ANALYZE {table}")
    return srid


def postgis_targets(db: PostGIS, table: str, srid: int,
                    area: Any) -> tuple[np.ndarray, dict[int, float]]:
    """ST_Intersects set, and every intersecting cell's overlap fraction by PostGIS."""
    rows = db.fetch(f"""
        WITH a AS (SELECT ST_GeomFromWKB($1, 4326) AS g)
        SELECT id, ST_Area(ST_Intersection(ST_Transform(geom, {srid}), ST_Transform(a.g, {srid})))
                   / NULLIF(ST_Area(ST_Transform(geom, {srid})), 0)
        FROM {table}, a WHERE ST_Intersects(geom, a.g)""", shapely.to_wkb(area))
    ids = np.sort(np.array([r[0] for r in rows], dtype=np.int64))
    return ids, {int(r[0]): float(r[1] or 0.0) for r in rows}


def assert_agree(db: PostGIS, table: str, srid: int, index: CellIndex, area: Any,
                 thresholds: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0)) -> int:
    intersecting, overlaps = postgis_targets(db, table, srid, area)
    for f in thresholds:
        result = index.target(area, f)
        got = np.sort(result.indices)
        if f == 0.0:
            assert np.array_equal(got, intersecting), (
                f"ST_Intersects differs: only PostGIS {np.setdiff1d(intersecting, got)[:10]}, "
                f"only capcast {np.setdiff1d(got, intersecting)[:10]}")
        else:
            expected = np.array([i for i in intersecting.tolist() if overlaps[i] >= f],
                                dtype=np.int64)
            differ = np.setxor1d(expected, got)
            far = [int(i) for i in differ if abs(overlaps.get(int(i), 0.0) - f) > TOLERANCE]
            assert far == [], f"min_overlap={f}: differ beyond 1e-6 of the threshold: {far[:10]}"
        for position, value in zip(result.indices.tolist(), result.overlap.tolist(),
                                   strict=True):
            assert value == pytest.approx(overlaps.get(position, 0.0), abs=1e-9)
    return int(intersecting.size)


# -- tests -------------------------------------------------------------------------------


def test_equal_area_projection_is_the_same_in_postgis(postgis: PostGIS) -> None:
    index = CellIndex.from_arrays(["a"], [shapely.box(9.0, 49.0, 11.0, 51.0)])
    srid = load(postgis, "probe", np.array([shapely.box(9.0, 49.0, 11.0, 51.0)], dtype=object),
                index)
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(5, 15, 50), rng.uniform(45, 55, 50)
    rows = postgis.fetch(f"""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(
        ST_SetSRID(ST_MakePoint(x, y), 4326), {srid}) AS p
        FROM unnest($1::float8[], $2::float8[]) AS u(x, y)) q""", lon.tolist(), lat.tolist())
    x, y = index.crs.xy(lon, lat)
    assert np.abs(np.array([r[0] for r in rows]) - x).max() < 1e-6
    assert np.abs(np.array([r[1] for r in rows]) - y).max() < 1e-6


def test_same_cells_as_postgis(postgis: PostGIS) -> None:
    polygons = np.concatenate([sector_cells(2500, 5, (9.0, 49.0, 11.0, 51.0)), grid_cells()])
    index = CellIndex.from_arrays([f"c{i}" for i in range(len(polygons))], polygons)
    srid = load(postgis, "cells", polygons, index)
    areas = [
        wobbly(10.0, 50.0, 0.5, 600, seed=1),  # province-like
        wobbly(9.6, 49.7, 0.06, 20, seed=2),  # storm
        shapely.Point(10.3, 50.2).buffer(0.3).difference(shapely.Point(10.3, 50.2).buffer(0.1)),
        shapely.MultiPolygon([wobbly(9.3, 49.3, 0.1, 30, seed=3),
                              wobbly(10.7, 50.6, 0.12, 30, seed=4)]),
        shapely.box(9.5, 49.5, 10.0, 50.25),  # on grid lines: touching neighbours
        shapely.Polygon([(9.25, 49.25), (10.25, 49.25), (9.75, 49.0)]),  # edge along a line
        shapely.LineString([(9.1, 49.1), (10.9, 50.9)]),
        shapely.Point(9.5, 49.5),  # a grid corner
        shapely.box(9.0, 49.0, 11.0, 51.0),
        shapely.box(30.0, 10.0, 31.0, 11.0),
    ]
    counted = [assert_agree(postgis, "cells", srid, index, area) for area in areas]
    assert counted[0] > 500 and counted[4] > 20 and counted[7] == 4 and counted[-1] == 0


def test_same_cells_as_postgis_across_the_antimeridian(postgis: PostGIS) -> None:
    raw = sector_cells(1500, 9, (178.5, -19.0, 181.5, -16.0))
    wrapped = shapely.transform(raw, lambda xy: np.c_[((xy[:, 0] + 180) % 360) - 180, xy[:, 1]])
    polygons = np.asarray(fix_antimeridian(wrapped), dtype=object)
    assert (shapely.get_type_id(polygons) == 6).sum() > 10  # cells split at 180
    index = CellIndex.from_arrays([f"f{i}" for i in range(len(polygons))], polygons)
    srid = load(postgis, "fiji", polygons, index)
    areas = [fix_antimeridian(shapely.Point(180.0, -17.5).buffer(0.7)),
             fix_antimeridian(shapely.box(179.6, -18.2, 180.4, -17.0)),
             shapely.box(179.0, -17.8, 179.5, -17.2)]
    counted = [assert_agree(postgis, "fiji", srid, index, area, (0.0, 0.1, 0.7))
               for area in areas]
    assert min(counted) > 50
