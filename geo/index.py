"""The batched cell-targeting index: which cells an alert area reaches.

:class:`CellIndex` answers, for an alert area in lon/lat, which cells of a
(national) inventory it targets, exactly as PostGIS would on the same data:

- ``min_overlap=0.0``: every cell whose coverage intersects the area, touching
  included (``ST_Intersects`` on the lon/lat geometries);
- ``min_overlap=f > 0``: every cell with area(cell ∩ area) / area(cell) >= f,
  areas measured in the inventory's equal-area projection (:mod:`geo.crs`),
  the same as ``ST_Area(ST_Intersection(ST_Transform(c, p), ST_Transform(a, p)))``.

How it is fast (the obvious way, one STRtree query then a GEOS intersection
and area for every candidate, is one to two orders of magnitude slower at a
million cells):

1. *Cover raster.* The area is cut along the lines of a regular grid by
   recursive halving (the idea of PostGIS's ``ST_Subdivide``, with
   Sutherland-Hodgman clipping against the half-plane of each cut). Each grid
   square ends up *full* (wholly inside the area), *empty*, or *partial*, and
   a partial square keeps its small piece of the area. The recursion stops as
   soon as no area edge crosses a block, so its cost follows the perimeter,
   not the surface. The grid step is half the typical size of the cells where
   the outline runs (a 128 x 128 map of cell sizes is kept per index): fine in
   a city, coarse in the countryside.
2. *Classification.* Cells are kept in Hilbert order under a packed R-tree
   (fan-out 16) of their bounding boxes, in both coordinate systems. A walk of
   the tree compares each node's box with the raster through summed-area
   tables: a node whose box lies over full squares only is inside with all its
   cells (overlap 1, nothing computed per cell), one over empty squares only is
   skipped, and only cells whose box meets a partial square are *boundary*
   cells: the cells that the area's outline runs through, and their neighbours.
3. *Exact step, boundary cells only.* For ``min_overlap=0`` a boundary cell is
   tested against the nearby area edges (edge crossings and touches, then
   point-in-polygon). For an overlap, each cell (split into convex parts at
   build time: sectors and circles are convex already, anything else is
   triangulated) is clipped against the pieces of the partial squares under
   it, and runs of full squares are clipped as boxes; cells much larger than a
   square use a second raster eight times coarser. A convex clip against a
   piece of a few dozen vertices costs a microsecond or two, where a GEOS
   overlay of the cell with the whole area costs 50 to 200. Large batches of
   boundary cells are split over two threads.
4. *Positions, not strings.* Results are positions into the arrays given to
   :meth:`CellIndex.from_arrays`, sorted by cell id through a precomputed rank
   (a bitmap for large results); ``cell_ids`` strings, and the overlaps of a
   ``min_overlap=0`` search (which does not need them), are computed on first
   access.

All heavy loops are compiled with numba (``nogil``, cached on disk): queries
may run in several threads at once, and a background rebuild does not stop
them (:class:`IndexHolder`). Projected copies of the coverage, cell areas and
both trees are built once; an index can be saved to and loaded from one
``.npz`` file (arrays only, no pickle).

Robustness: lon/lat classification widens every box by 1e-7 of a grid step,
so that a cell that merely touches the area on a grid line always reaches the
exact step; a square is full or empty only when no area edge runs through its
interior (decided combinatorially, never by comparing areas with a
tolerance). Areas are repaired with ``make_valid`` when invalid and oriented
(exteriors counter-clockwise) before use; Sutherland-Hodgman clipping of any
such ring against a convex cell gives the exact area of their intersection
(the extra edges it leaves along the cell boundary cancel out).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
import shapely

from geo.crs import EqualArea, equal_area_for
from geo.errors import GeoError, InvalidGeoInput

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

__all__ = ["CellIndex", "IndexHolder", "TargetResult"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]

#: R-tree fan-out (entries per node), as flatbush.
_FANOUT = 16
#: Grid step of the cover raster, in median cell sizes.
_RASTER_STEP = 0.5
#: Coarse raster step, in fine steps; cells wider than _COARSE_FROM fine steps use it.
_COARSE = 8
_COARSE_FROM = 4.0
#: At most this many squares in a cover raster (coarser steps beyond it).
_RASTER_MAX_SQUARES = 1 << 22
_RASTER_MAX_SIDE = 4096
#: Box widening, in grid steps, that makes lon/lat classification conservative.
_EPS_LONLAT = 1e-7
#: Boundary cells from which the exact step is split over threads, and how many.
_PARALLEL_FROM = 8192
_WORKERS = min(os.cpu_count() or 1, 4)
_EXECUTOR_LOCK = threading.Lock()
#: File format of CellIndex.save.
_FORMAT = "capcast-cellindex-1"

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func: _F) -> _F:
    """numba.njit with a disk cache and the GIL released, keeping the function's type."""
    return cast(_F, numba.njit(cache=True, nogil=True)(func))


# ======================================================================================
# Compiled kernels. Rings are stored open (no repeated closing vertex): ring r has the
# vertices off[r] .. off[r+1]-1 and the edge from the last one back to the first.
# ======================================================================================


@_jit
def _open_rings(coords: Any, ring_off: Any) -> Any:
    """Drop the closing vertex of every ring of a shapely ragged array."""
    n_rings = ring_off.size - 1
    total = 0
    for r in range(n_rings):
        length = ring_off[r + 1] - ring_off[r]
        total += length - 1 if length > 0 else 0
    xs = np.empty(total)
    ys = np.empty(total)
    off = np.empty(n_rings + 1, np.int64)
    k = 0
    off[0] = 0
    for r in range(n_rings):
        lo = ring_off[r]
        hi = ring_off[r + 1]
        if hi - lo > 0:
            for v in range(lo, hi - 1):
                xs[k] = coords[v, 0]
                ys[k] = coords[v, 1]
                k += 1
        off[r + 1] = k
    return xs, ys, off


@_jit
def _ring_area(xs: Any, ys: Any, lo: int, hi: int) -> float:
    """Signed area (counter-clockwise positive) of the open ring xs[lo:hi], local origin."""
    if hi - lo < 3:
        return 0.0
    ox = xs[lo]
    oy = ys[lo]
    area = 0.0
    for k in range(lo, hi):
        k2 = k + 1 if k + 1 < hi else lo
        area += (xs[k] - ox) * (ys[k2] - oy) - (xs[k2] - ox) * (ys[k] - oy)
    return 0.5 * area


@_jit
def _part_boxes(xs: Any, ys: Any, ring_off: Any, part_ring: Any) -> Any:
    """Bounding box of each part (its exterior ring); empty parts get an inverted box."""
    n = part_ring.size - 1
    out = np.empty((n, 4))
    for p in range(n):
        x0 = np.inf
        y0 = np.inf
        x1 = -np.inf
        y1 = -np.inf
        if part_ring[p + 1] > part_ring[p]:
            r = part_ring[p]
            for k in range(ring_off[r], ring_off[r + 1]):
                x0 = min(x0, xs[k])
                x1 = max(x1, xs[k])
                y0 = min(y0, ys[k])
                y1 = max(y1, ys[k])
        out[p, 0] = x0
        out[p, 1] = y0
        out[p, 2] = x1
        out[p, 3] = y1
    return out


@_jit
def _group_boxes(part_box: Any, cell_part: Any) -> Any:
    """Bounding box of each cell from the boxes of its parts."""
    n = cell_part.size - 1
    out = np.empty((n, 4))
    for c in range(n):
        x0 = np.inf
        y0 = np.inf
        x1 = -np.inf
        y1 = -np.inf
        for p in range(cell_part[c], cell_part[c + 1]):
            x0 = min(x0, part_box[p, 0])
            y0 = min(y0, part_box[p, 1])
            x1 = max(x1, part_box[p, 2])
            y1 = max(y1, part_box[p, 3])
        out[c, 0] = x0
        out[c, 1] = y0
        out[c, 2] = x1
        out[c, 3] = y1
    return out


@_jit
def _convexity(xs: Any, ys: Any, ring_off: Any, part_ring: Any) -> Any:
    """Per part: convex without holes (1) or not (0), and the exterior's signed area.

    Nearly collinear vertices (a turn below 1e-9 of the edge lengths) count as
    convex: clipping against them changes an area by far less than 1e-9.
    """
    n = part_ring.size - 1
    convex = np.zeros(n, np.bool_)
    area = np.zeros(n)
    for p in range(n):
        r0 = part_ring[p]
        r1 = part_ring[p + 1]
        if r1 - r0 != 1:
            if r1 > r0:
                area[p] = _ring_area(xs, ys, ring_off[r0], ring_off[r0 + 1])
            continue
        lo = ring_off[r0]
        hi = ring_off[r0 + 1]
        a = _ring_area(xs, ys, lo, hi)
        area[p] = a
        if hi - lo < 3 or a == 0.0:
            continue
        sign = 1.0 if a > 0 else -1.0
        ok = True
        m = hi - lo
        for k in range(m):
            i0 = lo + k
            i1 = lo + (k + 1) % m
            i2 = lo + (k + 2) % m
            ux = xs[i1] - xs[i0]
            uy = ys[i1] - ys[i0]
            vx = xs[i2] - xs[i1]
            vy = ys[i2] - ys[i1]
            cross = (ux * vy - uy * vx) * sign
            if cross < -1e-9 * (abs(ux) + abs(uy)) * (abs(vx) + abs(vy)):
                ok = False
                break
        convex[p] = ok
    return convex, area


@_jit
def _assemble_parts(pxs: Any, pys: Any, ring_off: Any, part_ring: Any, cell_part: Any,
                    convex: Any, part_area: Any, tri_xy: Any, tri_owner_off: Any) -> Any:
    """Convex parts of every cell, counter-clockwise: convex exteriors, else triangles.

    ``tri_owner_off[p] .. tri_owner_off[p+1]`` are the triangles (rows of
    ``tri_xy``, three vertices each) of non-convex part ``p``.
    """
    n_cells = cell_part.size - 1
    n_out_parts = 0
    n_out_vertices = 0
    for p in range(part_ring.size - 1):
        if convex[p]:
            r = part_ring[p]
            n_out_parts += 1
            n_out_vertices += ring_off[r + 1] - ring_off[r]
        else:
            t = tri_owner_off[p + 1] - tri_owner_off[p]
            n_out_parts += t
            n_out_vertices += 3 * t
    xs = np.empty(n_out_vertices)
    ys = np.empty(n_out_vertices)
    off = np.empty(n_out_parts + 1, np.int64)
    cell_off = np.empty(n_cells + 1, np.int64)
    k = 0
    q = 0
    off[0] = 0
    cell_off[0] = 0
    for c in range(n_cells):
        for p in range(cell_part[c], cell_part[c + 1]):
            if convex[p]:
                r = part_ring[p]
                lo = ring_off[r]
                hi = ring_off[r + 1]
                if part_area[p] >= 0:
                    for v in range(lo, hi):
                        xs[k] = pxs[v]
                        ys[k] = pys[v]
                        k += 1
                else:
                    for v in range(hi - 1, lo - 1, -1):
                        xs[k] = pxs[v]
                        ys[k] = pys[v]
                        k += 1
                q += 1
                off[q] = k
            else:
                for t in range(tri_owner_off[p], tri_owner_off[p + 1]):
                    ax = tri_xy[t, 0, 0]
                    ay = tri_xy[t, 0, 1]
                    bx = tri_xy[t, 1, 0]
                    by = tri_xy[t, 1, 1]
                    cx = tri_xy[t, 2, 0]
                    cy = tri_xy[t, 2, 1]
                    if (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) < 0:
                        bx, cx = cx, bx
                        by, cy = cy, by
                    xs[k] = ax
                    ys[k] = ay
                    xs[k + 1] = bx
                    ys[k + 1] = by
                    xs[k + 2] = cx
                    ys[k + 2] = cy
                    k += 3
                    q += 1
                    off[q] = k
        cell_off[c + 1] = q
    return xs, ys, off, cell_off


