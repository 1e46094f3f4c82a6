"""Cell inventories: import from OpenCelliD, sector tables and GeoJSON; synthesize; save.

The public face of the inventory code. :class:`~geo.inventory.Inventory`
(the record and its GeoParquet file) lives in :mod:`geo.inventory`, coverage
synthesis and :func:`~geo.synth.synthesize` in :mod:`geo.synth`; both are
re-exported here. This module holds the importers:

- :func:`read_opencellid`: OpenCelliD / Mozilla Location Service CSV
  (``radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,
  updated,averageSignal``, with or without that header line, plain or gzip).
  Coverage is an omni circle of ``range`` metres around the estimated cell
  position, clamped to [:data:`MIN_RANGE_M`, :data:`MAX_RANGE_M`] = [100 m,
  35 km]: OpenCelliD writes 0 or a few metres for cells seen once, and 35 km
  is the reach of a GSM timing advance of 63. The operator is named from a
  PLMN table (:func:`read_plmn_names`) or written ``mcc-mnc``. The columns
  ``unit``, ``samples``, ``changeable``, ``created``, ``updated`` and
  ``averageSignal`` are not used and not checked.
- :func:`read_sectors`: a sector table
  ``cell_id,operator,radio,lon,lat,azimuth_deg,beamwidth_deg,range_m`` (a
  header, when present, may order the columns freely). Coverage is a wedge
  (beamwidth 359 to 360: a circle); ``range_m`` must be in (0, 100 km].
- :func:`read_geojson`: a FeatureCollection of Polygon/MultiPolygon coverage
  exported by a planning tool, properties ``cell_id`` and ``operator``
  (optional ``radio``; optional ``lon``/``lat`` of the site, else a point on
  the coverage). Invalid polygons are repaired (``make_valid``) and counted.

Every importer checks every row. A bad row (wrong number of fields, a
non-numeric or out-of-range value, an unknown radio, a malformed cell id, a
duplicate cell id) is reported with its line number (for GeoJSON, the line
where the feature starts) and the reason. ``on_error="refuse"`` raises
:class:`ImportRefused` listing the first problems and their count;
``on_error="skip"`` leaves the bad rows out and says how many in the
:class:`ImportResult`. Nothing is half-imported silently.

Speed: the CSV is scanned with numpy (line ends, field counts) and parsed by
Arrow's multi-threaded CSV reader, values are checked with vectorized Arrow
kernels and coverage is synthesized for whole arrays: a million OpenCelliD
rows import in about 7 s of CPU, checks and coverage included, about what
Python's ``csv`` module takes just to split them (``ops/bench/cells.py``). A CSV with quoted
fields takes a slower path through Python's csv module; quoted fields must
not contain line breaks.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

import numpy as np
import numpy.typing as npt
import shapely

from geo.antimeridian import fix_antimeridian, polygonal
from geo.errors import InvalidGeoInput
from geo.inventory import (
    RADIOS,
    FloatArray,
    GeometryArray,
    IntArray,
    Inventory,
    InventoryError,
    InventorySummary,
    PathLike,
    StrArray,
    arrow_to_str,
    format_cell_ids,
    iter_chunks,
    progress_bar,
    read_summary,
    release_arrow_memory,
)
from geo.synth import sector_polygons, synthesize

__all__ = [
    "FORMATS",
    "MAX_RANGE_M",
    "MAX_SECTOR_RANGE_M",
    "MIN_RANGE_M",
    "OPENCELLID_COLUMNS",
    "SECTOR_COLUMNS",
    "ImportRefused",
    "ImportResult",
    "Inventory",
    "InventoryError",
    "InventorySummary",
    "RowProblem",
    "import_cells",
    "read_geojson",
    "read_opencellid",
    "read_plmn_names",
    "read_sectors",
    "read_summary",
    "synthesize",
]

OnError = Literal["refuse", "skip"]
BoolArray = npt.NDArray[np.bool_]

#: The importers by format name (``capcast cells import --format``).
FORMATS: Final = ("opencellid", "sectors", "geojson")
_ON_ERROR: Final = ("refuse", "skip")

OPENCELLID_COLUMNS: Final = ("radio", "mcc", "net", "area", "cell", "unit", "lon", "lat",
                             "range", "samples", "changeable", "created", "updated",
                             "averageSignal")
SECTOR_COLUMNS: Final = ("cell_id", "operator", "radio", "lon", "lat", "azimuth_deg",
                         "beamwidth_deg", "range_m")

#: OpenCelliD coverage radius bounds, metres.
MIN_RANGE_M: Final = 100.0
MAX_RANGE_M: Final = 35_000.0
#: Largest sector range accepted, metres (an LTE cell's reach with extended range).
MAX_SECTOR_RANGE_M: Final = 100_000.0

#: Countries whose networks all use three-digit MNCs (North America, the
#: Caribbean of MCC 338..376, Argentina, Colombia), from the ITU list of
#: mobile network codes as remembered [K]; OpenCelliD writes the MNC as an
#: integer, so its width is otherwise unknown. A PLMN table entry such as
#: ``405-854`` or ``262-001`` overrides this per network.
THREE_DIGIT_MNC_MCCS: Final = frozenset(
    {302, 310, 311, 312, 313, 314, 315, 316, 334, 338, 342, 344, 346, 348, 352, 356, 358, 360,
     365, 366, 376, 722, 732})

#: Largest LAC/TAC/NID by radio (5GS TACs have 24 bits).
_AREA_MAX: Final = {"GSM": 0xFFFF, "UMTS": 0xFFFF, "LTE": 0xFFFF, "NR": 0xFFFFFF,
                    "CDMA": 0xFFFF}
_NET_MAX: Final = {"GSM": 999, "UMTS": 999, "LTE": 999, "NR": 999, "CDMA": 0x7FFF}
_CELL_MAX: Final = {"GSM": 0xFFFF, "UMTS": (1 << 28) - 1, "LTE": (1 << 28) - 1,
                    "NR": (1 << 36) - 1, "CDMA": 0xFFFF}
_CELL_NAME: Final = {"GSM": "CI (16 bits)", "UMTS": "UTRAN cell id (28 bits)",
                     "LTE": "ECI (28 bits)", "NR": "NCI (36 bits)", "CDMA": "BID (16 bits)"}

_FLOAT_RE: Final = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_CELL_ID_RE: Final = (r"^(?P<mcc>[0-9]{3})-(?P<mnc>[0-9]{1,5})-(?P<third>[0-9]{1,12})"
                      r"(?:-(?P<fourth>[0-9]{1,12}))?$")
_BLOCK: Final = 16 << 20
_MAX_PROBLEMS: Final = 20


# -- results and errors --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RowProblem:
    """One bad row of an import: where it is and what is wrong with it."""

    #: 1-based line in the file (GeoJSON: the line where the feature starts).
    line: int
    #: What is wrong, naming the field and the value.
    reason: str
    #: GeoJSON only: the 0-based index of the feature in ``features``.
    feature: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.feature is not None:
            where += f" (feature {self.feature})"
        return f"{where}: {self.reason}"


class ImportRefused(InventoryError):
    """An import found bad rows and was told to refuse the file (or no row was good).

    ``problems`` holds the first problems in file order and ``count`` the
    number of bad rows in all.
    """

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[RowProblem],
                 count: int, *, skipped_all: bool = False) -> None:
        self.problems = tuple(problems)
        self.count = count
        head = (f"all {count} rows are bad" if skipped_all
                else f"{count} bad row{'s' if count != 1 else ''}; nothing was imported "
                     "(skip them with on_error='skip' / --on-error skip)")
        lines = [head, *(f"  {p}" for p in self.problems)]
        if count > len(self.problems):
            lines.append(f"  ... and {count - len(self.problems)} more")
        super().__init__(path, "\n".join(lines))


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What an import made and what it left out."""

    #: The imported cells.
    inventory: Inventory
    #: The format read (one of :data:`FORMATS`).
    format: str
    #: Data rows (or features) in the file, bad ones included, header and blank lines not.
    rows: int
    #: Bad rows left out (``on_error="skip"``); 0 otherwise.
    skipped: int
    #: The first bad rows, in file order.
    problems: tuple[RowProblem, ...] = ()
    #: What else the user should know: clamped ranges, repaired polygons, rewritten ids.
    notes: tuple[str, ...] = ()


