"""The cell inventory: cell identifiers, coverage polygons and their file format.

An :class:`Inventory` is a set of parallel arrays, one row per cell: its
identifier in a standard textual form, its operator, its radio access
technology, its coverage polygon in lon/lat (EPSG:4326) and its site. The
``geo.cells`` importers and :func:`geo.synth.synthesize` make inventories;
:class:`geo.CellIndex` consumes them.

Cell identifiers (3GPP TS 23.003; see SPEC-NOTES section 5), all numbers in
decimal, parts joined by ``-``:

============  ==========================  =======================================
radio         form                        parts and ranges
============  ==========================  =======================================
GSM           CGI ``mcc-mnc-lac-ci``      LAC 16 bits (0..65535), CI 16 bits
UMTS          CGI ``mcc-mnc-lac-ci``      LAC 16 bits, CI the 28-bit UTRAN cell id
                                          (RNC id << 16 | C-Id, OpenCelliD's ``cell``)
LTE           ECGI ``mcc-mnc-eci``        ECI 28 bits (eNB id << 8 | cell id)
NR            NR CGI ``mcc-mnc-nci``      NCI 36 bits (gNB id << (36 - n) | cell id)
CDMA          ``mcc-sid-nid-bid``         SID 15 bits, NID 16 bits, BID 16 bits
============  ==========================  =======================================

Padding: the MCC is always three digits (``001``, ``262``); the MNC keeps the
two or three digits its network uses (``262-01`` and ``310-410``, and
``310-010`` stays distinct from ``310-10``); every other number is written
without leading zeros (``262-01-4711-12345``, ``262-02-26877441``). The CDMA
SID is not padded. The TAC of an LTE or NR cell is not part of its identifier.
An LTE cell and an NR cell with the same PLMN and the same number have the same
text; an inventory treats that as a duplicate identifier.

File format: GeoParquet 1.1 (one row per cell, Zstandard compression, row
groups of 65,536 cells). Columns ``cell_id`` (string), ``operator`` and
``radio`` (dictionary-encoded strings), ``site_lon``/``site_lat`` (float64) and
``geometry``. When every coverage is a Polygon the geometry column uses the
GeoArrow native ``polygon`` encoding (lists of rings of ``{x, y}`` structs);
with any MultiPolygon (a cell split at the antimeridian, a planning tool's
export) it is WKB. Row groups are read one at a time (the next one decoded in
a thread while this one's polygons are built), so loading needs little more
memory than the loaded inventory. Measured at a million synthetic sectors
(``ops/bench/cells.py``, two shared cores): 256 MiB on disk, loaded in 3 s
(4.2 s of CPU over the two threads) with a peak of 1.1 GiB, nearly all of it
the inventory itself (mostly GEOS polygons, some 760 bytes each). WKB in
GeoParquet takes 1.35 times the CPU; ``.npz`` with WKB 1.3 times the CPU,
440 MiB on disk and a 1.5 GiB peak; ``.npz`` with ragged coordinate arrays
half the CPU but 430 MiB on disk, a larger peak and no reader but numpy.

The schema metadata holds the GeoParquet ``geo`` key (CRS omitted, meaning
OGC:CRS84 lon/lat) and a ``capcast`` key with the format version, the source
and the creation time. GeoPandas reads these files (checked with 1.2), and
:meth:`Inventory.load` reads GeoParquet that GeoPandas writes (WKB or GeoArrow
encodings) when it has the inventory's columns.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely

from geo.errors import GeoError, InvalidGeoInput

__all__ = [
    "RADIOS",
    "CellId",
    "Inventory",
    "InventoryError",
    "InventorySummary",
    "arrow_to_str",
    "format_cell_ids",
    "format_cgi",
    "format_ecgi",
    "format_ncgi",
    "parse_cell_id",
    "progress_bar",
    "read_summary",
]

StrArray = npt.NDArray[np.str_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]
PathLike = str | os.PathLike[str]

#: Radio access technologies, as OpenCelliD names them.
RADIOS: Final = ("GSM", "UMTS", "LTE", "NR", "CDMA")

#: Largest value of each identifier part, by radio: (MNC or SID, LAC/NID, cell).
#: LTE and NR identifiers have no area part (``None``).
_LIMITS: Final[dict[str, tuple[int, int | None, int]]] = {
    "GSM": (999, 0xFFFF, 0xFFFF),
    "UMTS": (999, 0xFFFF, (1 << 28) - 1),
    "LTE": (999, None, (1 << 28) - 1),
    "NR": (999, None, (1 << 36) - 1),
    "CDMA": (0x7FFF, 0xFFFF, 0xFFFF),
}

#: Version of the capcast inventory layout inside the GeoParquet file.
FORMAT_VERSION: Final = 1
_ROW_GROUP: Final = 65536
_POLYGON, _MULTIPOLYGON = 3, 6


class InventoryError(GeoError):
    """An inventory file, or an input to an importer, cannot be used as a whole.

    ``path`` names the file (empty when there is none); ``detail`` says what is
    wrong. Problems in single rows of an import are :class:`geo.cells.ImportRefused`.
    """

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}" if self.path else detail)


# -- cell identifiers -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CellId:
    """A parsed cell identifier (see the module docstring for the forms)."""

    #: Mobile country code, 0..999 (written with three digits).
    mcc: int
    #: Mobile network code (or CDMA SID).
    mnc: int
    #: How many digits the MNC is written with: 2 or 3 (1 for a CDMA SID: no padding).
    mnc_digits: int
    #: LAC (GSM, UMTS) or NID (CDMA); ``None`` for LTE and NR.
    area: int | None
    #: CI, UTRAN cell id, ECI, NCI or BID.
    cell: int

    @property
    def text(self) -> str:
        """The identifier in its standard textual form."""
        head = f"{self.mcc:03d}-{self.mnc:0{self.mnc_digits}d}"
        return f"{head}-{self.cell}" if self.area is None else f"{head}-{self.area}-{self.cell}"


_CELL_ID_RE: Final = re.compile(r"(\d{3})-(\d{1,5})-(\d{1,12})(?:-(\d{1,12}))?")


def parse_cell_id(text: str, radio: str | None = None) -> CellId:
    """Parse ``mcc-mnc-lac-ci`` or ``mcc-mnc-eci``/``mcc-mnc-nci``, checking bit ranges.

    With ``radio`` the form and the ranges of that radio are enforced; without
    it a four-part identifier is read as a CGI (UMTS ranges) and a three-part
    one as an ECGI or NR CGI (NR ranges). Leading zeros in the LAC and cell
    parts are accepted (and dropped by :attr:`CellId.text`). Raises
    :class:`~geo.errors.InvalidGeoInput` with the reason.
    """
    match = _CELL_ID_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidGeoInput("cell_id", text, "not a CGI (mcc-mnc-lac-ci), ECGI (mcc-mnc-eci) "
                                               "or NR CGI (mcc-mnc-nci)")
    mcc_text, mnc_text, third, fourth = match.groups()
    if radio is None:
        radio = "UMTS" if fourth is not None else "NR"
    radio = _radio_name(radio)
    four = fourth is not None
    if four != (_LIMITS[radio][1] is not None):
        expected = "mcc-mnc-lac-ci" if _LIMITS[radio][1] is not None else "mcc-mnc-cell"
        raise InvalidGeoInput("cell_id", text, f"a {radio} cell id has the form {expected}")
    area, cell = (int(third), int(fourth)) if fourth is not None else (None, int(third))
    mnc_digits = len(mnc_text) if radio != "CDMA" else 1
    reason = _range_problem(radio, int(mcc_text), int(mnc_text), mnc_digits, area, cell)
    if reason:
        raise InvalidGeoInput("cell_id", text, reason)
    return CellId(mcc=int(mcc_text), mnc=int(mnc_text), mnc_digits=mnc_digits, area=area,
                  cell=cell)


def _radio_name(radio: str) -> str:
    name = radio.strip().upper()
    if name not in _LIMITS:
        raise InvalidGeoInput("radio", radio, f"valid: {', '.join(RADIOS)}")
    return name


def _range_problem(radio: str, mcc: int, mnc: int, mnc_digits: int, area: int | None,
                   cell: int) -> str | None:
    mnc_max, area_max, cell_max = _LIMITS[radio]
    if not 0 <= mcc <= 999:
        return "MCC out of range 0..999"
    if radio != "CDMA" and mnc_digits not in (2, 3):
        return "the MNC has 2 or 3 digits"
    if not 0 <= mnc <= mnc_max or (mnc_digits == 2 and mnc > 99):
        return f"MNC/SID out of range 0..{mnc_max}"
    if area_max is not None and (area is None or not 0 <= area <= area_max):
        return f"{'NID' if radio == 'CDMA' else 'LAC'} out of range 0..{area_max}"
    if not 0 <= cell <= cell_max:
        bits = cell_max.bit_length()
        return f"{radio} cell identity out of range 0..{cell_max} ({bits} bits)"
    return None


def _checked_id(radio: str, mcc: int, mnc: int, area: int | None, cell: int,
                mnc_digits: int) -> str:
    reason = _range_problem(radio, mcc, mnc, mnc_digits, area, cell)
    if reason:
        raise InvalidGeoInput("cell_id", (mcc, mnc, area, cell), reason)
    return CellId(mcc=mcc, mnc=mnc, mnc_digits=mnc_digits if radio != "CDMA" else 1, area=area,
                  cell=cell).text


def format_cgi(mcc: int, mnc: int, lac: int, ci: int, *, mnc_digits: int = 2,
               radio: str = "GSM") -> str:
    """A GSM or UMTS cell global identity ``mcc-mnc-lac-ci`` (UMTS: 28-bit ``ci``)."""
    if _radio_name(radio) not in ("GSM", "UMTS"):
        raise InvalidGeoInput("radio", radio, "a CGI is for GSM or UMTS")
    return _checked_id(_radio_name(radio), mcc, mnc, lac, ci, mnc_digits)


def format_ecgi(mcc: int, mnc: int, eci: int, *, mnc_digits: int = 2) -> str:
    """An E-UTRAN cell global identity ``mcc-mnc-eci`` with a 28-bit ECI."""
    return _checked_id("LTE", mcc, mnc, None, eci, mnc_digits)


def format_ncgi(mcc: int, mnc: int, nci: int, *, mnc_digits: int = 2) -> str:
    """An NR cell global identity ``mcc-mnc-nci`` with a 36-bit NCI."""
    return _checked_id("NR", mcc, mnc, None, nci, mnc_digits)


def _arrow_decimal(values: IntArray, min_width: IntArray | int = 1) -> Any:
    """Non-negative integers as an arrow string array, zero-padded to ``min_width``."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    text = pc.cast(pa.array(values, pa.int64()), pa.string())
    widths = np.unique(np.asarray(min_width))
    if widths.size == 1:
        width = int(widths[0])
        return pc.utf8_lpad(text, width, "0") if width > 1 else text
    result = text
    for width in widths.tolist():
        if width > 1:
            mask = pa.array(np.asarray(min_width) == width)
            result = pc.if_else(mask, pc.utf8_lpad(text, width, "0"), result)
    return result


