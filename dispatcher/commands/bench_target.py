"""``capcast bench target``: cell-targeting latency of geo.CellIndex against the alternatives.

On synthetic national inventories (``geo.cells.synthesize``) and a mix of
alert areas (storms, provinces, circles, one national polygon) it prints
p50/p95 latency per alert class for ``min_overlap`` 0 and 0.1, for capcast's
:class:`geo.CellIndex` and, measured in the same run on the same alerts:

- ``ref``: the plain method, an STRtree query, then ``shapely.intersection`` and
  ``shapely.area`` on every candidate (projected copies of the cells made once,
  as a careful user would), with the inside shortcut (prepared
  ``contains_properly``: overlap 1 without an intersection) and ``ref-plain``
  without it; for ``min_overlap`` 0 the STRtree ``intersects`` query itself;
- ``geopandas``: ``geopandas.sjoin`` (``--geopandas``; a bench-only dependency);
- ``postgis``: PostgreSQL 15 + PostGIS 3 with GiST indexes in a throwaway cluster,
  tuned (memory settings, clustered table, projected copies and areas stored,
  areas cut with ``ST_Subdivide``, inside shortcut); ``--postgis``, installs
  nothing: run ``ops/postgis.sh`` first.

Targeted sets are checked against the reference's (identical, except cells
whose overlap is within 1e-6 of the threshold). Build and load times and the
peak RSS of loading the index in a fresh process are printed per size. This
is a benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from dispatcher.cli import EXIT_OK, Commands, UsageError

CLASSES = ("storm", "circle", "province", "national")
DEFAULT_ALERTS = "storm=200,circle=20,province=20,national=1"
#: Goals at 1M cells, min_overlap 0.1 (ms), from the issue.
GOALS_MS = {"storm": 0.8, "circle": 4.0, "province": 17.0, "national": 250.0}
TOLERANCE = 1e-6
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def register(commands: Commands) -> None:
    """Add ``capcast bench target``."""
    parser = commands.group("bench").add_parser(
        "target", help="cell targeting latency: CellIndex vs STRtree, GeoPandas, PostGIS",
        description="Time geo.CellIndex on synthetic national inventories against the plain "
                    "STRtree+intersection method, GeoPandas sjoin and PostGIS, with ratios, "
                    "and check that the targeted sets agree.")
    parser.add_argument("--cells", default="10000,100000,1000000",
                        help="inventory sizes, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--alerts", default=DEFAULT_ALERTS,
                        help=f"alert mix as class=count (default {DEFAULT_ALERTS})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--ref-max", type=int, default=40,
                        help="at most this many alerts per class for each alternative "
                             "(default 40; capcast runs them all)")
    parser.add_argument("--ref-budget", type=float, default=60.0,
                        help="stop an alternative on a class after this many seconds "
                             "(default 60)")
    parser.add_argument("--postgis", action="store_true",
                        help="also time PostGIS (needs postgresql-15-postgis-3: ops/postgis.sh)")
    parser.add_argument("--geopandas", action="store_true",
                        help="also time geopandas.sjoin (pip install geopandas)")
    parser.add_argument("--profile", action="store_true",
                        help="print where capcast's time goes, per phase and class")
    parser.set_defaults(handler=_run)


# -- alerts ------------------------------------------------------------------------------


def _parse_alerts(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name not in CLASSES or not count.isdigit():
            raise UsageError(f"--alerts: {item!r} is not class=count with class one of "
                             f"{', '.join(CLASSES)}")
        mix[name] = int(count)
    return mix


def _wobbly(rng: np.random.Generator, lon: float, lat: float, radius_km: float,
            vertices: int, roughness: float) -> Any:
    """A star-shaped outline: radius modulated by low-frequency waves and a random walk."""
    import shapely

    angle = np.linspace(0.0, 2.0 * math.pi, vertices, endpoint=False)
    waves = sum(rng.uniform(0.02, 0.12) * np.sin(k * angle + rng.uniform(0, 6.3))
                for k in (2, 3, 5, 9))
    walk = rng.standard_normal(vertices).cumsum()
    walk -= np.linspace(0, walk[-1], vertices)
    r = radius_km * (1.0 + waves + roughness * walk / math.sqrt(vertices))
    r = np.clip(r, 0.3 * radius_km, None)
    km_lat = 111.2
    km_lon = 111.2 * math.cos(math.radians(lat))
    ring = np.c_[lon + r * np.cos(angle) / km_lon, lat + r * np.sin(angle) / km_lat]
    polygon = shapely.make_valid(shapely.Polygon(ring))
    if polygon.geom_type != "Polygon":
        parts = shapely.get_parts(polygon)
        polygon = max((p for p in parts if p.geom_type == "Polygon"), key=lambda p: p.area)
    return polygon


def make_alerts(inventory: Any, mix: dict[str, int], seed: int) -> dict[str, list[Any]]:
    """The alert mix of the issue, placed over an inventory's country."""
    from geo.areas import circle_shape

    rng = np.random.default_rng([seed, 7])
    sites = inventory.sites
    lon0, lat0, lon1, lat1 = inventory.bounds
    alerts: dict[str, list[Any]] = {name: [] for name in CLASSES}
    for _ in range(mix.get("storm", 0)):
        lon, lat = sites[rng.integers(len(sites))]
        alerts["storm"].append(_wobbly(rng, lon, lat, rng.uniform(2.5, 15.0),
                                       int(rng.integers(12, 60)), 0.3))
    for _ in range(mix.get("circle", 0)):
        lon, lat = sites[rng.integers(len(sites))]
        alerts["circle"].append(circle_shape(float(lat), float(lon),
                                             float(rng.uniform(1.0, 50.0))).geometry)
    for _ in range(mix.get("province", 0)):
        lon = rng.uniform(lon0 + 0.25 * (lon1 - lon0), lon1 - 0.25 * (lon1 - lon0))
        lat = rng.uniform(lat0 + 0.25 * (lat1 - lat0), lat1 - 0.25 * (lat1 - lat0))
        alerts["province"].append(_wobbly(rng, lon, lat, rng.uniform(75.0, 150.0),
                                          int(rng.integers(300, 1001)), 0.5))
    for _ in range(mix.get("national", 0)):
        # A country outline of 4,000 vertices running through the inventory's edge.
        lon, lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
        radius = 0.5 * min((lon1 - lon0) * 111.2 * math.cos(math.radians(lat)),
                           (lat1 - lat0) * 111.2)
        alerts["national"].append(_wobbly(rng, lon, lat, radius * 0.97, 4000, 0.4))
    return {k: v for k, v in alerts.items() if v}