@_jit
def _cell_areas(xs: Any, ys: Any, off: Any, cell_off: Any) -> Any:
    n = cell_off.size - 1
    out = np.zeros(n)
    for c in range(n):
        total = 0.0
        for p in range(cell_off[c], cell_off[c + 1]):
            total += _ring_area(xs, ys, off[p], off[p + 1])
        out[c] = total
    return out


@_jit
def _hilbert(xi: Any, yi: Any) -> Any:
    """Hilbert curve index of 16-bit integer coordinates (flatbush's bit-twiddling)."""
    n = xi.size
    out = np.empty(n, np.int64)
    for k in range(n):
        x = xi[k]
        y = yi[k]
        a = x ^ y
        b = 0xFFFF ^ a
        c = 0xFFFF ^ (x | y)
        d = x & (y ^ 0xFFFF)
        aa = a | (b >> 1)
        bb = (a >> 1) ^ a
        cc = ((c >> 1) ^ (b & (d >> 1))) ^ c
        dd = ((a & (c >> 1)) ^ (d >> 1)) ^ d
        a, b, c, d = aa, bb, cc, dd
        aa = (a & (a >> 2)) ^ (b & (b >> 2))
        bb = (a & (b >> 2)) ^ (b & ((a ^ b) >> 2))
        cc ^= (a & (c >> 2)) ^ (b & (d >> 2))
        dd ^= (b & (c >> 2)) ^ ((a ^ b) & (d >> 2))
        a, b, c, d = aa, bb, cc, dd
        aa = (a & (a >> 4)) ^ (b & (b >> 4))
        bb = (a & (b >> 4)) ^ (b & ((a ^ b) >> 4))
        cc ^= (a & (c >> 4)) ^ (b & (d >> 4))
        dd ^= (b & (c >> 4)) ^ ((a ^ b) & (d >> 4))
        a, b, c, d = aa, bb, cc, dd
        cc ^= (a & (c >> 8)) ^ (b & (d >> 8))
        dd ^= (b & (c >> 8)) ^ ((a ^ b) & (d >> 8))
        a = cc ^ (cc >> 1)
        b = dd ^ (dd >> 1)
        i0 = x ^ y
        i1 = b | (0xFFFF ^ (i0 | a))
        i0 = (i0 | (i0 << 8)) & 0x00FF00FF
        i0 = (i0 | (i0 << 4)) & 0x0F0F0F0F
        i0 = (i0 | (i0 << 2)) & 0x33333333
        i0 = (i0 | (i0 << 1)) & 0x55555555
        i1 = (i1 | (i1 << 8)) & 0x00FF00FF
        i1 = (i1 | (i1 << 4)) & 0x0F0F0F0F
        i1 = (i1 | (i1 << 2)) & 0x33333333
        i1 = (i1 | (i1 << 1)) & 0x55555555
        out[k] = (i1 << 1) | i0
    return out


@_jit
def _gather_csr(xs: Any, ys: Any, off: Any, group_off: Any, order: Any) -> Any:
    """Reorder a two-level ragged array (groups of rings) by ``order`` of the groups.

    Returns new vertex arrays, ring offsets and group offsets.
    """
    n = order.size
    n_rings = 0
    n_vertices = 0
    for g in range(n):
        c = order[g]
        n_rings += group_off[c + 1] - group_off[c]
        n_vertices += off[group_off[c + 1]] - off[group_off[c]]
    out_x = np.empty(n_vertices)
    out_y = np.empty(n_vertices)
    out_off = np.empty(n_rings + 1, np.int64)
    out_group = np.empty(n + 1, np.int64)
    out_off[0] = 0
    out_group[0] = 0
    k = 0
    q = 0
    for g in range(n):
        c = order[g]
        for r in range(group_off[c], group_off[c + 1]):
            for v in range(off[r], off[r + 1]):
                out_x[k] = xs[v]
                out_y[k] = ys[v]
                k += 1
            q += 1
            out_off[q] = k
        out_group[g + 1] = q
    return out_x, out_y, out_off, out_group


@_jit
def _gather_parts(part_ring: Any, cell_part: Any, order: Any) -> Any:
    """Ring counts per part, reordered with the cells (for the lon/lat part structure)."""
    n = order.size
    n_parts = 0
    for g in range(n):
        c = order[g]
        n_parts += cell_part[c + 1] - cell_part[c]
    out_part = np.empty(n_parts + 1, np.int64)
    out_cell = np.empty(n + 1, np.int64)
    out_part[0] = 0
    out_cell[0] = 0
    q = 0
    for g in range(n):
        c = order[g]
        for p in range(cell_part[c], cell_part[c + 1]):
            out_part[q + 1] = out_part[q] + part_ring[p + 1] - part_ring[p]
            q += 1
        out_cell[g + 1] = q
    return out_part, out_cell


@_jit
def _fill_levels(box: Any, level_off: Any, node_box: Any) -> None:
    """Bounding boxes of the packed R-tree nodes, level by level (level 1 over the items)."""
    levels = level_off.size - 2
    for level in range(1, levels + 1):
        start = level_off[level]
        count = level_off[level + 1] - start
        src = box if level == 1 else node_box[level_off[level - 1]:level_off[level]]
        for j in range(count):
            lo = j * _FANOUT
            hi = min(lo + _FANOUT, src.shape[0])
            x0 = np.inf
            y0 = np.inf
            x1 = -np.inf
            y1 = -np.inf
            for k in range(lo, hi):
                x0 = min(x0, src[k, 0])
                y0 = min(y0, src[k, 1])
                x1 = max(x1, src[k, 2])
                y1 = max(y1, src[k, 3])
            node_box[start + j, 0] = x0
            node_box[start + j, 1] = y0
            node_box[start + j, 2] = x1
            node_box[start + j, 3] = y1


# -- cover raster ------------------------------------------------------------------------


@_jit
def _grow_f(a: Any, need: int) -> Any:
    if need <= a.size:
        return a
    b = np.empty(max(need, 2 * a.size))
    b[:a.size] = a
    return b


@_jit
def _grow_i(a: Any, need: int) -> Any:
    if need <= a.shape[0]:
        return a
    b = np.empty((max(need, 2 * a.shape[0]), *a.shape[1:]), np.int64)
    b[:a.shape[0]] = a
    return b


@_jit
def _cut(sx: float, sy: float, ex: float, ey: float, axis: int, c: float) -> Any:
    """Where the edge s-e meets the line x=c (axis 0) or y=c (axis 1), set exactly on it.

    Endpoints are put in a canonical order first, so that both directions of
    an edge (shared by neighbouring rings) give the very same point.
    """
    if sx > ex or (sx == ex and sy > ey):
        sx, ex = ex, sx
        sy, ey = ey, sy
    if axis == 0:
        t = (c - sx) / (ex - sx)
        return c, sy + t * (ey - sy)
    t = (c - sy) / (ey - sy)
    return sx + t * (ex - sx), c


@_jit
def _rasterize(xs: Any, ys: Any, ring_off: Any, gx: float, gy: float, dx: float, dy: float,
               nx: int, ny: int, want_pieces: bool) -> Any:
    """Cut oriented area rings along a grid; classify squares; keep pieces of partial ones.

    Returns ``status`` (per square, row-major: 0 empty, 1 partial, 2 full) and,
    when ``want_pieces``, ``piece_of`` (square -> piece or -1), the ring range
    of each piece (``p_lo``, ``p_hi``) and the ring arena (``rs``, ``re``,
    ``ax``, ``ay``).
    """
    nv = xs.size
    nr = ring_off.size - 1
    ax = np.empty(max(256, 4 * nv + 64))
    ay = np.empty(ax.size)
    na = 0
    rs = np.empty(max(64, 4 * nr + 16), np.int64)
    re = np.empty(rs.size, np.int64)
    nrs = 0
    for r in range(nr):
        lo = ring_off[r]
        hi = ring_off[r + 1]
        if hi - lo < 3:
            continue
        rs[nrs] = na
        for k in range(lo, hi):
            ax[na] = xs[k]
            ay[na] = ys[k]
            na += 1
        re[nrs] = na
        nrs += 1
    status = np.zeros(nx * ny, np.int8)
    piece_of = np.full(nx * ny if want_pieces else 0, -1, np.int64)
    p_lo = np.empty(64, np.int64)
    p_hi = np.empty(64, np.int64)
    n_p = 0
    stack = np.empty((256, 6), np.int64)
    stack[0, 0] = 0
    stack[0, 1] = nx
    stack[0, 2] = 0
    stack[0, 3] = ny
    stack[0, 4] = 0
    stack[0, 5] = nrs
    sp = 1
    while sp > 0:
        sp -= 1
        i0 = stack[sp, 0]
        i1 = stack[sp, 1]
        j0 = stack[sp, 2]
        j1 = stack[sp, 3]
        rlo = stack[sp, 4]
        rhi = stack[sp, 5]
        if rlo == rhi:
            continue
        x0 = gx + i0 * dx
        x1 = gx + i1 * dx
        y0 = gy + j0 * dy
        y1 = gy + j1 * dy
        interior = False
        for r in range(rlo, rhi):
            a = rs[r]
            b = re[r]
            for k in range(a, b):
                k2 = k + 1 if k + 1 < b else a
                xa = ax[k]
                ya = ay[k]
                xb = ax[k2]
                yb = ay[k2]
                if ((xa == x0 and xb == x0) or (xa == x1 and xb == x1)
                        or (ya == y0 and yb == y0) or (ya == y1 and yb == y1)):
                    continue
                interior = True
                break
            if interior:
                break
        if not interior:
            # No area edge inside: the winding number is constant over the block.
            total = 0.0
            for r in range(rlo, rhi):
                a = rs[r]
                b = re[r]
                for k in range(a, b):
                    k2 = k + 1 if k + 1 < b else a
                    total += ((ax[k] - x0) * (ay[k2] - y0) - (ax[k2] - x0) * (ay[k] - y0))
            if 0.5 * total > 0.5 * (x1 - x0) * (y1 - y0):
                for j in range(j0, j1):
                    for i in range(i0, i1):
                        status[j * nx + i] = 2
            continue
        if i1 - i0 == 1 and j1 - j0 == 1:
            status[j0 * nx + i0] = 1
            if want_pieces:
                if n_p >= p_lo.size:
                    p_lo = _grow_i(p_lo, n_p + 1)
                    p_hi = _grow_i(p_hi, n_p + 1)
                piece_of[j0 * nx + i0] = n_p
                p_lo[n_p] = rlo
                p_hi[n_p] = rhi
                n_p += 1
            continue
        if i1 - i0 >= j1 - j0:
            axis = 0
            mid = (i0 + i1) // 2
            c = gx + mid * dx
        else:
            axis = 1
            mid = (j0 + j1) // 2
            c = gy + mid * dy
        for side in range(2):
            new_lo = nrs
            for r in range(rlo, rhi):
                a = rs[r]
                b = re[r]
                n = b - a
                if na + 2 * n + 4 > ax.size:
                    ax = _grow_f(ax, na + 2 * n + 4)
                    ay = _grow_f(ay, ax.size)
                if nrs + 1 > rs.size:
                    rs = _grow_i(rs, nrs + 1)
                    re = _grow_i(re, nrs + 1)
                start = na
                sx = ax[b - 1]
                sy = ay[b - 1]
                sv = sx if axis == 0 else sy
                s_in = sv <= c if side == 0 else sv >= c
                for k in range(a, b):
                    ex = ax[k]
                    ey = ay[k]
                    ev = ex if axis == 0 else ey
                    e_in = ev <= c if side == 0 else ev >= c
                    if e_in:
                        if not s_in and ev != c:
                            px, py = _cut(sx, sy, ex, ey, axis, c)
                            ax[na] = px
                            ay[na] = py
                            na += 1
                        ax[na] = ex
                        ay[na] = ey
                        na += 1
                    elif s_in and sv != c:
                        px, py = _cut(sx, sy, ex, ey, axis, c)
                        ax[na] = px
                        ay[na] = py
                        na += 1
                    sx = ex
                    sy = ey
                    sv = ev
                    s_in = e_in
                if na - start >= 3:
                    rs[nrs] = start
                    re[nrs] = na
                    nrs += 1
                else:
                    na = start
            if sp + 1 > stack.shape[0]:
                stack = _grow_i(stack, sp + 1)
            if axis == 0:
                if side == 0:
                    stack[sp, 0] = i0
                    stack[sp, 1] = mid
                else:
                    stack[sp, 0] = mid
                    stack[sp, 1] = i1
                stack[sp, 2] = j0
                stack[sp, 3] = j1
            else:
                stack[sp, 0] = i0
                stack[sp, 1] = i1
                if side == 0:
                    stack[sp, 2] = j0
                    stack[sp, 3] = mid
                else:
                    stack[sp, 2] = mid
                    stack[sp, 3] = j1
            stack[sp, 4] = new_lo
            stack[sp, 5] = nrs
            sp += 1
    return status, piece_of, p_lo[:n_p].copy(), p_hi[:n_p].copy(), rs[:nrs].copy(), \
        re[:nrs].copy(), ax[:na].copy(), ay[:na].copy()