def arrow_to_str(column: Any) -> StrArray:
    """An arrow string array (plain, large or dictionary-encoded) as a numpy unicode array.

    ASCII text (every identifier, most names) is copied row by row out of the
    arrow buffers with one strided gather, three times faster than going
    through Python strings; other text goes through Python strings.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        names = arrow_to_str(column.dictionary)
        taken: StrArray = names[column.indices.to_numpy(zero_copy_only=False)]
        return taken
    n = len(column)
    if n == 0:
        return np.zeros(0, dtype="<U1")
    offset_type = np.int64 if pa.types.is_large_string(column.type) else np.int32
    if column.null_count or not (pa.types.is_string(column.type)
                                 or pa.types.is_large_string(column.type)):
        return _str_array(column.to_numpy(zero_copy_only=False))
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, offset_type, n + 1,
                            column.offset * np.dtype(offset_type).itemsize).astype(np.int64)
    data = (np.frombuffer(data_buffer, np.uint8) if data_buffer is not None
            else np.zeros(0, np.uint8))[offsets[0]:offsets[-1]]
    if data.size and int(data.max()) >= 0x80:
        return _str_array(column.to_numpy(zero_copy_only=False))
    lengths = np.diff(offsets)
    width = max(int(lengths.max()), 1)
    padded = np.concatenate([data, np.zeros(width, np.uint8)])
    windows = np.lib.stride_tricks.as_strided(padded, shape=(max(data.size, 1), width),
                                              strides=(1, 1), writeable=False)
    rows = windows[np.minimum(offsets[:-1] - offsets[0], max(data.size - 1, 0))]
    rows[np.arange(width)[None, :] >= lengths[:, None]] = 0
    text: StrArray = rows.astype(np.uint32).view(f"<U{width}").reshape(n)
    return text


def format_cell_ids(radio: npt.ArrayLike, mcc: npt.ArrayLike, mnc: npt.ArrayLike,
                    area: npt.ArrayLike, cell: npt.ArrayLike,
                    mnc_digits: npt.ArrayLike = 2) -> StrArray:
    """Standard identifiers for whole arrays of cells (vectorized; no range checks).

    ``radio`` picks the form per cell (``area`` is ignored for LTE and NR);
    ``mnc_digits`` is 2 or 3 per cell (ignored for CDMA). Values must already
    be within their ranges (the importers check them). Returns a numpy
    unicode array. Formatting is done by Arrow's compute kernels: a million
    identifiers in about half a second, twice as fast as numpy's string
    functions.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    radio_a = np.asarray(radio, dtype=str)
    n = radio_a.shape[0] if radio_a.ndim else 1
    radio_a = np.broadcast_to(radio_a, (n,))

    def ints(values: npt.ArrayLike) -> IntArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.int64), (n,)))

    mcc_a, mnc_a, area_a, cell_a = ints(mcc), ints(mnc), ints(area), ints(cell)
    digits = np.where(radio_a == "CDMA", 1, ints(mnc_digits))
    head = pc.binary_join_element_wise(_arrow_decimal(mcc_a, 3), _arrow_decimal(mnc_a, digits),
                                       "-")
    cell_text = _arrow_decimal(cell_a)
    short = (radio_a == "LTE") | (radio_a == "NR")
    if short.all():
        joined = pc.binary_join_element_wise(head, cell_text, "-")
    else:
        four = pc.binary_join_element_wise(head, _arrow_decimal(area_a), cell_text, "-")
        joined = (four if not short.any() else
                  pc.if_else(pa.array(short),
                             pc.binary_join_element_wise(head, cell_text, "-"), four))
    return arrow_to_str(joined)