# -- the alternatives --------------------------------------------------------------------


class Reference:
    """The plain method, with the cells' projected copies and areas made once."""

    def __init__(self, polygons: Any, crs: Any) -> None:
        import shapely

        self.polygons = polygons
        self.crs = crs
        started = time.perf_counter()
        self.tree = shapely.STRtree(polygons)
        self.projected = crs.transform(polygons)
        self.areas = shapely.area(self.projected)
        self.ptree = shapely.STRtree(self.projected)
        self.build_s = time.perf_counter() - started

    def intersects(self, area: Any) -> Any:
        """Positions of the cells intersecting an area (the STRtree query)."""
        return self.tree.query(area, predicate="intersects")

    def overlap(self, area: Any, *, inside_shortcut: bool) -> tuple[Any, Any]:
        """Candidates (positions) and their overlap fractions."""
        import shapely

        projected_area = self.crs.transform(area)
        candidates = self.ptree.query(projected_area)
        cells = self.projected[candidates]
        overlap = np.zeros(candidates.size)
        todo = np.ones(candidates.size, dtype=bool)
        if inside_shortcut:
            shapely.prepare(projected_area)
            inside = shapely.contains_properly(projected_area, cells)
            overlap[inside] = 1.0
            todo = ~inside
        overlap[todo] = shapely.area(shapely.intersection(cells[todo], projected_area)) / \
            self.areas[candidates[todo]]
        return candidates, overlap

    def target(self, area: Any, f: float, *, inside_shortcut: bool = True) -> Any:
        """Positions targeted with min_overlap f."""
        if f == 0.0:
            return self.intersects(area)
        candidates, overlap = self.overlap(area, inside_shortcut=inside_shortcut)
        return candidates[overlap >= f]