@_jit
def _summed(status: Any, nx: int, ny: int) -> Any:
    """Summed-area tables of non-full and of non-empty squares, (ny+1) x (nx+1) flat."""
    w = nx + 1
    nf = np.zeros((ny + 1) * w, np.int32)
    ne = np.zeros((ny + 1) * w, np.int32)
    for j in range(ny):
        row_nf = 0
        row_ne = 0
        for i in range(nx):
            s = status[j * nx + i]
            row_nf += 1 if s != 2 else 0
            row_ne += 1 if s != 0 else 0
            nf[(j + 1) * w + i + 1] = nf[j * w + i + 1] + row_nf
            ne[(j + 1) * w + i + 1] = ne[j * w + i + 1] + row_ne
    return nf, ne


@_jit
def _span(x0: float, y0: float, x1: float, y1: float, gx: float, gy: float, dx: float,
          dy: float, nx: int, ny: int, eps: float) -> Any:
    """Squares under a box widened by eps grid steps: i0, i1, j0, j1 (inclusive), clipped."""
    fx0 = (x0 - gx) / dx - eps
    fx1 = (x1 - gx) / dx + eps
    fy0 = (y0 - gy) / dy - eps
    fy1 = (y1 - gy) / dy + eps
    if not (fx1 >= 0.0 and fy1 >= 0.0 and fx0 < nx and fy0 < ny):
        return 0, -1, 0, -1, True
    i0 = math.floor(fx0)
    i1 = math.floor(fx1)
    j0 = math.floor(fy0)
    j1 = math.floor(fy1)
    clipped = i0 < 0 or j0 < 0 or i1 >= nx or j1 >= ny
    i0 = max(i0, 0)
    j0 = max(j0, 0)
    i1 = min(i1, nx - 1)
    j1 = min(j1, ny - 1)
    return i0, i1, j0, j1, clipped


@_jit
def _count(table: Any, i0: int, i1: int, j0: int, j1: int, nx: int) -> int:
    w = nx + 1
    return int(table[(j1 + 1) * w + i1 + 1] - table[j0 * w + i1 + 1]
               - table[(j1 + 1) * w + i0] + table[j0 * w + i0])


@_jit
def _collect(item_box: Any, node_box: Any, level_off: Any, qx0: float, qy0: float,
             qx1: float, qy1: float, gx: float, gy: float, dx: float, dy: float, nx: int,
             ny: int, eps: float, nf: Any, ne: Any) -> Any:
    """Walk the packed R-tree: positions of cells inside the area, and of boundary cells."""
    n = item_box.shape[0]
    levels = level_off.size - 2
    inside = np.empty(256, np.int64)
    n_in = 0
    boundary = np.empty(256, np.int64)
    n_b = 0
    if n == 0:
        return inside[:0], boundary[:0]
    stack = np.empty((_FANOUT * (levels + 2) + 64, 2), np.int64)
    sp = 0
    top = level_off[levels]
    for j in range(level_off[levels + 1] - top):
        stack[sp, 0] = levels
        stack[sp, 1] = j
        sp += 1
    qx0 -= eps * dx
    qx1 += eps * dx
    qy0 -= eps * dy
    qy1 += eps * dy
    while sp > 0:
        sp -= 1
        level = stack[sp, 0]
        j = stack[sp, 1]
        if level == 0:
            b0 = item_box[j, 0]
            b1 = item_box[j, 1]
            b2 = item_box[j, 2]
            b3 = item_box[j, 3]
        else:
            q = level_off[level] + j
            b0 = node_box[q, 0]
            b1 = node_box[q, 1]
            b2 = node_box[q, 2]
            b3 = node_box[q, 3]
        if b2 < qx0 or b0 > qx1 or b3 < qy0 or b1 > qy1:
            continue
        i0, i1, j0, j1, clipped = _span(b0, b1, b2, b3, gx, gy, dx, dy, nx, ny, eps)
        if i1 < i0 or _count(ne, i0, i1, j0, j1, nx) == 0:
            continue
        if not clipped and _count(nf, i0, i1, j0, j1, nx) == 0:
            span = _FANOUT ** level
            lo = j * span
            hi = min(lo + span, n)
            if n_in + hi - lo > inside.size:
                inside = _grow_i(inside, n_in + hi - lo)
            for k in range(lo, hi):
                if item_box[k, 0] <= item_box[k, 2]:  # empty cells have inverted boxes
                    inside[n_in] = k
                    n_in += 1
            continue
        if level == 0:
            if n_b >= boundary.size:
                boundary = _grow_i(boundary, n_b + 1)
            boundary[n_b] = j
            n_b += 1
            continue
        below = n if level == 1 else level_off[level] - level_off[level - 1]
        lo = j * _FANOUT
        hi = min(lo + _FANOUT, below)
        for child in range(hi - 1, lo - 1, -1):
            stack[sp, 0] = level - 1
            stack[sp, 1] = child
            sp += 1
    return inside[:n_in].copy(), boundary[:n_b].copy()


@_jit
def _query_box(item_box: Any, node_box: Any, level_off: Any, qx0: float, qy0: float,
               qx1: float, qy1: float) -> Any:
    """Positions of the cells whose box meets a query box (closed boxes)."""
    n = item_box.shape[0]
    levels = level_off.size - 2
    out = np.empty(64, np.int64)
    n_out = 0
    if n == 0:
        return out[:0]
    stack = np.empty((_FANOUT * (levels + 2) + 64, 2), np.int64)
    sp = 0
    top = level_off[levels]
    for j in range(level_off[levels + 1] - top):
        stack[sp, 0] = levels
        stack[sp, 1] = j
        sp += 1
    while sp > 0:
        sp -= 1
        level = stack[sp, 0]
        j = stack[sp, 1]
        if level == 0:
            if (item_box[j, 2] < qx0 or item_box[j, 0] > qx1 or item_box[j, 3] < qy0
                    or item_box[j, 1] > qy1):
                continue
            if n_out >= out.size:
                out = _grow_i(out, n_out + 1)
            out[n_out] = j
            n_out += 1
            continue
        q = level_off[level] + j
        if (node_box[q, 2] < qx0 or node_box[q, 0] > qx1 or node_box[q, 3] < qy0
                or node_box[q, 1] > qy1):
            continue
        below = n if level == 1 else level_off[level] - level_off[level - 1]
        lo = j * _FANOUT
        hi = min(lo + _FANOUT, below)
        for child in range(hi - 1, lo - 1, -1):
            stack[sp, 0] = level - 1
            stack[sp, 1] = child
            sp += 1
    return out[:n_out].copy()


# -- local cell sizes --------------------------------------------------------------------


@_jit
def _size_map(box: Any, x0: float, y0: float, sx: float, sy: float, bins: int) -> Any:
    """Per bin of a coarse grid: cell count and sums of log widths and heights."""
    count = np.zeros(bins * bins)
    log_w = np.zeros(bins * bins)
    log_h = np.zeros(bins * bins)
    for t in range(box.shape[0]):
        w = box[t, 2] - box[t, 0]
        h = box[t, 3] - box[t, 1]
        if not (w > 0.0 and h > 0.0) or not (w < np.inf and h < np.inf):
            continue
        i = min(max(int((0.5 * (box[t, 0] + box[t, 2]) - x0) / sx), 0), bins - 1)
        j = min(max(int((0.5 * (box[t, 1] + box[t, 3]) - y0) / sy), 0), bins - 1)
        count[j * bins + i] += 1.0
        log_w[j * bins + i] += math.log(w)
        log_h[j * bins + i] += math.log(h)
    return count, log_w, log_h