# -- the inventory record ---------------------------------------------------------


def _str_array(values: Any) -> StrArray:
    array = np.asarray(values)
    if array.dtype.kind != "U":
        array = array.astype(str) if array.size else np.zeros(0, dtype="<U1")
    return array


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Inventory:
    """The cells of one or more operators: parallel arrays, one row per cell.

    String arrays are numpy unicode arrays (fixed width, no Python objects: a
    million identifiers take about 76 MB, sort in a fraction of a second and
    are ``take``-n without building Python strings).
    ``polygons`` holds shapely Polygons, or MultiPolygons for coverage split at
    the antimeridian or imported as such, in lon/lat. Compare inventories with
    :meth:`equals` (``==`` is identity).
    """

    #: Cell identifiers in standard form (module docstring), unique.
    cell_ids: StrArray
    #: Operator name per cell.
    operators: StrArray
    #: Radio per cell: one of :data:`RADIOS`.
    radio: StrArray
    #: Coverage per cell (shapely Polygon or MultiPolygon, lon/lat).
    polygons: GeometryArray
    #: Site (antenna position, or OpenCelliD's estimated cell position) per cell:
    #: an (n, 2) float array of lon, lat.
    sites: FloatArray
    #: Where the cells came from (a file name, ``synth:...``).
    source: str = ""
    #: When the inventory was made (timezone-aware).
    created: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "cell_ids", _str_array(self.cell_ids))
        set_(self, "operators", _str_array(self.operators))
        set_(self, "radio", _str_array(self.radio))
        polygons = np.asarray(self.polygons, dtype=object)
        if polygons.ndim != 1:
            polygons = polygons.reshape(-1)
        set_(self, "polygons", polygons)
        sites = np.asarray(self.sites, dtype=np.float64)
        if sites.size == 0:
            sites = sites.reshape(0, 2)
        set_(self, "sites", sites)
        n = self.cell_ids.shape[0]
        lengths = {"cell_ids": n, "operators": len(self.operators), "radio": len(self.radio),
                   "polygons": len(polygons), "sites": len(sites)}
        if len(set(lengths.values())) != 1 or self.cell_ids.ndim != 1:
            raise InvalidGeoInput("Inventory", lengths, "every array needs one row per cell")
        if sites.shape != (n, 2):
            raise InvalidGeoInput("sites", sites.shape, "expected an (n, 2) array of lon, lat")
        if self.created.tzinfo is None:
            raise InvalidGeoInput("created", self.created, "must be timezone-aware")

    def __len__(self) -> int:
        return int(self.cell_ids.shape[0])

    def __repr__(self) -> str:
        return (f"Inventory({len(self)} cells, operators={self.operator_names()!r}, "
                f"source={self.source!r})")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Bounds of all coverage (lon0, lat0, lon1, lat1); NaNs when empty."""
        if not len(self):
            return math.nan, math.nan, math.nan, math.nan
        xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(self.polygons))
        return xmin, ymin, xmax, ymax

    def operator_names(self) -> list[str]:
        """Operator names, sorted."""
        return [str(name) for name in np.unique(self.operators)]

    def take(self, indices: npt.ArrayLike) -> Inventory:
        """The cells at ``indices`` (integer positions or a boolean mask), same metadata."""
        where = np.asarray(indices)
        if where.dtype == bool:
            where = np.flatnonzero(where)
        return Inventory(cell_ids=self.cell_ids[where], operators=self.operators[where],
                         radio=self.radio[where], polygons=self.polygons[where],
                         sites=self.sites[where], source=self.source, created=self.created)

    def operator_indices(self) -> dict[str, IntArray]:
        """Positions of each operator's cells, in inventory order, keyed by sorted name."""
        names, inverse = np.unique(self.operators, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
        return {str(name): order[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}

    def by_operator(self) -> dict[str, Inventory]:
        """One inventory per operator (sorted by name), cells in inventory order."""
        return {name: self.take(where) for name, where in self.operator_indices().items()}

    def duplicate_ids(self) -> StrArray:
        """Identifiers that occur more than once (sorted; empty for a valid inventory)."""
        ids = np.sort(self.cell_ids)
        repeated = ids[1:][ids[1:] == ids[:-1]]
        return np.unique(repeated)

    @classmethod
    def concat(cls, inventories: Iterable[Inventory], *, source: str | None = None) -> Inventory:
        """The cells of several inventories in order; identifiers must stay unique.

        Raises :class:`InventoryError` naming the first duplicates. The
        ``source`` defaults to the sources joined with ``+``.
        """
        parts = list(inventories)
        if not parts:
            raise InvalidGeoInput("inventories", parts, "need at least one inventory")
        if len(parts) == 1 and source is None:
            return parts[0]
        joined = Inventory(
            cell_ids=_concat_str([p.cell_ids for p in parts]),
            operators=_concat_str([p.operators for p in parts]),
            radio=_concat_str([p.radio for p in parts]),
            polygons=np.concatenate([p.polygons for p in parts]),
            sites=np.concatenate([p.sites for p in parts]),
            source=source if source is not None else "+".join(p.source for p in parts),
            created=_now())
        duplicates = joined.duplicate_ids()
        if duplicates.size:
            shown = ", ".join(str(d) for d in duplicates[:5])
            raise InventoryError("", f"{duplicates.size} cell ids occur in more than one "
                                     f"inventory: {shown}{', ...' if duplicates.size > 5 else ''}")
        return joined

    def equals(self, other: Inventory) -> bool:
        """True when every array, coverage vertex and metadata field is identical."""
        if len(self) != len(other) or (self.source, self.created) != (other.source,
                                                                      other.created):
            return False
        same = (np.array_equal(self.cell_ids, other.cell_ids)
                and np.array_equal(self.operators, other.operators)
                and np.array_equal(self.radio, other.radio)
                and np.array_equal(self.sites, other.sites))
        return same and bool(np.all(shapely.equals_exact(self.polygons, other.polygons,
                                                         tolerance=0.0))
                             and np.array_equal(shapely.get_type_id(self.polygons),
                                                shapely.get_type_id(other.polygons)))

    def summary(self) -> InventorySummary:
        """Counts per operator and radio, and the bounds of all coverage."""
        return _summary(self.operators, self.radio, self.bounds, self.source, self.created)

    def save(self, path: PathLike, *, progress: bool | None = None) -> None:
        """Write the inventory as GeoParquet (see the module docstring).

        The file is written next to ``path`` and renamed into place, so a
        reader never sees half a file.
        """
        _write_geoparquet(self, Path(path), progress=progress)

    @classmethod
    def load(cls, path: PathLike, *, progress: bool | None = None) -> Inventory:
        """Read an inventory written by :meth:`save` (or any GeoParquet with its columns).

        Reads one row group at a time, so the peak memory is the inventory
        itself plus one group's worth. Raises :class:`InventoryError` for a
        missing, unreadable or foreign file.
        """
        return _read_geoparquet(Path(path), progress=progress)


def _concat_str(arrays: Sequence[StrArray]) -> StrArray:
    width = max((a.dtype.itemsize // 4 for a in arrays), default=1)
    return np.concatenate([a.astype(f"<U{max(width, 1)}") for a in arrays])


@dataclass(frozen=True, slots=True, kw_only=True)
class InventorySummary:
    """What ``capcast cells info`` prints: counts and bounds of an inventory."""

    #: Number of cells.
    cells: int
    #: Cells per operator, by name.
    operators: dict[str, int]
    #: Cells per radio.
    radios: dict[str, int]
    #: Cells per (operator, radio).
    by_operator_radio: dict[tuple[str, str], int]
    #: Coverage bounds (lon0, lat0, lon1, lat1).
    bounds: tuple[float, float, float, float]
    #: Metadata of the inventory.
    source: str
    created: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape ``capcast cells info --json`` prints).

        ``bounds`` is ``[lon0, lat0, lon1, lat1]``, or null for no cells.
        """
        per: dict[str, dict[str, int]] = {}
        for (operator, radio), count in sorted(self.by_operator_radio.items()):
            per.setdefault(operator, {})[radio] = count
        return {"cells": self.cells, "operators": dict(sorted(self.operators.items())),
                "radios": dict(sorted(self.radios.items())), "by_operator": per,
                "bounds": (None if any(math.isnan(v) for v in self.bounds)
                           else list(self.bounds)),
                "source": self.source,
                "created": self.created.isoformat()}


def _summary(operators: StrArray, radio: StrArray, bounds: tuple[float, float, float, float],
             source: str, created: datetime) -> InventorySummary:
    op_names, op_codes = np.unique(operators, return_inverse=True)
    radio_names, radio_codes = np.unique(radio, return_inverse=True)
    pair_counts = np.bincount(op_codes * len(radio_names) + radio_codes,
                              minlength=len(op_names) * len(radio_names))
    by_pair: dict[tuple[str, str], int] = {}
    for code in np.flatnonzero(pair_counts).tolist():
        op_code, radio_code = divmod(code, len(radio_names))
        by_pair[(str(op_names[op_code]), str(radio_names[radio_code]))] = int(pair_counts[code])
    per_operator: Counter[str] = Counter()
    per_radio: Counter[str] = Counter()
    for (operator, radio_name), count in by_pair.items():
        per_operator[operator] += count
        per_radio[radio_name] += count
    return InventorySummary(cells=len(operators), operators=dict(per_operator),
                            radios=dict(per_radio), by_operator_radio=by_pair, bounds=bounds,
                            source=source, created=created)


# -- progress -----------------------------------------------------------------


def progress_bar(total: int, description: str, *, enabled: bool | None = None,
                 unit: str = "B") -> Any:
    """A tqdm progress bar on standard error.

    ``enabled=None`` shows it only when standard error is a terminal;
    ``False`` never shows it. Units of bytes are scaled (kB, MB).
    """
    from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=description, unit=unit, unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000, file=sys.stderr, disable=not show,
                leave=False, dynamic_ncols=True)


# -- GeoParquet ---------------------------------------------------------------


def _pyarrow() -> tuple[Any, Any]:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    return pa, pq


def _dictionary(pa: Any, values: StrArray) -> Any:
    names, codes = np.unique(values, return_inverse=True)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                          pa.array(names.tolist(), pa.string()))


def _native_polygons(pa: Any, polygons: GeometryArray) -> Any:
    """Polygons as a GeoArrow ``polygon`` array: list<rings: list<vertices: struct<x, y>>>."""
    _, coords, (ring_offsets, geom_offsets) = shapely.to_ragged_array(polygons)
    xy = pa.StructArray.from_arrays([pa.array(coords[:, 0]), pa.array(coords[:, 1])],
                                    fields=[pa.field("x", pa.float64(), nullable=False),
                                            pa.field("y", pa.float64(), nullable=False)])
    rings = pa.ListArray.from_arrays(pa.array(ring_offsets.astype(np.int32)), xy,
                                     type=pa.list_(pa.field("vertices", xy.type, False)))
    return pa.ListArray.from_arrays(pa.array(geom_offsets.astype(np.int32)), rings,
                                    type=pa.list_(pa.field("rings", rings.type, False)))


def _geometry_types(polygons: GeometryArray) -> list[str]:
    ids = set(np.unique(shapely.get_type_id(polygons)).tolist())
    names = {_POLYGON: "Polygon", _MULTIPOLYGON: "MultiPolygon"}
    if not ids <= set(names):
        raise InvalidGeoInput("polygons", sorted(ids), "coverage must be Polygons or "
                                                       "MultiPolygons")
    return sorted(names[i] for i in ids)


def _write_geoparquet(inventory: Inventory, path: Path, *, progress: bool | None) -> None:
    pa, pq = _pyarrow()
    n = len(inventory)
    types = _geometry_types(inventory.polygons) if n else ["Polygon"]
    native = types == ["Polygon"]
    bbox = list(inventory.bounds) if n else []
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "polygon" if native else "WKB",
                                    "geometry_types": types,
                                    **({"bbox": bbox} if bbox else {})}}}
    meta = {"format": "capcast-inventory", "version": FORMAT_VERSION,
            "source": inventory.source, "created": inventory.created.isoformat(), "cells": n}
    xy_type = pa.struct([pa.field("x", pa.float64(), False), pa.field("y", pa.float64(), False)])
    geometry_type = (pa.list_(pa.field("rings", pa.list_(pa.field("vertices", xy_type, False)),
                                       False))
                     if native else pa.binary())
    schema = pa.schema([
        pa.field("cell_id", pa.string(), False),
        pa.field("operator", pa.dictionary(pa.int32(), pa.string()), False),
        pa.field("radio", pa.dictionary(pa.int32(), pa.string()), False),
        pa.field("site_lon", pa.float64(), False),
        pa.field("site_lat", pa.float64(), False),
        pa.field("geometry", geometry_type, False),
    ], metadata={b"geo": json.dumps(geo).encode(), b"capcast": json.dumps(meta).encode()})
    partial = path.with_name(f".{path.name}.partial")
    try:
        # Dictionary pages only for the few-valued columns: trying them on
        # millions of coordinates costs a third of the write time for nothing.
        with pq.ParquetWriter(partial, schema, compression="zstd",
                              use_dictionary=["operator", "radio"]) as writer, \
                progress_bar(n, f"writing {path.name}", enabled=progress, unit="cells") as bar:
            for start in range(0, n, _ROW_GROUP):
                stop = min(start + _ROW_GROUP, n)
                polygons = inventory.polygons[start:stop]
                geometry = (_native_polygons(pa, polygons) if native
                            else pa.array(shapely.to_wkb(polygons), pa.binary()))
                batch = pa.record_batch([
                    pa.array(inventory.cell_ids[start:stop], pa.string()),
                    _dictionary(pa, inventory.operators[start:stop]),
                    _dictionary(pa, inventory.radio[start:stop]),
                    pa.array(inventory.sites[start:stop, 0]),
                    pa.array(inventory.sites[start:stop, 1]),
                    geometry.cast(geometry_type) if native else geometry,
                ], schema=schema)
                writer.write_batch(batch, row_group_size=_ROW_GROUP)
                bar.update(stop - start)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InventoryError(path, f"cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _open_inventory(path: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The ParquetFile, its capcast metadata and its geometry column metadata."""
    _, pq = _pyarrow()
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    if not path.is_file():
        raise InventoryError(path, "no such inventory file")
    try:
        file = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InventoryError(path, f"not a GeoParquet inventory ({exc})") from exc
    metadata = file.schema_arrow.metadata or {}
    try:
        geo = json.loads(metadata[b"geo"])
        column = geo["columns"]["geometry"]
    except (KeyError, ValueError, TypeError) as exc:
        raise InventoryError(path, "not GeoParquet: no 'geo' metadata with a 'geometry' "
                                   "column") from exc
    try:
        capcast = json.loads(metadata.get(b"capcast", b"{}"))
    except ValueError:
        capcast = {}
    if capcast.get("format", "capcast-inventory") != "capcast-inventory":
        raise InventoryError(path, f"not a capcast inventory: {capcast.get('format')!r}")
    if int(capcast.get("version", FORMAT_VERSION)) > FORMAT_VERSION:
        raise InventoryError(path, f"inventory format version {capcast['version']} is newer "
                                   f"than this capcast reads ({FORMAT_VERSION})")
    names = set(file.schema_arrow.names)
    missing = {"cell_id", "operator", "radio", "site_lon", "site_lat", "geometry"} - names
    if missing:
        raise InventoryError(path, f"missing columns: {', '.join(sorted(missing))}")
    return file, capcast, column


def _created(capcast: Mapping[str, Any]) -> datetime:
    text = capcast.get("created")
    try:
        created = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        return datetime.fromtimestamp(0, UTC)
    return created


def _decode_geometry(column: Any, encoding: str) -> GeometryArray:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if encoding.upper() == "WKB":
        return np.asarray(shapely.from_wkb(column.to_numpy(zero_copy_only=False)), dtype=object)
    kinds = {"polygon": shapely.GeometryType.POLYGON,
             "multipolygon": shapely.GeometryType.MULTIPOLYGON}
    if encoding not in kinds:
        raise ValueError(f"geometry encoding {encoding!r} is not one of WKB, polygon, "
                         "multipolygon")
    offsets: list[IntArray] = []
    level = column
    for _ in range(2 if encoding == "polygon" else 3):
        lengths = pc.list_value_length(level).to_numpy(zero_copy_only=False)
        offsets.append(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))
        level = level.flatten()
    x, y = (part.to_numpy(zero_copy_only=False) for part in level.flatten())
    coords = np.column_stack([x, y])
    return np.asarray(shapely.from_ragged_array(kinds[encoding], coords,
                                                tuple(reversed(offsets))), dtype=object)


def _read_geoparquet(path: Path, *, progress: bool | None) -> Inventory:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    file, capcast, column = _open_inventory(path)
    encoding = str(column.get("encoding", "WKB"))
    n = file.metadata.num_rows
    polygons = np.empty(n, dtype=object)
    sites = np.empty((n, 2), dtype=np.float64)
    ids: list[StrArray] = []
    operators: list[StrArray] = []
    radios: list[StrArray] = []
    start = 0
    columns = ["cell_id", "operator", "radio", "site_lon", "site_lat", "geometry"]
    # Arrow decodes the next row group in a thread (it releases the GIL) while
    # this one's polygons are built: the two cores overlap.
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inventory-load")
    try:
        with reader, progress_bar(n, f"loading {path.name}", enabled=progress,
                                  unit="cells") as bar:
            groups = file.num_row_groups
            pending = [reader.submit(file.read_row_group, 0, columns=columns)] if groups else []
            for group in range(groups):
                table = pending.pop().result()
                if group + 1 < groups:
                    pending.append(reader.submit(file.read_row_group, group + 1,
                                                 columns=columns))
                stop = start + table.num_rows
                polygons[start:stop] = _decode_geometry(table.column("geometry"), encoding)
                sites[start:stop, 0] = table.column("site_lon").to_numpy()
                sites[start:stop, 1] = table.column("site_lat").to_numpy()
                ids.append(arrow_to_str(table.column("cell_id")))
                operators.append(arrow_to_str(table.column("operator")))
                radios.append(arrow_to_str(table.column("radio")))
                del table
                bar.update(stop - start)
                start = stop
    except (OSError, ValueError, pa.ArrowException, shapely.errors.GEOSException) as exc:
        raise InventoryError(path, f"unreadable inventory: {exc}") from exc
    if start != n:
        raise InventoryError(path, f"row groups hold {start} rows, the footer says {n}")
    release_arrow_memory()
    empty: list[StrArray] = [np.zeros(0, dtype="<U1")]
    return Inventory(cell_ids=_concat_str(ids or empty), operators=_concat_str(operators or empty),
                     radio=_concat_str(radios or empty), polygons=polygons, sites=sites,
                     source=str(capcast.get("source", path.name)), created=_created(capcast))


def release_arrow_memory() -> None:
    """Hand memory that Arrow's allocator keeps for reuse back to the system.

    After reading a large file the pool holds a few hundred MB it no longer
    needs; a national index has better uses for it.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    pa.default_memory_pool().release_unused()


def read_summary(path: PathLike) -> InventorySummary:
    """The summary of an inventory file without loading its coverage (fast)."""
    path = Path(path)
    file, capcast, column = _open_inventory(path)
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    try:
        table = file.read(columns=["operator", "radio"])
    except (OSError, pa.ArrowException) as exc:
        raise InventoryError(path, f"unreadable inventory: {exc}") from exc
    bbox = column.get("bbox")
    bounds = (tuple(float(v) for v in bbox[:4]) if isinstance(bbox, list) and len(bbox) >= 4
              else (math.nan,) * 4)
    return _summary(arrow_to_str(table.column("operator")), arrow_to_str(table.column("radio")),
                    bounds, str(capcast.get("source", path.name)),  # type: ignore[arg-type]
                    _created(capcast))


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices of ``range(n)`` of at most ``size`` elements (for chunked vectorized work)."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