class GeoPandasJoin:
    """geopandas.sjoin of one alert with the cells (spatial index built once)."""

    def __init__(self, polygons: Any, crs: Any, projected: Any, areas: Any) -> None:
        import geopandas

        self.gpd = geopandas
        self.crs = crs
        self.cells = geopandas.GeoDataFrame({"cell": np.arange(len(polygons))},
                                            geometry=polygons, crs="EPSG:4326")
        self.projected = geopandas.GeoDataFrame({"cell": np.arange(len(polygons)),
                                                 "area": areas}, geometry=projected)
        started = time.perf_counter()
        _ = self.cells.sindex, self.projected.sindex
        self.build_s = time.perf_counter() - started

    def target(self, area: Any, f: float) -> Any:
        """Positions targeted with min_overlap f."""
        import shapely

        if f == 0.0:
            alert = self.gpd.GeoDataFrame({"alert": [0]}, geometry=[area], crs="EPSG:4326")
            joined = self.gpd.sjoin(alert, self.cells, predicate="intersects")
            return joined["cell"].to_numpy()
        projected_area = self.crs.transform(area)
        alert = self.gpd.GeoDataFrame({"alert": [0]}, geometry=[projected_area])
        joined = self.gpd.sjoin(self.projected, alert, predicate="intersects")
        overlap = shapely.area(shapely.intersection(joined.geometry.values, projected_area))
        return joined["cell"].to_numpy()[overlap / joined["area"].to_numpy() >= f]