@_jit
def _local_size(xs: Any, ys: Any, x0: float, y0: float, sx: float, sy: float, bins: int,
                count: Any, log_w: Any, log_h: Any) -> Any:
    """Typical cell width and height where an outline runs (NaN if no cells there)."""
    n = xs.size
    stride = max(1, n // 4096)
    total = 0.0
    sum_w = 0.0
    sum_h = 0.0
    for k in range(0, n, stride):
        i = min(max(int((xs[k] - x0) / sx), 0), bins - 1)
        j = min(max(int((ys[k] - y0) / sy), 0), bins - 1)
        b = j * bins + i
        total += count[b]
        sum_w += log_w[b]
        sum_h += log_h[b]
    if total == 0.0:
        return np.nan, np.nan
    return math.exp(sum_w / total), math.exp(sum_h / total)


# -- exact intersects (lon/lat) ------------------------------------------------------------


@_jit
def _edges(xs: Any, ys: Any, ring_off: Any) -> Any:
    """Every edge of open rings as four coordinate arrays."""
    n = xs.size
    x0 = np.empty(n)
    y0 = np.empty(n)
    x1 = np.empty(n)
    y1 = np.empty(n)
    for r in range(ring_off.size - 1):
        lo = ring_off[r]
        hi = ring_off[r + 1]
        for k in range(lo, hi):
            k2 = k + 1 if k + 1 < hi else lo
            x0[k] = xs[k]
            y0[k] = ys[k]
            x1[k] = xs[k2]
            y1[k] = ys[k2]
    return x0, y0, x1, y1


@_jit
def _row_buckets(ey0: Any, ey1: Any, gy: float, dy: float, ny: int) -> Any:
    """Edges listed by the grid rows their y-range spans (CSR: row_off, row_edges)."""
    counts = np.zeros(ny + 1, np.int64)
    n = ey0.size
    for e in range(n):
        j0 = math.floor((min(ey0[e], ey1[e]) - gy) / dy)
        j1 = math.floor((max(ey0[e], ey1[e]) - gy) / dy)
        j0 = min(max(j0, 0), ny - 1)
        j1 = min(max(j1, 0), ny - 1)
        for j in range(j0, j1 + 1):
            counts[j + 1] += 1
    row_off = np.cumsum(counts)
    fill = row_off[:-1].copy()
    edges = np.empty(row_off[-1], np.int64)
    for e in range(n):
        j0 = math.floor((min(ey0[e], ey1[e]) - gy) / dy)
        j1 = math.floor((max(ey0[e], ey1[e]) - gy) / dy)
        j0 = min(max(j0, 0), ny - 1)
        j1 = min(max(j1, 0), ny - 1)
        for j in range(j0, j1 + 1):
            edges[fill[j]] = e
            fill[j] += 1
    return row_off, edges


@_jit
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@_jit
def _segments_meet(ax: float, ay: float, bx: float, by: float, cx: float, cy: float,
                   dx: float, dy: float) -> bool:
    """Closed segments a-b and c-d share a point (touching counts)."""
    d1 = _orient(cx, cy, dx, dy, ax, ay)
    d2 = _orient(cx, cy, dx, dy, bx, by)
    if (d1 > 0 and d2 > 0) or (d1 < 0 and d2 < 0):
        return False
    d3 = _orient(ax, ay, bx, by, cx, cy)
    d4 = _orient(ax, ay, bx, by, dx, dy)
    if (d3 > 0 and d4 > 0) or (d3 < 0 and d4 < 0):
        return False
    if d1 == 0 and d2 == 0 and d3 == 0 and d4 == 0:
        # Collinear: do their extents overlap?
        return (min(ax, bx) <= max(cx, dx) and min(cx, dx) <= max(ax, bx)
                and min(ay, by) <= max(cy, dy) and min(cy, dy) <= max(ay, by))
    return True


@_jit
def _in_area(px: float, py: float, ex0: Any, ey0: Any, ex1: Any, ey1: Any, gy: float,
             dy: float, ny: int, row_off: Any, row_edges: Any) -> bool:
    """Point in the area (even-odd over its rings), from the edges of the point's row."""
    j = math.floor((py - gy) / dy)
    if j < 0 or j >= ny:
        return False
    inside = False
    for k in range(row_off[j], row_off[j + 1]):
        e = row_edges[k]
        y0 = ey0[e]
        y1 = ey1[e]
        if (y0 > py) != (y1 > py):
            x0 = ex0[e]
            x1 = ex1[e]
            if px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
    return inside


@_jit
def _in_cell(px: float, py: float, xs: Any, ys: Any, ring_off: Any, r0: int, r1: int) -> bool:
    """Point in a cell (even-odd over its rings)."""
    inside = False
    for r in range(r0, r1):
        lo = ring_off[r]
        hi = ring_off[r + 1]
        for k in range(lo, hi):
            k2 = k + 1 if k + 1 < hi else lo
            y0 = ys[k]
            y1 = ys[k2]
            if (y0 > py) != (y1 > py):
                x0 = xs[k]
                x1 = xs[k2]
                if px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
    return inside


@_jit
def _intersects(pos: Any, xs: Any, ys: Any, ring_off: Any, part_ring: Any, cell_part: Any,
                cell_box: Any, ex0: Any, ey0: Any, ex1: Any, ey1: Any, gy: float, dy: float,
                ny: int, row_off: Any, row_edges: Any) -> Any:
    """Exact ST_Intersects of boundary cells with the area (closed sets)."""
    out = np.zeros(pos.size, np.bool_)
    for q in range(pos.size):
        t = pos[q]
        r0 = part_ring[cell_part[t]]
        r1 = part_ring[cell_part[t + 1]]
        if r1 == r0:
            continue
        bx0 = cell_box[t, 0]
        by0 = cell_box[t, 1]
        bx1 = cell_box[t, 2]
        by1 = cell_box[t, 3]
        j0 = min(max(math.floor((by0 - gy) / dy - _EPS_LONLAT), 0), ny - 1)
        j1 = min(max(math.floor((by1 - gy) / dy + _EPS_LONLAT), 0), ny - 1)
        hit = False
        # 1. An area edge meets a cell edge.
        for j in range(j0, j1 + 1):
            for k in range(row_off[j], row_off[j + 1]):
                e = row_edges[k]
                ax = ex0[e]
                ay = ey0[e]
                bx = ex1[e]
                by = ey1[e]
                if (max(ax, bx) < bx0 or min(ax, bx) > bx1 or max(ay, by) < by0
                        or min(ay, by) > by1):
                    continue
                for r in range(r0, r1):
                    lo = ring_off[r]
                    hi = ring_off[r + 1]
                    for v in range(lo, hi):
                        v2 = v + 1 if v + 1 < hi else lo
                        cx = xs[v]
                        cy = ys[v]
                        dx = xs[v2]
                        dy2 = ys[v2]
                        if (max(cx, dx) < min(ax, bx) or min(cx, dx) > max(ax, bx)
                                or max(cy, dy2) < min(ay, by) or min(cy, dy2) > max(ay, by)):
                            continue
                        if _segments_meet(ax, ay, bx, by, cx, cy, dx, dy2):
                            hit = True
                            break
                    if hit:
                        break
                if hit:
                    break
            if hit:
                break
        # 2. No boundaries meet: a cell ring lies inside the area ...
        if not hit:
            for r in range(r0, r1):
                if ring_off[r + 1] > ring_off[r] and _in_area(
                        xs[ring_off[r]], ys[ring_off[r]], ex0, ey0, ex1, ey1, gy, dy, ny,
                        row_off, row_edges):
                    hit = True
                    break
        # 3. ... or an area ring lies inside the cell (its vertices are near: same rows).
        if not hit:
            for j in range(j0, j1 + 1):
                for k in range(row_off[j], row_off[j + 1]):
                    e = row_edges[k]
                    px = ex0[e]
                    py = ey0[e]
                    if px < bx0 or px > bx1 or py < by0 or py > by1:
                        continue
                    if _in_cell(px, py, xs, ys, ring_off, r0, r1):
                        hit = True
                        break
                if hit:
                    break
        out[q] = hit
    return out


# -- exact overlaps (equal-area projection) --------------------------------------------


@_jit
def _clip_area(sx: Any, sy: Any, lo: int, hi: int, kx: Any, ky: Any, klo: int, khi: int,
               ox: float, oy: float, b1x: Any, b1y: Any, b2x: Any, b2y: Any) -> Any:
    """Area of ring s[lo:hi] ∩ convex counter-clockwise ring k[klo:khi] (Sutherland-Hodgman).

    Coordinates are taken relative to (ox, oy) for precision. An edge of k
    whose line leaves the ring's bounding box wholly inside is skipped at the
    cost of four products. Returns (area, ok); ok is False when the scratch
    buffers are too small (the caller grows them and calls again).
    """
    n = hi - lo
    cap = b1x.size
    if n > cap:
        return 0.0, False
    bx0 = np.inf
    by0 = np.inf
    bx1 = -np.inf
    by1 = -np.inf
    for k in range(n):
        x = sx[lo + k] - ox
        y = sy[lo + k] - oy
        b1x[k] = x
        b1y[k] = y
        bx0 = min(bx0, x)
        bx1 = max(bx1, x)
        by0 = min(by0, y)
        by1 = max(by1, y)
    cur_x = b1x
    cur_y = b1y
    nxt_x = b2x
    nxt_y = b2y
    m = khi - klo
    for e in range(m):
        e2 = e + 1 if e + 1 < m else 0
        a_x = kx[klo + e] - ox
        a_y = ky[klo + e] - oy
        ux = kx[klo + e2] - ox - a_x
        uy = ky[klo + e2] - oy - a_y
        # The corner of the box deepest outside this edge; if even it is inside, skip.
        cx = bx1 if uy > 0 else bx0
        cy = by0 if ux > 0 else by1
        if ux * (cy - a_y) - uy * (cx - a_x) >= 0.0:
            continue
        if 2 * n + 2 > cap:
            return 0.0, False
        out = 0
        s_x = cur_x[n - 1]
        s_y = cur_y[n - 1]
        ss = ux * (s_y - a_y) - uy * (s_x - a_x)
        for k in range(n):
            p_x = cur_x[k]
            p_y = cur_y[k]
            ps = ux * (p_y - a_y) - uy * (p_x - a_x)
            if ps >= 0.0:
                if ss < 0.0 and ps > 0.0:
                    t = ss / (ss - ps)
                    nxt_x[out] = s_x + t * (p_x - s_x)
                    nxt_y[out] = s_y + t * (p_y - s_y)
                    out += 1
                nxt_x[out] = p_x
                nxt_y[out] = p_y
                out += 1
            elif ss > 0.0:
                t = ss / (ss - ps)
                nxt_x[out] = s_x + t * (p_x - s_x)
                nxt_y[out] = s_y + t * (p_y - s_y)
                out += 1
            s_x = p_x
            s_y = p_y
            ss = ps
        n = out
        if n < 3:
            return 0.0, True
        cur_x, nxt_x = nxt_x, cur_x
        cur_y, nxt_y = nxt_y, cur_y
        bx0 = np.inf
        by0 = np.inf
        bx1 = -np.inf
        by1 = -np.inf
        for k in range(n):
            bx0 = min(bx0, cur_x[k])
            bx1 = max(bx1, cur_x[k])
            by0 = min(by0, cur_y[k])
            by1 = max(by1, cur_y[k])
    area = 0.0
    for k in range(n):
        k2 = k + 1 if k + 1 < n else 0
        area += cur_x[k] * cur_y[k2] - cur_x[k2] * cur_y[k]
    return 0.5 * area, True


@_jit
def _clip_box_area(kx: Any, ky: Any, klo: int, khi: int, x0: float, y0: float, x1: float,
                   y1: float, b1x: Any, b1y: Any, b2x: Any, b2y: Any) -> float:
    """Area of convex ring k[klo:khi] ∩ the box [x0, x1] x [y0, y1].

    Computed relative to the ring's first vertex; buffers must hold
    2 * (khi - klo) + 8 vertices.
    """
    ox = kx[klo]
    oy = ky[klo]
    n = khi - klo
    for k in range(n):
        b1x[k] = kx[klo + k] - ox
        b1y[k] = ky[klo + k] - oy
    cur_x = b1x
    cur_y = b1y
    nxt_x = b2x
    nxt_y = b2y
    for side in range(4):
        if side == 0:
            c = x0 - ox
        elif side == 1:
            c = x1 - ox
        elif side == 2:
            c = y0 - oy
        else:
            c = y1 - oy
        axis = 0 if side < 2 else 1
        keep_ge = side == 0 or side == 2
        cut = False
        for k in range(n):
            v = cur_x[k] if axis == 0 else cur_y[k]
            if (v < c) if keep_ge else (v > c):
                cut = True
                break
        if not cut:
            continue
        out = 0
        s_x = cur_x[n - 1]
        s_y = cur_y[n - 1]
        sv = (s_x if axis == 0 else s_y) - c
        if not keep_ge:
            sv = -sv
        for k in range(n):
            p_x = cur_x[k]
            p_y = cur_y[k]
            pv = (p_x if axis == 0 else p_y) - c
            if not keep_ge:
                pv = -pv
            if pv >= 0.0:
                if sv < 0.0 and pv > 0.0:
                    t = sv / (sv - pv)
                    nxt_x[out] = s_x + t * (p_x - s_x)
                    nxt_y[out] = s_y + t * (p_y - s_y)
                    out += 1
                nxt_x[out] = p_x
                nxt_y[out] = p_y
                out += 1
            elif sv > 0.0:
                t = sv / (sv - pv)
                nxt_x[out] = s_x + t * (p_x - s_x)
                nxt_y[out] = s_y + t * (p_y - s_y)
                out += 1
            s_x = p_x
            s_y = p_y
            sv = pv
        n = out
        if n < 3:
            return 0.0
        cur_x, nxt_x = nxt_x, cur_x
        cur_y, nxt_y = nxt_y, cur_y
    area = 0.0
    for k in range(n):
        k2 = k + 1 if k + 1 < n else 0
        area += cur_x[k] * cur_y[k2] - cur_x[k2] * cur_y[k]
    return 0.5 * area


@_jit
def _overlaps(pos: Any, pxs: Any, pys: Any, part_off: Any, cell_part: Any, cell_area: Any,
              gx: float, gy: float, dx: float, dy: float, nx: int, ny: int, status: Any,
              nf: Any, ne: Any, piece_of: Any, p_lo: Any, p_hi: Any, rs: Any, re: Any,
              ax: Any, ay: Any) -> Any:
    """area(cell ∩ area) for the cells at ``pos`` (not divided by the cell area).

    Per convex part: over full squares only, its own area; otherwise runs of
    full squares are clipped as boxes and partial squares' pieces as rings.
    """
    out = np.zeros(pos.size)
    cap = 256
    b1x = np.empty(cap)
    b1y = np.empty(cap)
    b2x = np.empty(cap)
    b2y = np.empty(cap)
    for q in range(pos.size):
        t = pos[q]
        lower = 0.0
        need_pieces = False
        for part in range(cell_part[t], cell_part[t + 1]):
            lo = part_off[part]
            hi = part_off[part + 1]
            if hi - lo < 3:
                continue
            if 2 * (hi - lo) + 8 > cap:
                cap = 2 * (hi - lo) + 64
                b1x = np.empty(cap)
                b1y = np.empty(cap)
                b2x = np.empty(cap)
                b2y = np.empty(cap)
            x0 = np.inf
            y0 = np.inf
            x1 = -np.inf
            y1 = -np.inf
            for v in range(lo, hi):
                x0 = min(x0, pxs[v])
                x1 = max(x1, pxs[v])
                y0 = min(y0, pys[v])
                y1 = max(y1, pys[v])
            i0, i1, j0, j1, clipped = _span(x0, y0, x1, y1, gx, gy, dx, dy, nx, ny, 0.0)
            if i1 < i0 or _count(ne, i0, i1, j0, j1, nx) == 0:
                continue
            if not clipped and _count(nf, i0, i1, j0, j1, nx) == 0:
                lower += _ring_area(pxs, pys, lo, hi)
                continue
            for j in range(j0, j1 + 1):
                ry0 = gy + j * dy
                ry1 = gy + (j + 1) * dy
                i = i0
                while i <= i1:
                    s = status[j * nx + i]
                    if s == 0:
                        i += 1
                        continue
                    if s == 2:
                        # A run of full squares: one box.
                        run = i
                        while run + 1 <= i1 and status[j * nx + run + 1] == 2:
                            run += 1
                        lower += _clip_box_area(pxs, pys, lo, hi, gx + i * dx, ry0,
                                                gx + (run + 1) * dx, ry1, b1x, b1y, b2x, b2y)
                        i = run + 1
                        continue
                    need_pieces = True
                    i += 1
        total = lower
        if need_pieces:
            for part in range(cell_part[t], cell_part[t + 1]):
                lo = part_off[part]
                hi = part_off[part + 1]
                if hi - lo < 3:
                    continue
                x0 = np.inf
                y0 = np.inf
                x1 = -np.inf
                y1 = -np.inf
                for v in range(lo, hi):
                    x0 = min(x0, pxs[v])
                    x1 = max(x1, pxs[v])
                    y0 = min(y0, pys[v])
                    y1 = max(y1, pys[v])
                i0, i1, j0, j1, clipped = _span(x0, y0, x1, y1, gx, gy, dx, dy, nx, ny, 0.0)
                if i1 < i0:
                    continue
                ox = pxs[lo]
                oy = pys[lo]
                for j in range(j0, j1 + 1):
                    for i in range(i0, i1 + 1):
                        if status[j * nx + i] != 1:
                            continue
                        p = piece_of[j * nx + i]
                        for r in range(p_lo[p], p_hi[p]):
                            area, ok = _clip_area(ax, ay, rs[r], re[r], pxs, pys, lo, hi, ox,
                                                  oy, b1x, b1y, b2x, b2y)
                            while not ok:
                                cap = max(cap * 4, 4 * (re[r] - rs[r]) + 64)
                                b1x = np.empty(cap)
                                b1y = np.empty(cap)
                                b2x = np.empty(cap)
                                b2y = np.empty(cap)
                                area, ok = _clip_area(ax, ay, rs[r], re[r], pxs, pys, lo, hi,
                                                      ox, oy, b1x, b1y, b2x, b2y)
                            total += area
        out[q] = total
    return out


@_jit
def _gather_cells(pos: Any, xs: Any, ys: Any, ring_off: Any, part_ring: Any,
                  cell_part: Any) -> Any:
    """Closed-ring ragged arrays (shapely's MultiPolygon layout) of the cells at ``pos``."""
    n_parts = 0
    n_rings = 0
    n_vertices = 0
    for q in range(pos.size):
        t = pos[q]
        n_parts += cell_part[t + 1] - cell_part[t]
        r0 = part_ring[cell_part[t]]
        r1 = part_ring[cell_part[t + 1]]
        n_rings += r1 - r0
        n_vertices += ring_off[r1] - ring_off[r0] + (r1 - r0)
    coords = np.empty((n_vertices, 2))
    out_ring = np.empty(n_rings + 1, np.int64)
    out_part = np.empty(n_parts + 1, np.int64)
    out_cell = np.empty(pos.size + 1, np.int64)
    out_ring[0] = 0
    out_part[0] = 0
    out_cell[0] = 0
    k = 0
    rr = 0
    pp = 0
    for q in range(pos.size):
        t = pos[q]
        for p in range(cell_part[t], cell_part[t + 1]):
            for r in range(part_ring[p], part_ring[p + 1]):
                lo = ring_off[r]
                hi = ring_off[r + 1]
                for v in range(lo, hi):
                    coords[k, 0] = xs[v]
                    coords[k, 1] = ys[v]
                    k += 1
                coords[k, 0] = xs[lo]
                coords[k, 1] = ys[lo]
                k += 1
                rr += 1
                out_ring[rr] = k
            pp += 1
            out_part[pp] = rr
        out_cell[q + 1] = pp
    return coords, out_ring, out_part, out_cell


# ======================================================================================
# Python side: building, preparing areas, results.
# ======================================================================================


class _Tree(NamedTuple):
    """A packed R-tree (fan-out 16) over cell boxes, cells in Hilbert order."""

    item_box: F64  #: (n, 4) cell boxes
    node_box: F64  #: boxes of all nodes, level 1 first
    level_off: I64  #: level l >= 1 starts at level_off[l]; level_off[-1] is the node count


def _build_tree(box: F64) -> _Tree:
    sizes: list[int] = []
    m = box.shape[0]
    while True:
        m = (m + _FANOUT - 1) // _FANOUT
        sizes.append(m)
        if m <= 1:
            break
    level_off = np.zeros(len(sizes) + 2, np.int64)
    level_off[2:] = np.cumsum(sizes)
    node_box = np.empty((int(level_off[-1]), 4))
    if box.shape[0]:
        _fill_levels(box, level_off, node_box)
    return _Tree(box, node_box, level_off)


class _Raster(NamedTuple):
    """An area cut along a grid: square status, summed-area tables, pieces."""

    gx: float
    gy: float
    dx: float
    dy: float
    nx: int
    ny: int
    status: npt.NDArray[np.int8]
    nf: npt.NDArray[np.int32]
    ne: npt.NDArray[np.int32]
    piece_of: I64
    p_lo: I64
    p_hi: I64
    rs: I64
    re: I64
    ax: F64
    ay: F64


def _raster(xs: F64, ys: F64, ring_off: I64, step: tuple[float, float], pieces: bool,
            max_squares: int = _RASTER_MAX_SQUARES) -> _Raster:
    """The cover raster of open rings, with squares of about ``step`` (x, y)."""
    if xs.size:
        x0, x1 = float(xs.min()), float(xs.max())
        y0, y1 = float(ys.min()), float(ys.max())
    else:
        x0 = x1 = y0 = y1 = 0.0
    w, h = x1 - x0, y1 - y0
    dx, dy = step
    span = max(w, h, 1e-9)
    if not (math.isfinite(dx) and dx > 0):
        dx = span / 64
    if not (math.isfinite(dy) and dy > 0):
        dy = span / 64
    nx, ny = math.ceil(w / dx) + 2, math.ceil(h / dy) + 2
    grow = max(nx / _RASTER_MAX_SIDE, ny / _RASTER_MAX_SIDE,
               math.sqrt(nx * ny / min(max_squares, _RASTER_MAX_SQUARES)))
    if grow > 1:
        dx, dy = dx * grow * 1.01, dy * grow * 1.01
        nx, ny = math.ceil(w / dx) + 2, math.ceil(h / dy) + 2
    gx, gy = x0 - dx, y0 - dy
    status, piece_of, p_lo, p_hi, rs, re, ax, ay = _rasterize(
        xs, ys, ring_off, gx, gy, dx, dy, nx, ny, pieces)
    nf, ne = _summed(status, nx, ny)
    return _Raster(gx, gy, dx, dy, nx, ny, status, nf, ne, piece_of, p_lo, p_hi, rs, re,
                   ax, ay)


class _Group(NamedTuple):
    """One polygonal part (or all of them) of an area, as open lon/lat rings."""

    xs: F64
    ys: F64
    ring_off: I64


def _rings(geometry: BaseGeometry) -> _Group:
    # get_rings + get_coordinates: a tenth of the cost of to_ragged_array on one geometry.
    rings = shapely.get_rings(shapely.get_parts(geometry))
    coords, which = shapely.get_coordinates(rings, return_index=True)
    ring_off = np.zeros(len(rings) + 1, np.int64)
    np.cumsum(np.bincount(which, minlength=len(rings)), out=ring_off[1:])
    xs, ys, open_off = _open_rings(np.ascontiguousarray(coords), ring_off)
    return _Group(xs, ys, open_off)


_POINTISH = frozenset({0, 1, 2, 4, 5})  # Point, LineString, LinearRing, MultiPoint, MultiLine
_POLYGONAL = frozenset({3, 6})


class _Area:
    """An alert area made ready for targeting: polygonal groups, lower-dimensional rest.

    Projected rasters are built on first use and kept, so that a result's
    overlaps (computed lazily for ``min_overlap=0``) reuse them.
    """

    __slots__ = ("_projected", "geometry", "groups", "lower")

    def __init__(self, geometry: BaseGeometry) -> None:
        self.geometry = geometry
        self.groups: list[_Group] = []
        self.lower: BaseGeometry | None = None
        self._projected: dict[int, list[tuple[_Raster, _Raster]]] = {}
        polygonal, lower = _split(geometry)
        self.lower = lower
        if polygonal is None:
            return
        parts = shapely.get_parts(polygonal)
        if len(parts) > 1:
            # Far-apart parts (an area split at the antimeridian, islands) get a raster each.
            boxes = shapely.bounds(parts)
            whole = shapely.bounds(polygonal)
            box_sum = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum())
            box_all = float((whole[2] - whole[0]) * (whole[3] - whole[1]))
            if box_sum < 0.5 * box_all:
                self.groups = [_rings(part) for part in parts]
                return
        self.groups = [_rings(polygonal)]

    def projected(self, index: CellIndex) -> list[tuple[_Raster, _Raster]]:
        """Per group, the fine and the coarse cover raster in the index's projection (cached).

        Boundary cells much larger than a fine square are clipped against the
        coarse raster's pieces instead: a few larger pieces cost less than
        dozens of small ones.
        """
        key = id(index)
        found = self._projected.get(key)
        if found is None:
            found = []
            for group in self.groups:
                px, py = index.crs.xy(group.xs, group.ys)
                fine_step = index._pr_sizes.step(px, py)
                coarse_step = (fine_step[0] * _COARSE, fine_step[1] * _COARSE)
                limit = index._max_squares
                found.append((_raster(px, py, group.ring_off, fine_step, True, limit),
                              _raster(px, py, group.ring_off, coarse_step, True, limit)))
            self._projected[key] = found
        return found