# -- options ------------------------------------------------------------------------


def _check_on_error(on_error: str) -> OnError:
    if on_error not in _ON_ERROR:
        raise InvalidGeoInput("on_error", on_error, f"valid: {', '.join(_ON_ERROR)}")
    return on_error  # type: ignore[return-value]


def read_plmn_names(path: PathLike) -> dict[str, str]:
    """A PLMN to operator name table: ``plmn,name`` per line (CSV), or a JSON object.

    PLMNs are written ``mcc-mnc`` with the MNC's own width (``262-01``,
    ``310-410``); ``#`` starts a comment line; a first line ``plmn,name`` is a
    header. A ``.json`` file holds ``{"262-01": "Telekom", ...}``. Raises
    :class:`~geo.inventory.InventoryError` naming the line of a bad entry.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InventoryError(path, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InventoryError(path, "not UTF-8 text") from exc
    entries: list[tuple[int, str, str]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InventoryError(path, f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InventoryError(path, "expected a JSON object of PLMN: name")
        entries = [(0, str(k), str(v)) for k, v in data.items()]
    else:
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if number == 1 and row[0].strip().lower() == "plmn":
                continue
            if len(row) != 2:
                raise InventoryError(path, f"line {number}: expected 'plmn,name', found "
                                           f"{len(row)} fields")
            entries.append((number, row[0], row[1]))
    names: dict[str, str] = {}
    for number, plmn, name in entries:
        where = f"line {number}: " if number else ""
        if re.fullmatch(r"[0-9]{3}-[0-9]{2,3}", plmn.strip()) is None:
            raise InventoryError(path, f"{where}PLMN {plmn!r} is not mcc-mnc (262-01, 310-410)")
        if not name.strip():
            raise InventoryError(path, f"{where}no operator name for {plmn.strip()}")
        names[plmn.strip()] = name.strip()
    return names


# -- reading CSV fast -------------------------------------------------------------


@dataclass(slots=True)
class _Csv:
    """A CSV read as string columns, with the line number of every row."""

    columns: dict[str, Any]  # name -> pyarrow StringArray
    lines: IntArray
    #: Rows with the wrong number of fields (or not UTF-8): line and message.
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    bad_count: int = 0
    rows: int = 0
    #: How many bad lines to keep for the report.
    limit: int = _MAX_PROBLEMS


def _open_bytes(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(the stream of content, the raw file whose position measures progress)."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InventoryError(path, f"cannot read: {exc.strerror or exc}") from exc
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw  # type: ignore[return-value]
    return raw, raw


def _blocks(stream: BinaryIO, on_read: Callable[[], None]) -> Iterator[bytes]:
    """The stream in blocks of whole lines (each block ends with a newline)."""
    carry = b""
    while True:
        data = stream.read(_BLOCK)
        on_read()
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1:]
        yield data[:cut + 1]
    if carry:
        yield carry + b"\n"


def _header(first_line: bytes, expected: Sequence[str], marker: str,
            path: Path) -> tuple[list[str], bool]:
    """Column names from a header line, or the expected ones when the line is data."""
    text = first_line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    fields = [f.strip().strip('"') for f in text.split(",")]
    lowered = {e.lower(): e for e in expected}
    # A header names every expected column (in any order), or at least starts
    # with the first one (then the missing ones are reported).
    if fields[0].lower() != marker.lower() and not set(lowered) <= {f.lower() for f in fields}:
        return list(expected), False
    names = [lowered.get(f.lower(), f) for f in fields]
    missing = [e for e in expected if e not in names]
    if missing:
        raise InventoryError(path, f"line 1: the header lacks {', '.join(missing)} (expected "
                                   f"{','.join(expected)})")
    if len(set(names)) != len(names):
        raise InventoryError(path, "line 1: the header names a column twice")
    return names, True


def _parse_block(block: bytes, first_line: int, names: Sequence[str], wanted: Sequence[str],
                 out: _Csv) -> tuple[dict[str, Any], IntArray]:
    """One block of whole lines: string columns of the good rows and their line numbers."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped, unused-ignore]

    if not block:
        return {}, np.zeros(0, dtype=np.int64)
    data = np.frombuffer(block, np.uint8)
    newlines = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], newlines[:-1] + 1])
    ends = newlines - ((newlines > starts) & (data[np.maximum(newlines - 1, 0)] == 13))
    # Fields per line from the positions of the commas (a per-byte cumulative
    # sum would cost four times as much).
    commas = np.flatnonzero(data == 44)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    # Only lines without a comma can be blank: look at those alone.
    blank = np.zeros(len(starts), dtype=bool)
    for i in np.flatnonzero(fields == 1).tolist():
        blank[i] = not block[int(starts[i]):int(ends[i])].strip()
    line_numbers = first_line + np.arange(len(starts))
    ncols = len(names)
    quoted = b'"' in block
    bad_utf8 = np.zeros(len(starts), dtype=bool)
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            try:
                block[s:e].decode("utf-8")
            except UnicodeDecodeError:
                bad_utf8[i] = True
    if quoted:
        return _parse_block_slow(block, starts, ends, line_numbers, blank | bad_utf8, names,
                                 wanted, out, bad_utf8)
    good = ~blank & ~bad_utf8 & (fields == ncols)
    wrong = ~blank & ~good
    out.rows += int((~blank).sum())
    for i in np.flatnonzero(wrong).tolist():
        out.bad_count += 1
        if len(out.bad_lines) < out.limit:
            reason = ("not UTF-8 text" if bad_utf8[i]
                      else f"expected {ncols} fields, found {int(fields[i])}")
            out.bad_lines.append((int(line_numbers[i]), reason))
    if not good.any():
        return {}, np.zeros(0, dtype=np.int64)
    good_bytes = (block if good.all()
                  else data[np.repeat(good, newlines - starts + 1)].tobytes())
    table = pacsv.read_csv(
        io.BytesIO(good_bytes),
        read_options=pacsv.ReadOptions(column_names=list(names), use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=",", quote_char=False,
                                          ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, include_columns=list(wanted),
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    return ({name: table.column(name).combine_chunks() for name in wanted},
            line_numbers[good].astype(np.int64))


def _parse_block_slow(block: bytes, starts: IntArray, ends: IntArray, line_numbers: IntArray,
                      skip: BoolArray, names: Sequence[str], wanted: Sequence[str], out: _Csv,
                      bad_utf8: BoolArray) -> tuple[dict[str, Any], IntArray]:
    """Like :func:`_parse_block` for blocks with quoted fields, through Python's csv."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    index = [names.index(name) for name in wanted]
    values: list[list[str]] = [[] for _ in wanted]
    lines: list[int] = []
    for i in range(len(starts)):
        if bad_utf8[i]:
            out.rows += 1
            out.bad_count += 1
            if len(out.bad_lines) < out.limit:
                out.bad_lines.append((int(line_numbers[i]), "not UTF-8 text"))
            continue
        if skip[i]:
            continue
        out.rows += 1
        text = block[int(starts[i]):int(ends[i])].decode("utf-8")
        try:
            row = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            row, problem = [], f"malformed quoting: {exc}"
        else:
            problem = ("" if len(row) == len(names)
                       else f"expected {len(names)} fields, found {len(row)}")
        if problem:
            out.bad_count += 1
            if len(out.bad_lines) < out.limit:
                out.bad_lines.append((int(line_numbers[i]), problem))
            continue
        for column, j in zip(values, index, strict=True):
            column.append(row[j])
        lines.append(int(line_numbers[i]))
    return ({name: pa.array(column, pa.string()) for name, column in zip(wanted, values,
                                                                            strict=True)},
            np.asarray(lines, dtype=np.int64))


def _read_csv(path: Path, expected: Sequence[str], wanted: Sequence[str], *,
              progress: bool | None, max_problems: int) -> _Csv:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    stream, raw = _open_bytes(path)
    size = os.fstat(raw.fileno()).st_size
    result = _Csv(columns={}, lines=np.zeros(0, dtype=np.int64), limit=max_problems)
    chunks: dict[str, list[Any]] = {name: [] for name in wanted}
    line_chunks: list[IntArray] = []
    names: list[str] | None = None
    next_line = 1
    try:
        with stream, raw, progress_bar(size, f"reading {path.name}", enabled=progress) as bar:
            position = 0

            def advance() -> None:
                nonlocal position
                now = raw.tell()
                bar.update(now - position)
                position = now

            for block in _blocks(stream, advance):
                if names is None:
                    if next_line == 1 and block.startswith(b"\xef\xbb\xbf"):
                        block = block[3:]
                    stripped = block.lstrip()
                    if not stripped:
                        next_line += block.count(b"\n")
                        continue
                    skipped = block[:len(block) - len(stripped)]
                    # Blank lines before the first line of text.
                    next_line += skipped.count(b"\n")
                    block = block[skipped.rfind(b"\n") + 1:] if b"\n" in skipped else block
                    first = block[:block.index(b"\n")]
                    names, has_header = _header(first, expected, expected[0], path)
                    if has_header:
                        block = block[len(first) + 1:]
                        next_line += 1
                columns, lines = _parse_block(block, next_line, names, wanted, result)
                next_line += block.count(b"\n")
                if lines.size:
                    for name in wanted:
                        chunks[name].append(columns[name])
                    line_chunks.append(lines)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InventoryError(path, f"cannot read: {exc}") from exc
    except pa.ArrowInvalid as exc:
        raise InventoryError(path, f"cannot parse as CSV: {exc}") from exc
    result.columns = {name: (pa.concat_arrays(parts) if parts else pa.array([], pa.string()))
                      for name, parts in chunks.items()}
    result.lines = (np.concatenate(line_chunks) if line_chunks
                    else np.zeros(0, dtype=np.int64))
    return result


# -- vectorized checks --------------------------------------------------------------


class _Checks:
    """Per-row validation: the first failing check of each row is its reason.

    A check is a boolean mask of failing rows plus a function that words the
    reason for one row (called only for the rows that are reported).
    """

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.code = np.full(n, -1, dtype=np.int64)
        self.reasons: list[Callable[[int], str]] = []

    def fail(self, mask: npt.ArrayLike, reason: Callable[[int], str]) -> None:
        """Rows in ``mask`` that are still good become bad for ``reason``."""
        new = np.asarray(mask, dtype=bool) & ~self.bad
        if new.any():
            self.code[new] = len(self.reasons)
            self.bad |= new
        self.reasons.append(reason)

    @property
    def good(self) -> BoolArray:
        return ~self.bad

    def problems(self, lines: IntArray, limit: int) -> list[tuple[int, str]]:
        """The first ``limit`` bad rows (by line) with their reasons."""
        rows = np.flatnonzero(self.bad)
        rows = rows[np.argsort(lines[rows], kind="stable")][:limit]
        return [(int(lines[i]), self.reasons[self.code[i]](int(i))) for i in rows.tolist()]


def _text(column: Any, row: int) -> str:
    return repr(str(column[row].as_py()).strip())


def _says(column: Any, template: str) -> Callable[[int], str]:
    """A reason quoting the row's raw value of ``column`` in ``template``'s ``{}``."""
    return lambda row: template.format(_text(column, row))


def _out_of_range(label: str, values: IntArray, limit: IntArray,
                  radio: StrArray) -> Callable[[int], str]:
    def reason(row: int) -> str:
        bits = f" ({_CELL_NAME[str(radio[row])]})" if label == "cell" else ""
        return f"{label} {values[row]} is out of range 0..{limit[row]} for {radio[row]}{bits}"

    return reason


def _trimmed(column: Any) -> Any:
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    return pc.utf8_trim_whitespace(column)


def _floats(column: Any) -> tuple[FloatArray, BoolArray]:
    """Parse a string column as finite floats: (values, ok); bad rows are NaN and not ok.

    Arrow's cast parses the whole column at once; only when some value does
    not parse is a regular expression used to find which.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    text = _trimmed(column)
    try:
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(text, _FLOAT_RE)
        try:
            values = pc.cast(pc.if_else(ok, text, "nan"), pa.float64()).to_numpy(
                zero_copy_only=False)
        except pa.ArrowInvalid:  # a form the pattern allows and Arrow does not: rare
            values = np.array([float(v) if good else math.nan for v, good
                               in zip(text.to_pylist(), ok.to_pylist(), strict=True)])
    values = values.astype(np.float64)
    ok = np.isfinite(values)
    return values, ok


def _ints(column: Any) -> tuple[IntArray, BoolArray]:
    """Parse a string column of non-negative whole numbers (ASCII digits, at most 18)."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    text = _trimmed(column)
    ok = pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.utf8_length(text), 18))
    ok_numpy = ok.to_numpy(zero_copy_only=False).astype(bool)
    if not ok_numpy.all():
        text = pc.if_else(ok, text, "0")
    return pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64), ok_numpy


def _radios(column: Any, checks: _Checks) -> StrArray:
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    radio = arrow_to_str(pc.utf8_upper(_trimmed(column)))
    checks.fail(~np.isin(radio, RADIOS),
                lambda i: f"unknown radio {_text(column, i)} (valid: {', '.join(RADIOS)})")
    return radio


def _radio_codes(radio: StrArray) -> IntArray:
    """Index of each radio in :data:`RADIOS` (0 for unknown ones, which are bad rows)."""
    code = np.zeros(len(radio), dtype=np.int64)
    for index, name in enumerate(RADIOS):
        code[radio == name] = index
    return code


def _check_position(columns: Mapping[str, Any], checks: _Checks) -> tuple[FloatArray,
                                                                          FloatArray]:
    lon, lon_ok = _floats(columns["lon"])
    lat, lat_ok = _floats(columns["lat"])
    checks.fail(~lon_ok, lambda i: f"lon {_text(columns['lon'], i)} is not a number")
    checks.fail(~lat_ok, lambda i: f"lat {_text(columns['lat'], i)} is not a number")
    checks.fail(np.abs(lon) > 180.0, lambda i: f"lon {lon[i]:g} is out of range -180..180")
    checks.fail(np.abs(lat) > 90.0, lambda i: f"lat {lat[i]:g} is out of range -90..90")
    return lon, lat


def _check_pole(lat: FloatArray, range_m: FloatArray, checks: _Checks) -> None:
    """Coverage must not reach a pole (nothing here models a polar cap).

    A degree of latitude is at least 110.5 km, so a site closer to a pole
    than ``range_m`` / 110.5 km degrees could reach it.
    """
    with np.errstate(invalid="ignore"):
        reach = range_m / 110_500.0 >= 90.0 - np.abs(lat)
    checks.fail(reach, lambda i: f"coverage of {range_m[i]:g} m around lat {lat[i]:g} would "
                                 "reach a pole")


def _check_duplicates(keys: Sequence[IntArray], ids: StrArray, lines: IntArray,
                      checks: _Checks) -> None:
    """Later rows repeating the id of an earlier good row are bad.

    ``keys`` are integer arrays that together determine the identifier's text
    (so sorting them finds equal identifiers five times faster than sorting
    the strings); ``ids`` words the reason.
    """
    candidates = np.flatnonzero(checks.good)
    order = candidates[np.lexsort(tuple(k[candidates] for k in reversed(keys)))]
    repeat = np.zeros(len(order), dtype=bool)
    if len(order) > 1:
        repeat[1:] = np.logical_and.reduce([k[order[1:]] == k[order[:-1]] for k in keys])
    mask = np.zeros(len(ids), dtype=bool)
    first_row = np.zeros(len(ids), dtype=np.int64)
    if repeat.any():
        # Within a run of equal keys candidates are in row order (lexsort is
        # stable), so the run's first element is the first occurrence.
        group_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(order))))
        first_row[order] = order[group_start]
        mask[order[repeat]] = True
    checks.fail(mask, lambda i: f"duplicate cell id {ids[i]} (first on line "
                                f"{int(lines[first_row[i]])})")


def _id_keys(radio: StrArray, mcc: IntArray, mnc: IntArray, digits: IntArray, area: IntArray,
             cell: IntArray) -> list[IntArray]:
    """Integers that determine the text of a cell id (see :func:`_check_duplicates`)."""
    four = ~((radio == "LTE") | (radio == "NR"))
    head = ((mcc * 100000 + mnc) * 4 + np.where(radio == "CDMA", 0, digits)) * 2 + four
    return [head, np.where(four, area, 0), cell]


def _finish(path: Path, fmt: str, on_error: OnError, rows: int, lines: IntArray,
            checks: _Checks, early: Sequence[tuple[int, str]], early_count: int,
            build: Callable[[BoolArray], tuple[Inventory, list[str]]],
            max_problems: int,
            feature_of_line: Mapping[int, int] | None = None) -> ImportResult:
    """Refuse or build the inventory from the good rows, with the problem report."""
    merged = sorted([*early, *checks.problems(lines, max_problems)])[:max_problems]
    problems = [RowProblem(line=line, reason=reason,
                           feature=None if feature_of_line is None else feature_of_line[line])
                for line, reason in merged]
    count = early_count + int(checks.bad.sum())
    good = checks.good
    if count and on_error == "refuse":
        raise ImportRefused(path, problems, count)
    if rows == 0:
        raise InventoryError(path, "no data rows")
    if not good.any():
        raise ImportRefused(path, problems, count, skipped_all=True)
    inventory, notes = build(good)
    release_arrow_memory()
    return ImportResult(inventory=inventory, format=fmt, rows=rows, skipped=count,
                        problems=tuple(problems), notes=tuple(notes))


def _coverage(lon: FloatArray, lat: FloatArray, azimuth: FloatArray, beamwidth: FloatArray,
              range_m: FloatArray, progress: bool | None) -> GeometryArray:
    polygons = np.empty(len(lon), dtype=object)
    with progress_bar(len(lon), "coverage", enabled=progress, unit="cells") as bar:
        for part in iter_chunks(len(lon), 65536):
            polygons[part] = sector_polygons(lon[part], lat[part], azimuth[part],
                                             beamwidth[part], range_m[part])
            bar.update(part.stop - part.start)
    return polygons


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' if count != 1 else ''}"


# -- OpenCelliD ----------------------------------------------------------------------


def read_opencellid(path: PathLike, *, plmn_names: Mapping[str, str] | None = None,
                    operator: str | None = None, on_error: OnError = "refuse",
                    max_problems: int = _MAX_PROBLEMS,
                    progress: bool | None = None) -> ImportResult:
    """Import an OpenCelliD (or MLS) CSV export, plain or gzip-compressed.

    ``plmn_names`` maps ``mcc-mnc`` to operator names (:func:`read_plmn_names`);
    unmapped networks are named ``mcc-mnc``. ``operator`` names every cell's
    operator instead (an operator's own export). ``progress`` shows bars on
    standard error (``None``: only on a terminal). See the module docstring for
    the checks and the coverage model.
    """
    on_error = _check_on_error(on_error)
    path = Path(path)
    wanted = ("radio", "mcc", "net", "area", "cell", "lon", "lat", "range")
    table = _read_csv(path, OPENCELLID_COLUMNS, wanted, progress=progress,
                      max_problems=max_problems)
    cols, lines = table.columns, table.lines
    checks = _Checks(len(lines))
    radio = _radios(cols["radio"], checks)
    mcc, mcc_ok = _ints(cols["mcc"])
    net, net_ok = _ints(cols["net"])
    area, area_ok = _ints(cols["area"])
    cell, cell_ok = _ints(cols["cell"])
    for name, ok in (("mcc", mcc_ok), ("net", net_ok), ("area", area_ok), ("cell", cell_ok)):
        checks.fail(~ok, _says(cols[name], f"{name} {{}} is not a non-negative whole number"))
    checks.fail(mcc > 999, lambda i: f"mcc {mcc[i]} is out of range 0..999")
    limits = {name: np.array([table_[r] for r in RADIOS], dtype=np.int64)
              for name, table_ in (("net", _NET_MAX), ("area", _AREA_MAX), ("cell", _CELL_MAX))}
    radio_index = _radio_codes(radio)
    for name, values, label in (("net", net, "net (MNC/SID)"), ("area", area, "area (LAC/TAC)"),
                                ("cell", cell, "cell")):
        limit = limits[name][radio_index]
        checks.fail(values > limit, _out_of_range(label, values, limit, radio))
    lon, lat = _check_position(cols, checks)
    range_m, range_ok = _floats(cols["range"])
    checks.fail(~range_ok, lambda i: f"range {_text(cols['range'], i)} is not a number")
    checks.fail(range_m < 0, lambda i: f"range {range_m[i]:g} is negative")
    _check_pole(lat, np.clip(range_m, MIN_RANGE_M, MAX_RANGE_M), checks)

    net_width = _trimmed(cols["net"])
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    digits = np.where((pc.utf8_length(net_width).to_numpy(zero_copy_only=False) >= 3)
                      | (net > 99) | np.isin(mcc, list(THREE_DIGIT_MNC_MCCS)), 3, 2)
    names_by_key: dict[int, tuple[str, int]] = {}
    for plmn, name in (plmn_names or {}).items():
        mcc_text, mnc_text = plmn.split("-")
        names_by_key[int(mcc_text) * 100000 + int(mnc_text)] = (name, len(mnc_text))
    key = mcc * 100000 + net
    if names_by_key:
        known = np.array(sorted(names_by_key), dtype=np.int64)
        mapped = np.isin(key, known) & (radio != "CDMA")
        widths = np.array([names_by_key[k][1] for k in known.tolist()])
        digits = np.where(mapped, widths[np.minimum(np.searchsorted(known, key),
                                                    len(known) - 1)], digits)
    ids = format_cell_ids(radio, np.where(mcc_ok, mcc, 0), net, area, cell, digits)
    _check_duplicates(_id_keys(radio, mcc, net, digits, area, cell), ids, lines, checks)

    def build(good: BoolArray) -> tuple[Inventory, list[str]]:
        where = np.flatnonzero(good)
        notes: list[str] = []
        radius = range_m[where]
        low, high = int((radius < MIN_RANGE_M).sum()), int((radius > MAX_RANGE_M).sum())
        if low:
            notes.append(f"{_plural(low, 'range')} below {MIN_RANGE_M:g} m raised to "
                         f"{MIN_RANGE_M:g} m")
        if high:
            notes.append(f"{_plural(high, 'range')} above {MAX_RANGE_M / 1000:g} km lowered "
                         f"to {MAX_RANGE_M / 1000:g} km")
        radius = np.clip(radius, MIN_RANGE_M, MAX_RANGE_M)
        polygons = _coverage(lon[where], lat[where], np.zeros(len(where)),
                             np.full(len(where), 360.0), radius, progress)
        operators = _operator_names(radio[where], mcc[where], net[where], digits[where],
                                    names_by_key, operator)
        inventory = Inventory(cell_ids=ids[where], operators=operators, radio=radio[where],
                              polygons=polygons,
                              sites=np.column_stack([lon[where], lat[where]]),
                              source=f"opencellid:{path.name}")
        return inventory, notes

    return _finish(path, "opencellid", on_error, table.rows, lines, checks, table.bad_lines,
                   table.bad_count, build, max_problems)


def _operator_names(radio: StrArray, mcc: IntArray, net: IntArray, digits: IntArray,
                    names_by_key: Mapping[int, tuple[str, int]],
                    operator: str | None) -> StrArray:
    if operator is not None:
        return np.full(len(mcc), operator)
    key = mcc * 100000 + net
    keys, inverse = np.unique(key, return_inverse=True)
    first = np.zeros(len(keys), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(key))[::-1]
    labels = []
    for k, row in zip(keys.tolist(), first.tolist(), strict=True):
        found = names_by_key.get(k)
        if found is not None and radio[row] != "CDMA":
            labels.append(found[0])
        else:
            width = 1 if radio[row] == "CDMA" else int(digits[row])
            labels.append(f"{k // 100000:03d}-{k % 100000:0{width}d}")
    names: StrArray = np.asarray(labels, dtype=str)[inverse.reshape(-1)]
    return names


# -- cell ids in sector tables and GeoJSON ----------------------------------------------


def _cell_ids(raw: Any, radio: StrArray, checks: _Checks,
              infer_radio: BoolArray | None = None) -> tuple[StrArray, StrArray, int,
                                                             list[IntArray]]:
    """Check and normalize textual cell ids against their radios.

    Returns (ids in standard form, radios (inferred where asked), count of ids
    rewritten, keys for :func:`_check_duplicates`). Where ``infer_radio`` is
    set, the radio is guessed from the id: four parts GSM (CI up to 16 bits)
    else UMTS; three parts LTE (up to 28 bits) else NR.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    text = _trimmed(raw)
    ok = pc.match_substring_regex(text, _CELL_ID_RE).to_numpy(zero_copy_only=False)
    checks.fail(~ok, lambda i: f"cell_id {_text(raw, i)} is not a CGI (mcc-mnc-lac-ci), "
                               "ECGI (mcc-mnc-eci) or NR CGI (mcc-mnc-nci)")
    safe = pc.if_else(pa.array(ok), text, "000-00-0")
    parts = pc.extract_regex(safe, _CELL_ID_RE)
    mcc = pc.cast(parts.field("mcc"), pa.int64()).to_numpy(zero_copy_only=False)
    mnc_text = parts.field("mnc")
    mnc = pc.cast(mnc_text, pa.int64()).to_numpy(zero_copy_only=False)
    mnc_len = pc.utf8_length(mnc_text).to_numpy(zero_copy_only=False)
    third = pc.cast(parts.field("third"), pa.int64()).to_numpy(zero_copy_only=False)
    fourth_text = parts.field("fourth")
    four = (pc.utf8_length(fourth_text).to_numpy(zero_copy_only=False) > 0)
    fourth = pc.cast(pc.if_else(pa.array(four), fourth_text, "0"),
                     pa.int64()).to_numpy(zero_copy_only=False)
    cell = np.where(four, fourth, third)
    area = np.where(four, third, 0)
    if infer_radio is not None and infer_radio.any():
        guess = np.where(four, np.where(cell <= 0xFFFF, "GSM", "UMTS"),
                         np.where(cell < (1 << 28), "LTE", "NR"))
        radio = np.where(infer_radio, guess, radio)
    known = np.isin(radio, RADIOS)
    code = _radio_codes(radio)
    wants_four = np.isin(radio, ("GSM", "UMTS", "CDMA"))
    checks.fail(known & (wants_four != four),
                lambda i: f"cell_id {_text(raw, i)} does not fit radio {radio[i]} (expected "
                          + ("mcc-mnc-lac-ci)" if wants_four[i] else "mcc-mnc-cell)"))
    cdma = radio == "CDMA"
    checks.fail(known & ~cdma & ((mnc_len < 2) | (mnc_len > 3)),
                lambda i: f"cell_id {_text(raw, i)}: the MNC has 2 or 3 digits")
    net_max = np.array([_NET_MAX[r] for r in RADIOS])[code]
    area_max = np.array([_AREA_MAX[r] for r in RADIOS])[code]
    cell_max = np.array([_CELL_MAX[r] for r in RADIOS])[code]
    checks.fail(known & (mnc > np.where(mnc_len == 2, 99, net_max)),
                lambda i: f"cell_id {_text(raw, i)}: MNC/SID out of range")
    checks.fail(known & wants_four & (area > area_max),
                lambda i: f"cell_id {_text(raw, i)}: LAC {area[i]} is out of range "
                          f"0..{area_max[i]}")
    checks.fail(known & (cell > cell_max),
                lambda i: f"cell_id {_text(raw, i)}: {_CELL_NAME[str(radio[i])]} value "
                          f"{cell[i]} is out of range 0..{cell_max[i]}")
    digits = np.where(cdma, 1, mnc_len)
    ids = format_cell_ids(np.where(known, radio, "LTE"), mcc, mnc, area, cell, digits)
    original = arrow_to_str(text)
    rewritten = int((checks.good & (ids != original)).sum())
    return ids, radio, rewritten, _id_keys(radio, mcc, mnc, digits, area, cell)


# -- sector tables ---------------------------------------------------------------------


def read_sectors(path: PathLike, *, operator: str | None = None, on_error: OnError = "refuse",
                 max_problems: int = _MAX_PROBLEMS,
                 progress: bool | None = None) -> ImportResult:
    """Import a sector table (``cell_id,operator,radio,lon,lat,azimuth_deg,beamwidth_deg,range_m``).

    Azimuths are degrees clockwise from true north in [0, 360]; beamwidths in
    (0, 360] (359 and more is an omni cell, drawn as a circle); ranges in
    metres, (0, 100 km]. An empty ``operator`` field takes ``operator`` (else
    the row is bad). Cell ids must be in a standard form matching the radio;
    leading zeros are dropped (and counted in the notes).
    """
    on_error = _check_on_error(on_error)
    path = Path(path)
    table = _read_csv(path, SECTOR_COLUMNS, SECTOR_COLUMNS, progress=progress,
                      max_problems=max_problems)
    cols, lines = table.columns, table.lines
    checks = _Checks(len(lines))
    operators = arrow_to_str(_trimmed(cols["operator"]))
    if operator is not None:
        operators = np.where(operators == "", operator, operators)
    checks.fail(operators == "", lambda i: "no operator (name one with --operator / operator=)")
    radio = _radios(cols["radio"], checks)
    ids, radio, rewritten, keys = _cell_ids(cols["cell_id"], radio, checks)
    lon, lat = _check_position(cols, checks)
    azimuth, az_ok = _floats(cols["azimuth_deg"])
    beamwidth, bw_ok = _floats(cols["beamwidth_deg"])
    range_m, range_ok = _floats(cols["range_m"])
    for name, ok in (("azimuth_deg", az_ok), ("beamwidth_deg", bw_ok), ("range_m", range_ok)):
        checks.fail(~ok, _says(cols[name], f"{name} {{}} is not a number"))
    checks.fail((azimuth < 0) | (azimuth > 360),
                lambda i: f"azimuth_deg {azimuth[i]:g} is out of range 0..360")
    checks.fail((beamwidth <= 0) | (beamwidth > 360),
                lambda i: f"beamwidth_deg {beamwidth[i]:g} is out of range (0, 360]")
    checks.fail(range_m < 0, lambda i: f"range_m {range_m[i]:g} is negative")
    checks.fail(range_m == 0, lambda i: "range_m is 0")
    checks.fail(range_m > MAX_SECTOR_RANGE_M,
                lambda i: f"range_m {range_m[i]:g} is beyond {MAX_SECTOR_RANGE_M / 1000:g} km")
    _check_pole(lat, range_m, checks)
    _check_duplicates(keys, ids, lines, checks)

    def build(good: BoolArray) -> tuple[Inventory, list[str]]:
        where = np.flatnonzero(good)
        polygons = _coverage(lon[where], lat[where], azimuth[where], beamwidth[where],
                             range_m[where], progress)
        notes = ([f"{_plural(rewritten, 'cell id')} rewritten to the standard form (leading "
                  "zeros dropped)"] if rewritten else [])
        inventory = Inventory(cell_ids=ids[where], operators=operators[where],
                              radio=radio[where], polygons=polygons,
                              sites=np.column_stack([lon[where], lat[where]]),
                              source=f"sectors:{path.name}")
        return inventory, notes

    return _finish(path, "sectors", on_error, table.rows, lines, checks, table.bad_lines,
                   table.bad_count, build, max_problems)


# -- GeoJSON -------------------------------------------------------------------------

_WS: Final = re.compile(r"[ \t\n\r]*")


def _features(text: str, path: Path) -> Iterator[tuple[int, int, Any]]:
    """(start, end, feature) for each element of a FeatureCollection's ``features``.

    A small scanner over the top-level object that lets the C JSON decoder
    parse each value, so that every feature's position (its line) is known.
    """
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        match = _WS.match(text, pos)
        return match.end() if match else pos

    def expect(pos: int, char: str) -> int:
        if text[pos:pos + 1] != char:
            line = text.count("\n", 0, pos) + 1
            raise InventoryError(path, f"line {line}: expected {char!r} in the GeoJSON "
                                       "FeatureCollection")
        return pos + 1

    try:
        pos = expect(skip(0), "{")
        seen_type = seen_features = False
        while True:
            pos = skip(pos)
            if text[pos:pos + 1] == "}":
                break
            key, pos = decoder.raw_decode(text, pos)
            pos = skip(expect(skip(pos), ":"))
            if key == "features":
                seen_features = True
                pos = skip(expect(pos, "["))
                while text[pos:pos + 1] != "]":
                    start = pos
                    feature, pos = decoder.raw_decode(text, pos)
                    yield start, pos, feature
                    pos = skip(pos)
                    if text[pos:pos + 1] == ",":
                        pos = skip(pos + 1)
                    elif text[pos:pos + 1] != "]":
                        expect(pos, ",")
                pos += 1
            else:
                value, pos = decoder.raw_decode(text, pos)
                if key == "type":
                    seen_type = True
                    if value != "FeatureCollection":
                        raise InventoryError(path, f"a GeoJSON {value!r}, not a "
                                                   "FeatureCollection")
            pos = skip(pos)
            if text[pos:pos + 1] == ",":
                pos += 1
            else:
                expect(pos, "}")
                break
    except json.JSONDecodeError as exc:
        raise InventoryError(path, f"line {exc.lineno}, column {exc.colno}: not valid JSON: "
                                   f"{exc.msg}") from exc
    if not (seen_type and seen_features):
        raise InventoryError(path, "not a GeoJSON FeatureCollection (no 'type' or no "
                                   "'features')")


def read_geojson(path: PathLike, *, operator: str | None = None, on_error: OnError = "refuse",
                 max_problems: int = _MAX_PROBLEMS,
                 progress: bool | None = None) -> ImportResult:
    """Import coverage polygons from a GeoJSON FeatureCollection (planning-tool export).

    Each feature: a Polygon or MultiPolygon geometry in lon/lat, properties
    ``cell_id`` (standard form), ``operator`` (or the ``operator`` argument),
    and optionally ``radio`` (else guessed from the id and noted) and ``lon``,
    ``lat`` of the site (else a point on the coverage). Longitudes may run to
    ±360 for shapes drawn across the antimeridian in a continuous frame; such
    shapes, and ones whose vertices jump across ±180, are cut there. Invalid
    polygons are repaired with ``make_valid`` and counted in the notes.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    on_error = _check_on_error(on_error)
    path = Path(path)
    stream, raw = _open_bytes(path)
    try:
        with stream, raw:
            data = stream.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InventoryError(path, f"cannot read: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(path, f"not UTF-8 text (byte {exc.start})") from exc
    del data
    early: list[tuple[int, str]] = []
    early_count = 0
    ids_raw: list[str] = []
    operators: list[str] = []
    radios: list[str] = []
    infer: list[bool] = []
    site: list[tuple[float, float]] = []
    slices: list[str] = []
    lines: list[int] = []
    feature_of_line: dict[int, int] = {}
    line, last = 1, 0
    count = 0
    with progress_bar(len(text), f"reading {path.name}", enabled=progress,
                      unit="chars") as bar:
        for index, (start, end, feature) in enumerate(_features(text, path)):
            count += 1
            line += text.count("\n", last, start)
            bar.update(start - last)
            last = start
            feature_of_line.setdefault(line, index)
            problem = _feature_problem(feature, operator)
            if problem:
                early_count += 1
                if len(early) < max_problems:
                    early.append((line, problem))
                continue
            props = feature["properties"]
            ids_raw.append(str(props["cell_id"]))
            operators.append(str(props.get("operator") or operator).strip())
            radio = props.get("radio")
            infer.append(radio is None)
            radios.append("" if radio is None else str(radio).strip().upper())
            lon, lat = props.get("lon"), props.get("lat")
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                          for v in (lon, lat))
            site.append((float(lon), float(lat)) if numeric else (np.nan, np.nan))
            slices.append(text[start:end])
            lines.append(line)
    n = len(ids_raw)
    line_array = np.asarray(lines, dtype=np.int64)
    checks = _Checks(n)
    radio_array = np.asarray(radios, dtype=str) if n else np.zeros(0, dtype="<U4")
    infer_array = np.asarray(infer, dtype=bool)
    checks.fail(~infer_array & ~np.isin(radio_array, RADIOS),
                lambda i: f"unknown radio {radios[i]!r} (valid: {', '.join(RADIOS)})")
    ids, radio_array, rewritten, keys = _cell_ids(pa.array(ids_raw, pa.string()),
                                                  radio_array, checks, infer_array)
    geometries = np.asarray(shapely.from_geojson(np.asarray(slices, dtype=object),
                                                 on_invalid="ignore"), dtype=object)
    if n:
        checks.fail(shapely.is_missing(geometries), lambda i: "the geometry cannot be read")
        checks.fail(shapely.is_empty(geometries) & ~shapely.is_missing(geometries),
                    lambda i: "the geometry is empty")
    bounds = shapely.bounds(geometries) if n else np.zeros((0, 4))
    with np.errstate(invalid="ignore"):
        checks.fail((bounds[:, 1] < -90) | (bounds[:, 3] > 90),
                    lambda i: f"latitudes {bounds[i, 1]:g}..{bounds[i, 3]:g} are out of range "
                              "-90..90")
        checks.fail((bounds[:, 0] < -360) | (bounds[:, 2] > 360),
                    lambda i: f"longitudes {bounds[i, 0]:g}..{bounds[i, 2]:g} are out of range "
                              "-360..360")
    _check_duplicates(keys, ids, line_array, checks)

    def build(good: BoolArray) -> tuple[Inventory, list[str]]:
        where = np.flatnonzero(good)
        polygons = geometries[where]
        notes: list[str] = []
        invalid = np.flatnonzero(~shapely.is_valid(polygons))
        if invalid.size:
            repaired = shapely.make_valid(polygons[invalid], method="structure",
                                          keep_collapsed=False)
            polygons[invalid] = [polygonal(g) for g in repaired]
            notes.append(f"{_plural(int(invalid.size), 'invalid polygon')} repaired with "
                         "make_valid")
        polygons = np.asarray(fix_antimeridian(polygons), dtype=object)
        sites = np.asarray(site, dtype=np.float64).reshape(-1, 2)[where]
        missing = np.isnan(sites).any(axis=1)
        if missing.any():
            sites[missing] = shapely.get_coordinates(shapely.point_on_surface(polygons[missing]))
            notes.append(f"{_plural(int(missing.sum()), 'site')} placed on the coverage (no "
                         "lon/lat properties)")
        guessed = int(infer_array[where].sum())
        if guessed:
            notes.append(f"{_plural(guessed, 'radio')} guessed from the cell id (no radio "
                         "property)")
        if rewritten:
            notes.append(f"{_plural(rewritten, 'cell id')} rewritten to the standard form "
                         "(leading zeros dropped)")
        inventory = Inventory(cell_ids=ids[where],
                              operators=np.asarray(operators, dtype=str)[where],
                              radio=radio_array[where], polygons=polygons, sites=sites,
                              source=f"geojson:{path.name}")
        return inventory, notes

    return _finish(path, "geojson", on_error, count, line_array, checks, early, early_count,
                   build, max_problems, feature_of_line)


def _feature_problem(feature: Any, operator: str | None) -> str | None:
    """Why a decoded feature cannot be a cell (structure only), or None."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return "not a GeoJSON Feature"
    props = feature.get("properties")
    if not isinstance(props, dict):
        return "no properties"
    cell_id = props.get("cell_id")
    if not isinstance(cell_id, str) or not cell_id.strip():
        return ("no cell_id property" if cell_id is None
                else f"cell_id {cell_id!r} is not a string like 262-01-4711-12345")
    name = props.get("operator")
    if name is not None and not isinstance(name, str):
        return f"operator {name!r} is not a string"
    if not (name or "").strip() and not operator:
        return "no operator property (name one with --operator / operator=)"
    radio = props.get("radio")
    if radio is not None and not isinstance(radio, str):
        return f"radio {radio!r} is not a string"
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        return "no geometry"
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        return f"the geometry is a {kind}; coverage must be a Polygon or MultiPolygon"
    return None


# -- one entry point --------------------------------------------------------------------


def import_cells(path: PathLike, format: str, *, operator: str | None = None,
                 plmn_names: Mapping[str, str] | None = None, on_error: OnError = "refuse",
                 max_problems: int = _MAX_PROBLEMS,
                 progress: bool | None = None) -> ImportResult:
    """Import a file in one of :data:`FORMATS` (``plmn_names`` is for OpenCelliD only)."""
    if format not in FORMATS:
        raise InvalidGeoInput("format", format, f"valid: {', '.join(FORMATS)}")
    if format == "opencellid":
        return read_opencellid(path, plmn_names=plmn_names, operator=operator,
                               on_error=on_error, max_problems=max_problems, progress=progress)
    if plmn_names:
        raise InvalidGeoInput("plmn_names", "...", "a PLMN table is for the opencellid format")
    reader = read_sectors if format == "sectors" else read_geojson
    return reader(path, operator=operator, on_error=on_error, max_problems=max_problems,
                  progress=progress)