# -- PostGIS in a throwaway cluster ------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgis(out: TextIO) -> Iterator[str]:
    """A PostgreSQL 15 + PostGIS cluster in a temporary folder; yields a DSN (unix socket)."""
    if not (PG_BIN / "initdb").exists() or not Path(
            "/usr/share/postgresql/15/extension/postgis.control").exists():
        raise UsageError("--postgis: postgresql-15-postgis-3 is not installed "
                         "(run: bash ops/postgis.sh)")
    root = Path(tempfile.mkdtemp(prefix="capcast-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as "postgres", owning the folder.
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--locale=C"], check=True,
                   capture_output=True)
    settings = ["-c", f"unix_socket_directories={sock}", "-c", "listen_addresses=",
                "-c", "shared_buffers=2GB", "-c", "work_mem=256MB", "-c", "jit=off",
                "-c", "random_page_cost=1.1", "-c", "effective_cache_size=8GB",
                "-c", "max_parallel_workers_per_gather=2", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "maintenance_work_mem=1GB"]
    subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(root / "log"), "-o", " ".join(settings), "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql://postgres@/postgres?host={sock}"
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class PostGIS:
    """Cells in a PostGIS table with GiST indexes, lon/lat and projected."""

    SRID = 990001

    def __init__(self, dsn: str, polygons: Any, crs: Any) -> None:
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        started = time.perf_counter()
        self.loop.run_until_complete(self._load(polygons, crs))
        self.build_s = time.perf_counter() - started

    async def _load(self, polygons: Any, crs: Any) -> None:
        import asyncpg
        import shapely

        self.conn = conn = await asyncpg.connect(self.dsn)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.execute("DELETE FROM spatial_ref_sys WHERE srid = $1", self.SRID)
        await conn.execute("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, proj4text)"
                           " VALUES ($1, 'capcast', $1, $2)", self.SRID, crs.proj4)
        await conn.execute("DROP TABLE IF EXISTS cells")
        await conn.execute("CREATE UNLOGGED TABLE cells (id int PRIMARY KEY, wkb bytea)")
        wkb = shapely.to_wkb(polygons)
        await conn.copy_records_to_table("cells", records=list(enumerate(wkb.tolist())),
                                         columns=["id", "wkb"])
        for statement in (
                f"ALTER TABLE cells ADD COLUMN geom geometry(Geometry, 4326), "
                f"ADD COLUMN geom_ea geometry(Geometry, {self.SRID}), "
                f"ADD COLUMN area_ea double precision",
                "UPDATE cells SET geom = ST_GeomFromWKB(wkb, 4326)",
                f"UPDATE cells SET geom_ea = ST_Transform(geom, {self.SRID})",
                "UPDATE cells SET area_ea = ST_Area(geom_ea)",
                "ALTER TABLE cells DROP COLUMN wkb",
                "CREATE INDEX cells_geom ON cells USING gist (geom)",
                "CREATE INDEX cells_geom_ea ON cells USING gist (geom_ea)",
                "CLUSTER cells USING cells_geom",
                "VACUUM ANALYZE cells"):
            await conn.execute(statement)

    def target(self, area: Any, f: float) -> Any:
        """Positions (ids) targeted with min_overlap f."""
        return self.loop.run_until_complete(self._target(area, f))

    async def _target(self, area: Any, f: float) -> Any:
        # Tuned the way PostGIS users are told to: cut the area into pieces of at most
        # 128 vertices (ST_Subdivide) so that each GiST hit meets a small polygon, and
        # skip the overlay for cells properly inside a piece.
        wkb = area.wkb
        if f == 0.0:
            rows = await self.conn.fetch("""
                WITH p AS (SELECT ST_Subdivide(ST_GeomFromWKB($1, 4326), 128) AS g)
                SELECT DISTINCT c.id FROM cells c JOIN p ON ST_Intersects(c.geom, p.g)""", wkb)
            return np.array([r[0] for r in rows], dtype=np.int64)
        rows = await self.conn.fetch(f"""
            WITH p AS (SELECT ST_Subdivide(ST_Transform(ST_GeomFromWKB($1, 4326),
                                                        {self.SRID}), 128) AS g)
            SELECT c.id FROM cells c JOIN p ON ST_Intersects(c.geom_ea, p.g)
            GROUP BY c.id, c.area_ea
            HAVING sum(CASE WHEN ST_ContainsProperly(p.g, c.geom_ea) THEN c.area_ea
                            ELSE ST_Area(ST_Intersection(c.geom_ea, p.g)) END)
                   / c.area_ea >= $2""", wkb, f)
        return np.array([r[0] for r in rows], dtype=np.int64)

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Timings:
    """Latencies (seconds) per alert of one method on one class."""

    seconds: list[float] = field(default_factory=list)
    mismatches: int = 0
    skipped: str = ""

    def p(self, q: float) -> float:
        """The q-th percentile in milliseconds."""
        return float(np.percentile(self.seconds, q)) * 1000 if self.seconds else math.nan


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _same(expected: Any, got: Any, overlaps: dict[int, float] | None, f: float) -> bool:
    differ = np.setxor1d(np.asarray(expected), np.asarray(got))
    if differ.size == 0:
        return True
    if overlaps is None:
        return False
    return all(abs(overlaps.get(int(i), 0.0) - f) <= TOLERANCE for i in differ.tolist())


def _rss_gib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


# VmHWM, not ru_maxrss: the latter starts from the parent's RSS after fork.
_LOAD_PROBE = """
import sys, time
t = time.perf_counter()
from geo import CellIndex
index = CellIndex.load(sys.argv[1])
elapsed = time.perf_counter() - t
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(elapsed, peak / 2**20, len(index))
"""


def _load_in_fresh_process(path: Path) -> tuple[float, float]:
    """Seconds to load an index file, and peak RSS (GiB), in a new Python process."""
    done = subprocess.run([sys.executable, "-c", _LOAD_PROBE, str(path)], check=True,
                          capture_output=True, text=True)
    seconds, peak, _ = done.stdout.split()
    return float(seconds), float(peak)


def _profile(index: Any, area: Any, f: float) -> dict[str, float]:
    """Seconds per phase of one query (mirrors CellIndex.target)."""
    from geo import index as module

    phases: dict[str, float] = {}

    def lap(name: str, fn: Callable[[], Any]) -> Any:
        seconds, value = _time(fn)
        phases[name] = phases.get(name, 0.0) + seconds
        return value

    prepared = lap("prepare", lambda: module._Area(area))
    if f == 0.0:
        tree = index._ll_tree
        for group in prepared.groups:
            raster = lap("raster", lambda g=group: module._raster(
                g.xs, g.ys, g.ring_off, index._ll_sizes.step(g.xs, g.ys), False,
                index._max_squares))
            inside, boundary = lap("walk", lambda g=group, r=raster: module._collect(
                tree.item_box, tree.node_box, tree.level_off, float(g.xs.min()),
                float(g.ys.min()), float(g.xs.max()), float(g.ys.max()), r.gx, r.gy, r.dx, r.dy,
                r.nx, r.ny, module._EPS_LONLAT, r.nf, r.ne))
            phases["boundary cells"] = phases.get("boundary cells", 0) + boundary.size

            def exact(g: Any = group, r: Any = raster, b: Any = boundary) -> Any:
                ex0, ey0, ex1, ey1 = module._edges(g.xs, g.ys, g.ring_off)
                row_off, row_edges = module._row_buckets(ey0, ey1, r.gy, r.dy, r.ny)
                return module._intersects(b, index._ll_x, index._ll_y, index._ll_ring,
                                          index._ll_part, index._ll_cell, tree.item_box, ex0,
                                          ey0, ex1, ey1, r.gy, r.dy, r.ny, row_off, row_edges)
            hit = lap("exact", exact)
            positions = np.concatenate([inside, boundary[hit]])
        lap("sort+result", lambda: index._result(positions, None, prepared, f))
    else:
        lap("raster", lambda: prepared.projected(index))
        positions, overlap = lap("walk+exact", lambda: index._overlapping(prepared, f))
        lap("sort+result", lambda: index._result(positions, overlap, prepared, f))
    return phases


def _run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        sizes = [int(s.replace("_", "")) for s in args.cells.split(",") if s]
    except ValueError:
        raise UsageError(f"--cells: {args.cells!r} is not a list of integers") from None
    mix = _parse_alerts(args.alerts)
    with contextlib.ExitStack() as stack:
        dsn = stack.enter_context(throwaway_postgis(out)) if args.postgis else None
        for n in sizes:
            _bench_size(n, mix, args, dsn, out)
    return EXIT_OK


def _bench_size(n: int, mix: dict[str, int], args: argparse.Namespace, dsn: str | None,
                out: TextIO) -> None:
    from geo import CellIndex
    from geo.cells import synthesize

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"\n=== {n:,} sector cells ===")
    seconds, inventory = _time(lambda: synthesize(n, seed=args.seed))
    say(f"synthesize: {seconds:.1f} s; vertices per cell: "
        f"{len(inventory.polygons[0].exterior.coords)}")
    rss_before = _rss_gib()
    build_s, index = _time(lambda: CellIndex.from_inventory(inventory))
    say(f"capcast build from inventory: {build_s:.2f} s; index arrays "
        f"{index.nbytes / 2**30:.2f} GiB; RSS +{_rss_gib() - rss_before:.2f} GiB")
    with tempfile.TemporaryDirectory(prefix="capcast-bench-") as tmp:
        path = Path(tmp) / "index.npz"
        save_s, _ = _time(lambda: index.save(path))
        load_s, peak = _load_in_fresh_process(path)
        say(f"capcast save {save_s:.2f} s ({path.stat().st_size / 2**30:.2f} GiB); load in a "
            f"fresh process {load_s:.2f} s, peak RSS {peak:.2f} GiB (goal at 1M: < 10 s, "
            f"< 2 GiB)")
        inv_path = Path(tmp) / "inventory.parquet"
        try:
            inventory.save(inv_path, progress=False)
            load_s, peak = _load_in_fresh_process(inv_path)
            say(f"capcast build from the inventory file in a fresh process {load_s:.2f} s, "
                f"peak RSS {peak:.2f} GiB")
        except Exception as exc:  # the inventory file format belongs to geo.cells
            say(f"(inventory file round trip skipped: {exc})")
    alerts = make_alerts(inventory, mix, args.seed)
    rss_before = _rss_gib()
    reference = Reference(inventory.polygons, index.crs)
    say(f"reference build (STRtrees, projected copies, areas): {reference.build_s:.2f} s, "
        f"RSS +{_rss_gib() - rss_before:.2f} GiB")
    others: dict[str, Any] = {}
    if args.geopandas:
        others["geopandas"] = GeoPandasJoin(inventory.polygons, index.crs,
                                            reference.projected, reference.areas)
        say(f"geopandas sindex build: {others['geopandas'].build_s:.2f} s")
    if dsn is not None:
        others["postgis"] = PostGIS(dsn, inventory.polygons, index.crs)
        say(f"postgis load + index + cluster: {others['postgis'].build_s:.1f} s")
    # Warm up (numba's first call loads compiled code from its cache).
    for f in (0.0, 0.1):
        index.target(next(iter(alerts.values()))[0], f)
    results: dict[tuple[str, float, str], Timings] = {}
    for f in (0.0, 0.1):
        _measure(f, alerts, index, reference, others, args, results)
    _report(n, alerts, results, out)
    if args.profile:
        for f in (0.0, 0.1):
            say(f"\nprofile, min_overlap {f} (ms per alert, median over the class; "
                "'boundary cells' is a count)")
            for name, areas in alerts.items():
                rows = [_profile(index, a, f) for a in areas[:20]]
                keys = list(rows[0])
                medians = {k: float(np.median([r.get(k, 0.0) for r in rows])) for k in keys}
                say(f"  {name:9s} " + "  ".join(
                    f"{k} {v if 'cells' in k else v * 1000:.2f}" for k, v in medians.items()))
    for other in others.values():
        if isinstance(other, PostGIS):
            other.close()