def _split(geometry: BaseGeometry) -> tuple[BaseGeometry | None, BaseGeometry | None]:
    """The polygonal part (valid, exteriors counter-clockwise) and the rest of a geometry."""
    if geometry is None or not isinstance(geometry, shapely.Geometry):
        raise InvalidGeoInput("area", geometry, "expected a shapely geometry in lon/lat")
    if geometry.is_empty:
        return None, None
    kind = int(shapely.get_type_id(geometry))
    polygonal: BaseGeometry | None
    lower: BaseGeometry | None = None
    if kind in _POLYGONAL:
        polygonal = geometry
    elif kind in _POINTISH:
        return None, geometry
    else:
        members = list(shapely.get_parts(geometry))
        flat: list[BaseGeometry] = []
        while members:
            member = members.pop()
            if int(shapely.get_type_id(member)) == 7:
                members.extend(shapely.get_parts(member))
            elif not member.is_empty:
                flat.append(member)
        polys = [m for m in flat if int(shapely.get_type_id(m)) in _POLYGONAL]
        rest = [m for m in flat if int(shapely.get_type_id(m)) in _POINTISH]
        polygonal = shapely.union_all(polys) if polys else None
        lower = shapely.GeometryCollection(rest) if rest else None
    if polygonal is not None and not shapely.is_valid(polygonal):
        # make_valid's output is valid, so this recursion ends after one step.
        logger.info("area repaired with make_valid", extra={"action": "area_make_valid"})
        polygonal, extra = _split(shapely.make_valid(polygonal))
        if extra is not None:
            lower = extra if lower is None else shapely.GeometryCollection([lower, extra])
    if polygonal is not None:
        if polygonal.is_empty:
            polygonal = None
        else:
            polygonal = shapely.orient_polygons(polygonal, exterior_cw=False)
    return polygonal, lower