def _measure(f: float, alerts: dict[str, list[Any]], index: Any, reference: Reference,
             others: dict[str, Any], args: argparse.Namespace,
             results: dict[tuple[str, float, str], Timings]) -> None:
    """Time every method on every class at one min_overlap; check sets against capcast's."""
    for name, areas in alerts.items():
        ours = results[(name, f, "capcast")] = Timings()
        answers = []
        for area in areas:
            seconds, result = _time(lambda a=area: index.target(a, f))
            ours.seconds.append(seconds)
            answers.append(result.indices)
        # The reference first: its overlaps excuse cells within 1e-6 of the threshold.
        overlaps: list[dict[int, float] | None] = []
        timing = results[(name, f, "ref")] = Timings()
        for k, area in enumerate(areas[:args.ref_max]):
            if sum(timing.seconds) > args.ref_budget:
                timing.skipped = f"(stopped after {k} alerts)"
                break
            if f == 0.0:
                seconds, got = _time(lambda a=area: reference.intersects(a))
                overlaps.append(None)
            else:
                seconds, (candidates, values) = _time(
                    lambda a=area: reference.overlap(a, inside_shortcut=True))
                got = candidates[values >= f]
                overlaps.append(dict(zip(candidates.tolist(), values.tolist(), strict=True)))
            timing.seconds.append(seconds)
            if not _same(got, answers[k], overlaps[k], f):
                timing.mismatches += 1
        methods: dict[str, Callable[[Any], Any]] = {}
        if f > 0:
            methods["ref-plain"] = lambda a: reference.target(a, f, inside_shortcut=False)
        for key, other in others.items():
            methods[key] = lambda a, o=other: o.target(a, f)
        for key, method in methods.items():
            timing = results[(name, f, key)] = Timings()
            for k, area in enumerate(areas[:len(overlaps)]):
                spent = sum(timing.seconds)
                if spent > args.ref_budget or (
                        timing.seconds and spent / len(timing.seconds) > args.ref_budget):
                    timing.skipped = f"(stopped after {k} alerts, {spent:.0f} s)"
                    break
                seconds, got = _time(lambda a=area, m=method: m(a))
                timing.seconds.append(seconds)
                if not _same(got, answers[k], overlaps[k], f):
                    timing.mismatches += 1


def _report(n: int, alerts: dict[str, list[Any]],
            results: dict[tuple[str, float, str], Timings], out: TextIO) -> None:
    for f in (0.0, 0.1):
        print(f"\nmin_overlap {f}: latency per alert, p50 / p95 ms (n alerts); ratio = "
              "method p50 / capcast p50 on the same alerts", file=out)
        for name, areas in alerts.items():
            ours = results[(name, f, "capcast")]
            line = (f"  {name:9s} n={len(areas):3d}  capcast {ours.p(50):9.3f} / "
                    f"{ours.p(95):9.3f}")
            if f > 0 and n >= 1_000_000:
                goal = GOALS_MS[name]
                line += f" (goal < {goal} ms: {'met' if ours.p(50) < goal else 'MISSED'})"
            print(line, file=out)
            for key in ("ref", "ref-plain", "geopandas", "postgis"):
                timing = results.get((name, f, key))
                if timing is None:
                    continue
                if not timing.seconds:
                    print(f"      {key:10s} not run {timing.skipped}", file=out)
                    continue
                same = len(timing.seconds)
                mine = float(np.median(ours.seconds[:same])) * 1000
                ratio = timing.p(50) / mine if mine > 0 else math.inf
                agree = ("sets identical" if timing.mismatches == 0
                         else f"{timing.mismatches} alerts DIFFER")
                print(f"      {key:10s} {timing.p(50):10.3f} / {timing.p(95):10.3f} "
                      f"(n={same:3d})  {ratio:8.1f}x  {agree} {timing.skipped}", file=out)
    summary = {f"{name}@{f}": results[(name, f, "capcast")].p(50)
               for f in (0.0, 0.1) for name in alerts}
    print("\ncapcast p50 ms: " + json.dumps({k: round(v, 3) for k, v in summary.items()}),
          file=out)