def _as_area(area: Any) -> _Area:
    return area if isinstance(area, _Area) else _Area(area)


def _check_min_overlap(min_overlap: float) -> float:
    value = float(min_overlap)
    if not (0.0 <= value <= 1.0):
        raise InvalidGeoInput("min_overlap", min_overlap,
                              "must be a fraction from 0.0 (any contact) to 1.0 (fully covered)")
    return value


class TargetResult:
    """The cells that one area targets, sorted by cell id.

    ``indices`` are positions into the arrays given to
    :meth:`CellIndex.from_arrays`; ``cell_ids`` (strings) and, for
    ``min_overlap=0``, ``overlap`` are computed on first access and kept
    (building a million strings costs more than finding the cells). A result
    is immutable apart from that cache; reading it from several threads is safe
    (two threads may both compute the cached value; they get the same one).
    """

    __slots__ = ("_area", "_ids", "_index", "_indices", "_overlap", "_ranks", "min_overlap")

    def __init__(self, *, index: CellIndex, ranks: I64, overlap: F64 | None,
                 area: _Area | None, min_overlap: float) -> None:
        self._index = index
        self._ranks = ranks
        self._overlap = overlap
        self._area = area
        self._ids: StrArray | None = None
        self._indices: I64 | None = None
        #: The threshold this result was computed with.
        self.min_overlap = min_overlap

    def __len__(self) -> int:
        return int(self._ranks.size)

    def __repr__(self) -> str:
        return f"<TargetResult {len(self)} cells, min_overlap={self.min_overlap}>"

    @property
    def indices(self) -> I64:
        """Positions of the targeted cells in the arrays the index was built from."""
        if self._indices is None:
            self._indices = self._index._rank_input[self._ranks]
        return self._indices

    @property
    def cell_ids(self) -> StrArray:
        """The targeted cell ids, sorted (a numpy array of str)."""
        if self._ids is None:
            self._ids = self._index._sorted_ids[self._ranks]
        return self._ids

    @property
    def overlap(self) -> F64:
        """area(cell ∩ area) / area(cell) per cell, in the index's equal-area projection.

        Computed on first access where the search did not need it: for
        ``min_overlap=0``, and for cells whose bounds alone showed that they
        pass the threshold.
        """
        overlap = self._overlap
        if overlap is None:
            assert self._area is not None
            overlap = self._index._overlap_at(self._area, self._index._rank_tree[self._ranks])
            self._overlap = overlap
        elif np.isnan(overlap).any():
            assert self._area is not None
            missing = np.flatnonzero(np.isnan(overlap))
            overlap = overlap.copy()
            overlap[missing] = self._index._overlap_at(
                self._area, self._index._rank_tree[self._ranks[missing]])
            self._overlap = overlap
        return overlap

    @property
    def operators(self) -> StrArray:
        """The operator of each targeted cell."""
        names = np.asarray(self._index.operators, dtype=str)
        return names[self._index._rank_op[self._ranks]]

    def _subset(self, mask: npt.NDArray[np.bool_]) -> TargetResult:
        result = TargetResult(index=self._index, ranks=self._ranks[mask],
                              overlap=None if self._overlap is None else self._overlap[mask],
                              area=self._area, min_overlap=self.min_overlap)
        return result

    def by_operator(self) -> dict[str, TargetResult]:
        """One result per operator of the index (empty ones included), in operator order."""
        codes = self._index._rank_op[self._ranks]
        return {name: self._subset(codes == code)
                for code, name in enumerate(self._index.operators)}


class _Sizes(NamedTuple):
    """Typical cell size per bin of a coarse grid over the inventory (one space)."""

    x0: float
    y0: float
    sx: float
    sy: float
    bins: int
    n_cells: F64
    log_w: F64
    log_h: F64
    default: tuple[float, float]

    def step(self, xs: F64, ys: F64) -> tuple[float, float]:
        """Raster step for an outline: a fraction of the size of the cells along it.

        Dense city cells get fine squares, rural cells coarse ones, so that the
        band of boundary cells stays about one cell wide everywhere.
        """
        if xs.size == 0:
            return self.default
        w, h = _local_size(xs, ys, self.x0, self.y0, self.sx, self.sy, self.bins,
                           self.n_cells, self.log_w, self.log_h)
        if not (math.isfinite(w) and math.isfinite(h)):
            return self.default
        return w * _RASTER_STEP, h * _RASTER_STEP


def _sizes(box: F64, bins: int = 128) -> _Sizes:
    default = _median_step(box)
    finite = np.isfinite(box).all(axis=1)
    if not finite.any():
        return _Sizes(0.0, 0.0, 1.0, 1.0, 1, np.zeros(1), np.zeros(1), np.zeros(1), default)
    x0, y0 = float(box[finite, 0].min()), float(box[finite, 1].min())
    x1, y1 = float(box[finite, 2].max()), float(box[finite, 3].max())
    sx = max((x1 - x0) / bins, 1e-9)
    sy = max((y1 - y0) / bins, 1e-9)
    count, log_w, log_h = _size_map(box, x0, y0, sx, sy, bins)
    return _Sizes(x0, y0, sx, sy, bins, count, log_w, log_h, default)


def _median_step(box: F64) -> tuple[float, float]:
    finite = np.isfinite(box).all(axis=1)
    if not finite.any():
        return math.nan, math.nan
    sample = box[finite]
    if sample.shape[0] > 200_000:
        sample = sample[:: sample.shape[0] // 100_000]
    w = float(np.median(sample[:, 2] - sample[:, 0]))
    h = float(np.median(sample[:, 3] - sample[:, 1]))
    return w * _RASTER_STEP, h * _RASTER_STEP


def _hilbert_order(box: F64) -> I64:
    finite = cast(npt.NDArray[np.bool_], np.isfinite(box).all(axis=1))
    safe = np.where(finite[:, None], box, 0.0)
    cx = (safe[:, 0] + safe[:, 2]) / 2
    cy = (safe[:, 1] + safe[:, 3]) / 2
    if finite.any():
        x0, x1 = cx[finite].min(), cx[finite].max()
        y0, y1 = cy[finite].min(), cy[finite].max()
    else:
        x0 = x1 = y0 = y1 = 0.0
    sx = 65535.0 / (x1 - x0) if x1 > x0 else 0.0
    sy = 65535.0 / (y1 - y0) if y1 > y0 else 0.0
    xi = np.clip(((cx - x0) * sx).astype(np.int64), 0, 65535)
    yi = np.clip(((cy - y0) * sy).astype(np.int64), 0, 65535)
    keys = _hilbert(xi, yi)
    keys[~finite] = np.iinfo(np.int64).max  # empty cells last
    return np.argsort(keys, kind="stable").astype(np.int64)


def _unique(values: I64) -> I64:
    """Sorted distinct values (numpy's hash-based unique is slow on large int arrays)."""
    values = np.sort(values)
    if values.size:
        keep = np.ones(values.size, np.bool_)
        keep[1:] = values[1:] != values[:-1]
        values = values[keep]
    return values


def _inverse(order: I64) -> I64:
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=np.int64)
    return inverse


#: Arrays saved by CellIndex.save, with the attribute each one fills.
_SAVED = ("_ll_x", "_ll_y", "_ll_ring", "_ll_part", "_ll_cell", "_pr_x", "_pr_y", "_pr_part",
          "_pr_cell", "_cell_area", "_tree_rank", "_rank_tree", "_rank_input", "_input_tree",
          "_sorted_ids", "_rank_op")


class CellIndex:
    """Exact, fast targeting of cell coverage polygons by alert areas.

    Build with :meth:`from_arrays` (or :meth:`from_inventory`, :meth:`load`),
    then :meth:`target` one area or :meth:`target_many` a batch. An index is
    immutable: any number of threads may query it at once (the compiled loops
    release the GIL). To follow a changing inventory, build a new index and
    swap it in (:class:`IndexHolder`).
    """

    # Attributes are set by _finish; listed here for the reader and for mypy.
    _crs: EqualArea
    _operators: tuple[str, ...]
    _ll_x: F64
    _ll_y: F64
    _ll_ring: I64
    _ll_part: I64
    _ll_cell: I64
    _pr_x: F64
    _pr_y: F64
    _pr_part: I64
    _pr_cell: I64
    _cell_area: F64
    _tree_rank: I64
    _rank_tree: I64
    _rank_input: I64
    _input_tree: I64
    _sorted_ids: StrArray
    _rank_op: npt.NDArray[np.int16]
    _ll_tree: _Tree
    _pr_tree: _Tree
    _ll_sizes: _Sizes
    _pr_sizes: _Sizes
    _executor: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return int(self._cell_area.size)

    def __repr__(self) -> str:
        return f"<CellIndex {len(self)} cells, {len(self._operators)} operators, {self._crs.proj4}>"

    @property
    def _max_squares(self) -> int:
        # A small inventory gains nothing from a raster finer than its cells are many.
        return max(4096, 16 * len(self))

    @property
    def crs(self) -> EqualArea:
        """The equal-area projection in which overlaps are measured."""
        return self._crs

    @property
    def operators(self) -> tuple[str, ...]:
        """Operator names, sorted ("" alone when the index was built without operators)."""
        return self._operators

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the coverage (lon may pass 180 east)."""
        if self._ll_x.size == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (float(self._ll_x.min()), float(self._ll_y.min()),
                float(self._ll_x.max()), float(self._ll_y.max()))

    @property
    def cell_ids(self) -> StrArray:
        """Every cell id of the index, sorted (a read-only view)."""
        view = self._sorted_ids.view()
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays, in bytes."""
        arrays = [getattr(self, name) for name in _SAVED]
        arrays += [*self._ll_tree, *self._pr_tree]
        return int(sum(a.nbytes for a in arrays))

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, cell_ids: Sequence[str] | npt.ArrayLike, polygons: Any,
                    operators: Sequence[str] | npt.ArrayLike | None = None, *,
                    crs: EqualArea | None = None) -> CellIndex:
        """Build an index over cell coverage polygons (shapely, lon/lat, EPSG:4326).

        ``polygons`` are Polygons or MultiPolygons (a cell split at the
        antimeridian); empty ones are kept and never targeted. ``operators``
        names each cell's operator. ``crs`` overrides the equal-area
        projection chosen from the cells' extent.
        """
        ids = np.asarray(cell_ids)
        if ids.dtype.kind != "U":
            ids = ids.astype(str)
        geoms = np.asarray(polygons, dtype=object)
        if ids.ndim != 1 or geoms.ndim != 1 or ids.shape[0] != geoms.shape[0]:
            raise InvalidGeoInput("polygons", f"{geoms.shape} geometries for {ids.shape} ids",
                                  "need one polygon per cell id (two 1-d sequences)")
        n = int(ids.shape[0])
        if operators is None:
            names: tuple[str, ...] = ("",)
            codes = np.zeros(n, np.int16)
        else:
            ops = np.asarray(operators).astype(str)
            if ops.shape != (n,):
                raise InvalidGeoInput("operators", f"{ops.shape} values",
                                      f"need one operator per cell ({n})")
            unique, inverse = np.unique(ops, return_inverse=True)
            names = tuple(str(u) for u in unique)
            codes = inverse.astype(np.int16)
        kinds = shapely.get_type_id(geoms)
        bad = np.flatnonzero(~np.isin(kinds, (3, 6)))
        if bad.size:
            first = int(bad[0])
            raise GeoError(f"cell {ids[first]!r} (position {first}): coverage must be a "
                           f"Polygon or MultiPolygon, not {geoms[first]!r:.60}"
                           f" ({bad.size} such cells)")
        self = cls.__new__(cls)
        self._operators = names
        self._build(ids, geoms, codes, crs)
        return self

    @classmethod
    def from_inventory(cls, inventory: Any) -> CellIndex:
        """Build an index over a :class:`geo.cells.Inventory` (ids, polygons, operators)."""
        return cls.from_arrays(inventory.cell_ids, inventory.polygons,
                               getattr(inventory, "operators", None))

    @classmethod
    def load(cls, path: str | Path) -> CellIndex:
        """Load an index saved by :meth:`save`, or build one from an inventory file."""
        path = Path(path)
        if not path.exists():
            raise GeoError(f"{path}: no such index or inventory file")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "format" in data.files and str(data["format"]) == _FORMAT:
                    return cls._from_saved(data)
        except (OSError, ValueError):
            pass  # not an .npz: an inventory in another format
        from geo.cells import Inventory

        return cls.from_inventory(Inventory.load(path))

    def save(self, path: str | Path) -> None:
        """Write the index to one ``.npz`` file (arrays only, no pickle) for a fast load."""
        arrays: dict[str, Any] = {name.lstrip("_"): getattr(self, name) for name in _SAVED}
        arrays["format"] = np.asarray(_FORMAT)
        arrays["proj4"] = np.asarray(self._crs.proj4)
        arrays["operator_names"] = np.asarray(self._operators, dtype=str)
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def _from_saved(cls, data: Any) -> CellIndex:
        self = cls.__new__(cls)
        for name in _SAVED:
            setattr(self, name, data[name.lstrip("_")])
        self._crs = EqualArea(proj4=str(data["proj4"]))
        self._operators = tuple(str(s) for s in data["operator_names"])
        self._finish()
        return self

    def _build(self, ids: StrArray, geoms: npt.NDArray[np.object_], codes: npt.NDArray[np.int16],
               crs: EqualArea | None) -> None:
        n = ids.shape[0]
        if n:
            kind, coords, offsets = shapely.to_ragged_array(geoms)
        else:
            kind, coords, offsets = shapely.GeometryType.POLYGON, np.empty((0, 2)), (
                np.zeros(1, np.int64), np.zeros(1, np.int64))
        if kind == shapely.GeometryType.POLYGON:
            ring_off, part_ring = offsets
            cell_part = np.arange(n + 1, dtype=np.int64)
        else:
            ring_off, part_ring, cell_part = offsets
        ring_off = np.asarray(ring_off, np.int64)
        part_ring = np.asarray(part_ring, np.int64)
        cell_part = np.asarray(cell_part, np.int64)
        lx, ly, lring = _open_rings(np.ascontiguousarray(coords, dtype=np.float64), ring_off)
        del coords
        ll_part_box = _part_boxes(lx, ly, lring, part_ring)
        if crs is None:
            crs = equal_area_for(ll_part_box[np.isfinite(ll_part_box).all(axis=1)])
        self._crs = crs
        px, py = crs.xy(lx, ly)
        convex, part_area = _convexity(px, py, lring, part_ring)
        tri_xy, tri_off = self._triangulate(px, py, lring, part_ring, convex, part_area)
        pr_x, pr_y, pr_part, pr_cell = _assemble_parts(px, py, lring, part_ring, cell_part,
                                                       convex, part_area, tri_xy, tri_off)
        del px, py
        cell_area = _cell_areas(pr_x, pr_y, pr_part, pr_cell)
        pr_box = _group_boxes(_part_boxes(pr_x, pr_y, pr_part,
                                          np.arange(pr_part.size, dtype=np.int64)), pr_cell)
        ll_box = _group_boxes(ll_part_box, cell_part)
        order = _hilbert_order(pr_box)
        # Everything in Hilbert order: tree nodes are runs of consecutive cells.
        self._ll_x, self._ll_y, self._ll_ring, _ = _gather_csr(
            lx, ly, lring, part_ring[cell_part], order)
        del lx, ly
        self._ll_part, self._ll_cell = _gather_parts(part_ring, cell_part, order)
        self._pr_x, self._pr_y, self._pr_part, self._pr_cell = _gather_csr(
            pr_x, pr_y, pr_part, pr_cell, order)
        del pr_x, pr_y
        self._cell_area = cell_area[order]
        id_order = np.argsort(ids, kind="stable").astype(np.int64)
        rank_of_input = _inverse(id_order)
        self._tree_rank = rank_of_input[order]
        self._rank_tree = _inverse(self._tree_rank)
        self._rank_input = id_order
        self._input_tree = _inverse(order)
        self._sorted_ids = ids[id_order]
        self._rank_op = codes[id_order]
        self._finish(ll_box[order], pr_box[order])

    @staticmethod
    def _triangulate(px: F64, py: F64, lring: I64, part_ring: I64,
                     convex: npt.NDArray[np.bool_], part_area: F64) -> tuple[F64, I64]:
        """Triangles of the parts that are not convex (or have holes), projected."""
        n_parts = part_ring.size - 1
        tri_off = np.zeros(n_parts + 1, np.int64)
        todo = np.flatnonzero(~convex & (part_ring[1:] > part_ring[:-1]))
        if todo.size == 0:
            return np.empty((0, 3, 2)), tri_off
        sub_ring_off = [0]
        sub_part = [0]
        chunks = []
        for p in todo.tolist():
            for r in range(int(part_ring[p]), int(part_ring[p + 1])):
                lo, hi = int(lring[r]), int(lring[r + 1])
                ring = np.column_stack([px[lo:hi], py[lo:hi]])
                chunks.append(np.vstack([ring, ring[:1]]))
                sub_ring_off.append(sub_ring_off[-1] + hi - lo + 1)
            sub_part.append(len(sub_ring_off) - 1)
        polys = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, np.vstack(chunks),
            (np.asarray(sub_ring_off, np.int64), np.asarray(sub_part, np.int64)))
        polys = shapely.make_valid(polys)
        tris, owner = shapely.get_parts(shapely.constrained_delaunay_triangles(polys),
                                        return_index=True)
        keep = shapely.get_type_id(tris) == 3
        tris, owner = tris[keep], owner[keep]
        tri_xy = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3, :].copy()
        counts = np.bincount(todo[owner], minlength=n_parts)
        tri_off[1:] = np.cumsum(counts)
        # Triangles must be grouped by part in part order for _assemble_parts.
        tri_xy = tri_xy[np.argsort(todo[owner], kind="stable")]
        return tri_xy, tri_off

    def _finish(self, ll_box: F64 | None = None, pr_box: F64 | None = None) -> None:
        if ll_box is None:
            ll_box = _group_boxes(_part_boxes(self._ll_x, self._ll_y, self._ll_ring,
                                              self._ll_part), self._ll_cell)
        if pr_box is None:
            pr_box = _group_boxes(
                _part_boxes(self._pr_x, self._pr_y, self._pr_part,
                            np.arange(self._pr_part.size, dtype=np.int64)), self._pr_cell)
        self._ll_tree = _build_tree(np.ascontiguousarray(ll_box))
        self._pr_tree = _build_tree(np.ascontiguousarray(pr_box))
        self._ll_sizes = _sizes(ll_box)
        self._pr_sizes = _sizes(pr_box)

    # -- queries ----------------------------------------------------------------------

    def target(self, area: BaseGeometry, min_overlap: float = 0.0, *,
               operators: Iterable[str] | None = None) -> TargetResult:
        """The cells an area (shapely, lon/lat) targets, sorted by cell id.

        ``min_overlap=0.0``: cells whose coverage intersects the area (touching
        counts, as PostGIS ``ST_Intersects``); ``f > 0``: cells with at least
        that fraction of their coverage inside the area. ``operators`` keeps
        only those operators' cells.
        """
        return self.target_many([area], min_overlap, operators=operators)[0]

    def target_many(self, areas: Iterable[BaseGeometry], min_overlap: float = 0.0, *,
                    operators: Iterable[str] | None = None) -> list[TargetResult]:
        """One :meth:`target` result per area, in the same order.

        Each area costs a few compiled passes over its own outline and boundary
        cells; nothing is done per cell in Python, so batching adds no overhead
        per area beyond that.
        """
        threshold = _check_min_overlap(min_overlap)
        keep = self._operator_codes(operators)
        results = []
        for area in areas:
            prepared = _as_area(area)
            if threshold == 0.0:
                positions = self._hits(prepared)
                result = self._result(positions, None, prepared, threshold)
            else:
                positions, overlap = self._overlapping(prepared, threshold)
                result = self._result(positions, overlap, prepared, threshold)
            if keep is not None:
                result = result._subset(np.isin(self._rank_op[result._ranks], keep))
            results.append(result)
        return results

    def coverage(self, indices: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """The lon/lat coverage (MultiPolygons) of the cells at input positions ``indices``."""
        positions = self._input_tree[np.asarray(indices, dtype=np.int64)]
        return self._geometries(positions)

    def _operator_codes(self, operators: Iterable[str] | None) -> npt.NDArray[np.int16] | None:
        if operators is None:
            return None
        wanted = [operators] if isinstance(operators, str) else list(operators)
        unknown = [name for name in wanted if name not in self._operators]
        if unknown:
            raise InvalidGeoInput("operators", unknown,
                                  f"unknown operator; valid: {', '.join(self._operators)}")
        return np.asarray([self._operators.index(name) for name in wanted], np.int16)

    def _geometries(self, positions: I64) -> npt.NDArray[np.object_]:
        coords, ring, part, cell = _gather_cells(positions, self._ll_x, self._ll_y,
                                                 self._ll_ring, self._ll_part, self._ll_cell)
        if positions.size == 0:
            return np.empty(0, dtype=object)
        return cast(npt.NDArray[np.object_], shapely.from_ragged_array(
            shapely.GeometryType.MULTIPOLYGON, coords, (ring, part, cell)))

    def _hits(self, area: _Area) -> I64:
        """Tree positions of the cells intersecting the area (lon/lat, closed sets)."""
        found: list[I64] = []
        tree = self._ll_tree
        for group in area.groups:
            raster = _raster(group.xs, group.ys, group.ring_off,
                             self._ll_sizes.step(group.xs, group.ys), False, self._max_squares)
            inside, boundary = _collect(
                tree.item_box, tree.node_box, tree.level_off, float(group.xs.min()),
                float(group.ys.min()), float(group.xs.max()), float(group.ys.max()),
                raster.gx, raster.gy, raster.dx, raster.dy, raster.nx, raster.ny,
                _EPS_LONLAT, raster.nf, raster.ne)
            found.append(inside)
            if boundary.size:
                ex0, ey0, ex1, ey1 = _edges(group.xs, group.ys, group.ring_off)
                row_off, row_edges = _row_buckets(ey0, ey1, raster.gy, raster.dy, raster.ny)
                hit = self._split(_intersects, boundary, self._ll_x, self._ll_y,
                                  self._ll_ring, self._ll_part, self._ll_cell, tree.item_box,
                                  ex0, ey0, ex1, ey1, raster.gy, raster.dy, raster.ny, row_off,
                                  row_edges)
                found.append(boundary[hit])
        if area.lower is not None:
            x0, y0, x1, y1 = area.lower.bounds
            candidates = _query_box(tree.item_box, tree.node_box, tree.level_off,
                                    x0, y0, x1, y1)
            if candidates.size:
                shapely.prepare(area.lower)
                hit = shapely.intersects(self._geometries(candidates), area.lower)
                found.append(candidates[hit])
        if not found:
            return np.empty(0, np.int64)
        positions = found[0] if len(found) == 1 else np.concatenate(found)
        if len(area.groups) > 1 or area.lower is not None:
            positions = _unique(positions)
        return positions

    def _overlapping(self, area: _Area, threshold: float) -> tuple[I64, F64]:
        """Tree positions with overlap >= threshold, and their overlaps."""
        tree = self._pr_tree
        inside_all: list[I64] = []
        bound_all: list[I64] = []
        area_all: list[F64] = []
        for raster, coarse in area.projected(self):
            x0 = raster.gx + raster.dx
            y0 = raster.gy + raster.dy
            x1 = raster.gx + (raster.nx - 1) * raster.dx
            y1 = raster.gy + (raster.ny - 1) * raster.dy
            inside, boundary = _collect(tree.item_box, tree.node_box, tree.level_off, x0, y0,
                                        x1, y1, raster.gx, raster.gy, raster.dx, raster.dy,
                                        raster.nx, raster.ny, 0.0, raster.nf, raster.ne)
            inside_all.append(inside)
            bound_all.append(boundary)
            area_all.append(self._clip(boundary, raster, coarse))
        if not inside_all:
            return np.empty(0, np.int64), np.empty(0)
        if len(inside_all) == 1:
            inside, boundary, clipped = inside_all[0], bound_all[0], area_all[0]
        else:
            # Several groups (parts far apart): a cell's overlap is the sum over them.
            inside = _unique(np.concatenate(inside_all))
            every = np.concatenate(bound_all)
            order = np.argsort(every, kind="stable")
            every = every[order]
            first = np.ones(every.size, np.bool_)
            first[1:] = every[1:] != every[:-1]
            boundary = every[first]
            clipped = cast(F64, np.add.reduceat(np.concatenate(area_all)[order],
                                                np.flatnonzero(first))) if every.size else \
                np.zeros(0)
            in_inside = np.isin(boundary, inside)
            boundary, clipped = boundary[~in_inside], clipped[~in_inside]
        cell_area = self._cell_area[boundary]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(cell_area > 0, clipped / cell_area, 0.0)
        np.clip(fraction, 0.0, 1.0, out=fraction)
        kept = fraction >= threshold
        positions = np.concatenate([inside, boundary[kept]])
        overlap = np.concatenate([np.ones(inside.size), fraction[kept]])
        return positions, overlap

    def _clip(self, positions: I64, raster: _Raster, coarse: _Raster) -> F64:
        """area(cell ∩ area) at tree positions: big cells through the coarse raster."""
        box = self._pr_tree.item_box[positions]
        big = ((box[:, 2] - box[:, 0]) > _COARSE_FROM * raster.dx) | (
            (box[:, 3] - box[:, 1]) > _COARSE_FROM * raster.dy)
        if not big.any():
            return self._clip_with(positions, raster)
        out = np.empty(positions.size)
        out[~big] = self._clip_with(positions[~big], raster)
        out[big] = self._clip_with(positions[big], coarse)
        return out

    def _clip_with(self, positions: I64, raster: _Raster) -> F64:
        return cast(F64, self._split(_overlaps, positions, self._pr_x, self._pr_y, self._pr_part,
                           self._pr_cell, self._cell_area, raster.gx, raster.gy, raster.dx,
                           raster.dy, raster.nx, raster.ny, raster.status, raster.nf,
                           raster.ne, raster.piece_of, raster.p_lo, raster.p_hi, raster.rs,
                           raster.re, raster.ax, raster.ay))

    def _split(self, kernel: Callable[..., Any], positions: I64, *args: Any) -> Any:
        """Run a per-cell kernel, on two threads (the kernels release the GIL) when big."""
        if positions.size < _PARALLEL_FROM or _WORKERS < 2:
            return kernel(positions, *args)
        executor = self._executor
        if executor is None:
            with _EXECUTOR_LOCK:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(_WORKERS,
                                                        thread_name_prefix="cellindex")
                executor = self._executor
        chunks = np.array_split(positions, _WORKERS)
        futures = [executor.submit(kernel, chunk, *args) for chunk in chunks]
        return np.concatenate([future.result() for future in futures])

    def _overlap_at(self, area: _Area, positions: I64) -> F64:
        """Overlap fractions of the cells at tree positions (any cells, any order)."""
        total = np.zeros(positions.size)
        for raster, coarse in area.projected(self):
            total += self._clip(positions, raster, coarse)
        cell_area = self._cell_area[positions]
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(cell_area > 0, total / cell_area, 0.0)
        return cast(F64, np.clip(fraction, 0.0, 1.0))

    def _result(self, positions: I64, overlap: F64 | None, area: _Area,
                threshold: float) -> TargetResult:
        """Sort tree positions by cell id (through ranks) into a result."""
        ranks = self._tree_rank[positions]
        n = len(self)
        if ranks.size > n // 32:
            # Large results: a bitmap over all ranks beats sorting.
            mask = np.zeros(n, np.bool_)
            mask[ranks] = True
            sorted_ranks = np.flatnonzero(mask).astype(np.int64)
            if overlap is not None:
                if sorted_ranks.size != ranks.size:
                    raise AssertionError("a cell was found twice")
                full = np.empty(n)
                full[ranks] = overlap
                overlap = full[sorted_ranks]
        else:
            order = np.argsort(ranks)
            sorted_ranks = ranks[order]
            if overlap is not None:
                overlap = overlap[order]
        return TargetResult(index=self, ranks=sorted_ranks, overlap=overlap, area=area,
                            min_overlap=threshold)


class IndexHolder:
    """The current :class:`CellIndex`, replaced atomically when a rebuild finishes.

    Queries read :attr:`current` once and use that index to the end, so a
    rebuild in a background thread (:meth:`rebuild`) never stops or disturbs
    them: the swap is a single reference assignment (atomic in CPython), the
    old index lives on until its last query drops it. Rebuilds are numbered:
    when two overlap, the one started last wins even if it finishes first.
    A failed rebuild leaves the current index in place; its future carries the
    exception.
    """

    def __init__(self, index: CellIndex | None = None) -> None:
        self._current = index
        self._lock = threading.Lock()
        self._started = 0
        self._installed = 0
        self._threads: list[threading.Thread] = []

    @property
    def current(self) -> CellIndex:
        """The index to query now."""
        index = self._current
        if index is None:
            raise GeoError("no cell index loaded yet")
        return index

    @property
    def generation(self) -> int:
        """How many rebuilds have been installed (0 for the initial index)."""
        return self._installed

    def swap(self, index: CellIndex) -> CellIndex | None:
        """Install ``index`` now; return the one it replaces."""
        with self._lock:
            self._started += 1
            self._installed = self._started
            old, self._current = self._current, index
        return old

    def rebuild(self, build: Callable[[], CellIndex]) -> Future[CellIndex]:
        """Run ``build`` in a background thread and install its index when done."""
        with self._lock:
            self._started += 1
            ticket = self._started
        future: Future[CellIndex] = Future()
        future.set_running_or_notify_cancel()

        def run() -> None:
            try:
                index = build()
            except BaseException as exc:  # the caller sees it through the future
                logger.warning("cell index rebuild failed: %s", exc,
                               extra={"action": "index_rebuild_failed"})
                future.set_exception(exc)
                return
            with self._lock:
                if ticket > self._installed:
                    self._current = index
                    self._installed = ticket
            future.set_result(index)

        thread = threading.Thread(target=run, name=f"cellindex-rebuild-{ticket}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return future

    def reload(self, path: str | Path) -> Future[CellIndex]:
        """Rebuild from an index or inventory file (:meth:`CellIndex.load`) in the background."""
        return self.rebuild(lambda: CellIndex.load(path))

    def join(self, timeout: float | None = None) -> None:
        """Wait for the rebuilds started so far (for tests and orderly shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)
