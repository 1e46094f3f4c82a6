"""CAP geocodes to geometry: a registry of boundary files keyed by ``valueName``.

A CAP ``<geocode>`` names an area by code (``SAME 006037``, ``NUTS3 FR714``,
``WARNCELLID 803159016``). :class:`GeocodeRegistry` maps such codes to
shapely geometries (lon/lat, EPSG:4326) read from GeoJSON and TopoJSON files:

- each :meth:`~GeocodeRegistry.add_file` says which ``valueName`` a file
  answers, which feature member holds the key (the feature ``id`` or a
  property), and optionally how a CAP value becomes a key (``transform``);
  several files may answer one value name, tried in the order added;
- value names are matched case-insensitively (``emma_id`` = ``EMMA_ID``),
  and so are keys;
- files are read lazily, on the first lookup that needs them, once per file
  even when several value names share it; the registry is safe to share
  between threads;
- a lookup never raises for an unknown value: :meth:`~GeocodeRegistry.lookup`
  says what happened (:class:`GeocodeStatus`) and why, so that
  ``geo.areas`` can report it. A broken *file* raises :class:`~geo.errors.GeodataError`.

:func:`default_registry` registers the files of a folder laid out like
``tests/geodata`` (see :data:`DEFAULT_LAYOUT`): US counties for ``SAME``,
``FIPS6`` and ``UGC`` county codes, US states for state-wide SAME codes,
NUTS 2021 regions, world countries for ISO 3166-1, DWD warn cells.
TopoJSON is decoded here (quantized, delta-encoded arcs; a few lines of
numpy), with no extra dependency.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import iso3166
import numpy as np
import numpy.typing as npt
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo.antimeridian import split_polygon
from geo.errors import GeodataError, InvalidGeoInput

__all__ = [
    "DEFAULT_LAYOUT",
    "GeocodeKey",
    "GeocodeRegistry",
    "GeocodeResult",
    "GeocodeStatus",
    "KeyTransform",
    "LayoutEntry",
    "default_registry",
    "fips6_county_key",
    "iso3166_numeric_key",
    "normalize_value_name",
    "nuts_key",
    "same_county_key",
    "same_state_key",
    "ugc_county_key",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class GeocodeStatus(Enum):
    """What a geocode lookup found."""

    #: Resolved to the area the code names.
    FOUND = "found"
    #: Resolved, but to a larger area than the code names (see the note).
    APPROXIMATED = "approximated"
    #: The value name has files, but none has a feature for this value.
    NOT_FOUND = "not-found"
    #: The value name has files, but this value cannot be turned into their keys.
    NOT_DERIVABLE = "not-derivable"
    #: No file is registered for this value name.
    UNKNOWN_NAME = "unknown-name"


@dataclass(frozen=True, slots=True, kw_only=True)
class GeocodeKey:
    """What a key transform makes of a CAP value.

    ``key`` is the feature key to look up (None: this value cannot be mapped
    to the file, ``note`` says why); ``approximate`` marks a key whose
    feature is larger than the area the code names (a SAME county
    subdivision read as the whole county).
    """

    key: str | None
    note: str | None = None
    approximate: bool = False


#: A function from a CAP geocode value to a file key: a plain string, a
#: :class:`GeocodeKey` with a note, or None when the value cannot be mapped.
KeyTransform = Callable[[str], "str | GeocodeKey | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GeocodeResult:
    """The outcome of one geocode lookup.

    ``geometry`` is set when ``status`` is FOUND or APPROXIMATED; ``key`` and
    ``source`` (a file name) say where it came from and ``properties`` are
    the feature's; ``note`` explains an approximation or why nothing was found.
    """

    value_name: str
    value: str
    status: GeocodeStatus
    geometry: BaseGeometry | None = None
    key: str | None = None
    source: str | None = None
    note: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The feature's name, from the usual name properties, if it has one."""
        for prop in _NAME_PROPERTIES:
            value = self.properties.get(prop)
            if value:
                return str(value)
        return None

    @property
    def found(self) -> bool:
        """True when the lookup gave a geometry."""
        return self.geometry is not None


_NAME_PROPERTIES = ("NAME", "name", "NAME_LATN", "NUTS_NAME", "NAME_EN", "KURZNAME")


def normalize_value_name(value_name: str) -> str:
    """The form value names are compared in: case-folded, whitespace collapsed."""
    return " ".join(value_name.split()).casefold()


def _normalize_key(key: object) -> str:
    return str(key).strip().casefold()


# -- key transforms ------------------------------------------------------------

_SAME = re.compile(r"\d{6}")
_FIPS5 = re.compile(r"\d{5}")


def same_county_key(value: str) -> str | GeocodeKey | None:
    """SAME ``PSSCCC`` to the 5-digit county FIPS ``SSCCC``.

    P is a county subdivision (0 = the whole county); a subdivision is read
    as its whole county, marked approximate. County 000 names a whole state
    and is left to a state file (:func:`same_state_key`). A bare 5-digit
    FIPS is accepted as it is.
    """
    text = value.strip()
    if _FIPS5.fullmatch(text):
        return text
    if not _SAME.fullmatch(text):
        return GeocodeKey(key=None, note=f"{text!r} is not a 6-digit SAME code (PSSCCC)")
    part, fips = text[0], text[1:]
    if fips == "00000":
        return GeocodeKey(key=None, note=f"SAME {text} names the whole United States")
    if fips.endswith("000"):
        return GeocodeKey(key=None, note=f"SAME {text} names all of state {fips[:2]}, "
                                         "not a county")
    if part != "0":
        return GeocodeKey(key=fips, approximate=True,
                          note=f"SAME {text} is subdivision {part} of county {fips}; the whole "
                               "county is used (no subdivision boundaries are registered)")
    return fips


def same_state_key(value: str) -> str | GeocodeKey | None:
    """SAME ``PSS000`` (a whole state or territory) to the 2-digit state FIPS ``SS``."""
    text = value.strip()
    if _SAME.fullmatch(text) and text.endswith("000"):
        return text[1:3]
    return GeocodeKey(key=None, note=f"{text!r} is not a state-wide SAME code (PSS000)")


def fips6_county_key(value: str) -> str | GeocodeKey | None:
    """NWS ``FIPS6`` (written like SAME, ``0SSCCC``) to the 5-digit county FIPS."""
    return same_county_key(value)


#: USPS state and territory abbreviations to state FIPS codes, for UGC county codes.
_STATE_FIPS = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09",
    "DE": "10", "DC": "11", "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17",
    "IN": "18", "IA": "19", "KS": "20", "KY": "21", "LA": "22", "ME": "23", "MD": "24",
    "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30", "NE": "31",
    "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38",
    "OH": "39", "OK": "40", "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46",
    "TN": "47", "TX": "48", "UT": "49", "VT": "50", "VA": "51", "WA": "53", "WV": "54",
    "WI": "55", "WY": "56", "AS": "60", "GU": "66", "MP": "69", "PR": "72", "VI": "78",
}
_UGC = re.compile(r"([A-Z]{2})([CZ])(\d{3})")


def ugc_county_key(value: str) -> str | GeocodeKey | None:
    """UGC county code ``SSCnnn`` (``NVC013``) to the 5-digit county FIPS (``32013``).

    Zone codes (``NVZ013``, marine ``AMZ250``) name NWS forecast zones, which
    are not counties; they map to nothing unless a zone file is registered.
    """
    text = value.strip().upper()
    match = _UGC.fullmatch(text)
    if match is None:
        return GeocodeKey(key=None, note=f"{value.strip()!r} is not a UGC code like NVC013")
    state, kind, number = match.groups()
    if kind == "Z":
        return GeocodeKey(key=None, note=f"UGC {text} is a forecast zone, not a county")
    fips = _STATE_FIPS.get(state)
    if fips is None:
        return GeocodeKey(key=None, note=f"UGC {text}: {state} is not a US state or territory")
    return fips + number


_SUBDIVISION = re.compile(r"[A-Za-z]{2}-[A-Za-z0-9]{1,3}")


def iso3166_numeric_key(value: str) -> str | GeocodeKey | None:
    """An ISO 3166-1 country (numeric ``242``, alpha-2 ``FJ``, alpha-3 ``FJI`` or name) to numeric.

    Names and alpha codes are read with the ``iso3166`` package. ISO 3166-2
    subdivision codes (``AU-NSW``) are recognised and refused with a note.
    """
    text = value.strip()
    if text.isdigit():
        return text.zfill(3)
    if _SUBDIVISION.fullmatch(text):
        return GeocodeKey(key=None, note=f"{text} is an ISO 3166-2 subdivision, not a country")
    try:
        return iso3166.countries.get(text).numeric
    except KeyError:
        return GeocodeKey(key=None, note=f"{text!r} is not an ISO 3166-1 country code or name")


def _nuts_level(code: str) -> int | None:
    return len(code) - 2 if 2 <= len(code) <= 5 else None


def nuts_key(value: str, *, level: int | None = None) -> str | GeocodeKey | None:
    """A NUTS code (``DE300``); with ``level``, a code of another level gets a note.

    MeteoAlarm-style producers label codes loosely (``NUTS2`` with ``DE8``,
    which is level 1): the code itself decides the region; the note says so.
    """
    text = value.strip().upper()
    actual = _nuts_level(text)
    if actual is None or not text[:2].isalpha():
        return GeocodeKey(key=None, note=f"{value.strip()!r} is not a NUTS code like DE300")
    if level is not None and actual != level:
        return GeocodeKey(key=text, note=f"{text} is a NUTS level {actual} code, labelled "
                                         f"NUTS{level}; the level {actual} region is used")
    return text


# -- reading GeoJSON and TopoJSON ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Feature:
    layer: str | None
    id: object
    properties: Mapping[str, Any]
    geometry: BaseGeometry


def _topology_arcs(topology: Mapping[str, Any]) -> list[FloatArray]:
    """Decode all arcs of a TopoJSON topology at once (delta-decoded, de-quantized)."""
    arcs = topology.get("arcs", [])
    lengths = np.fromiter((len(arc) for arc in arcs), dtype=np.int64, count=len(arcs))
    if not len(arcs):
        return []
    flat = np.array([point[:2] for arc in arcs for point in arc], dtype=np.float64)
    transform = topology.get("transform")
    if transform is not None:
        # Quantized arcs hold the first position and then deltas: a running
        # sum per arc. One cumsum over all arcs minus each arc's starting sum.
        ends = np.cumsum(lengths)
        starts = ends - lengths
        total = np.cumsum(flat, axis=0)
        before = np.zeros((len(arcs), 2))
        has_before = starts > 0
        before[has_before] = total[starts[has_before] - 1]
        flat = total - np.repeat(before, lengths, axis=0)
        flat = flat * np.asarray(transform["scale"], dtype=np.float64) + np.asarray(
            transform["translate"], dtype=np.float64)
    return np.split(flat, np.cumsum(lengths)[:-1])


class _TopologyDecoder:
    def __init__(self, topology: Mapping[str, Any]) -> None:
        self.arcs = _topology_arcs(topology)
        transform = topology.get("transform")
        self.scale = np.asarray(transform["scale"], dtype=np.float64) if transform else None
        self.translate = np.asarray(transform["translate"], dtype=np.float64) if transform \
            else None

    def _position(self, point: Iterable[float]) -> FloatArray:
        xy = np.asarray(list(point)[:2], dtype=np.float64)
        if self.scale is not None and self.translate is not None:
            xy = xy * self.scale + self.translate
        return xy

    def _line(self, indexes: Iterable[int]) -> FloatArray:
        pieces = []
        for n, index in enumerate(indexes):
            arc = self.arcs[index] if index >= 0 else self.arcs[~index][::-1]
            pieces.append(arc if n == 0 else arc[1:])
        return np.concatenate(pieces) if pieces else np.empty((0, 2))

    def _polygon(self, rings: list[list[int]]) -> BaseGeometry | None:
        coords = [self._line(ring) for ring in rings]
        coords = [ring for ring in coords if len(ring) >= 4]
        if not coords:
            return None
        return shapely.Polygon(coords[0], coords[1:])

    def geometry(self, obj: Mapping[str, Any]) -> BaseGeometry | None:
        kind = obj.get("type")
        if kind == "Polygon":
            return self._polygon(obj["arcs"])
        if kind == "MultiPolygon":
            polygons = [p for p in (self._polygon(rings) for rings in obj["arcs"]) if p]
            return shapely.MultiPolygon(polygons) if polygons else None
        if kind == "LineString":
            return shapely.LineString(self._line(obj["arcs"]))
        if kind == "MultiLineString":
            return shapely.MultiLineString([self._line(arcs) for arcs in obj["arcs"]])
        if kind == "Point":
            return shapely.Point(self._position(obj["coordinates"]))
        if kind == "MultiPoint":
            return shapely.MultiPoint([self._position(p) for p in obj["coordinates"]])
        if kind == "GeometryCollection":
            parts = [g for g in (self.geometry(o) for o in obj.get("geometries", [])) if g]
            return shapely.GeometryCollection(parts)
        return None


def _topology_layer(decoder: _TopologyDecoder, layer: str,
                    obj: Mapping[str, Any]) -> list[_Feature]:
    members = obj.get("geometries", []) if obj.get("type") == "GeometryCollection" \
        and "id" not in obj else [obj]
    features = []
    for member in members:
        geometry = decoder.geometry(member)
        if geometry is not None and not geometry.is_empty:
            features.append(_Feature(layer, member.get("id"), member.get("properties") or {},
                                     geometry))
    return features


def _geojson_features(document: Mapping[str, Any], data: bytes) -> list[_Feature]:
    kind = document.get("type")
    if kind == "FeatureCollection":
        raw = document.get("features", [])
    elif kind == "Feature":
        raw = [document]
    else:
        raise ValueError(f"a GeoJSON FeatureCollection or TopoJSON Topology was expected, "
                         f"not type {kind!r}")
    kept = [feature for feature in raw if feature.get("geometry")]
    geometries: list[BaseGeometry] | None = None
    if kind == "FeatureCollection" and len(kept) == len(raw) and raw:
        # GEOS reads the whole collection about three times faster than
        # shapely.geometry.shape() per feature; it cannot take null geometries.
        parts = shapely.get_parts(shapely.from_geojson(data))
        if len(parts) == len(raw):
            geometries = list(parts)
    if geometries is None:
        geometries = [shape(feature["geometry"]) for feature in kept]
    return [_Feature(None, feature.get("id"), feature.get("properties") or {}, geometry)
            for feature, geometry in zip(kept, geometries, strict=True)]


def _clean(features: list[_Feature], path: Path) -> list[_Feature]:
    """Fix rings that jump across 180° and repair invalid geometries (few; found by bounds)."""
    if not features:
        return features
    geometries = np.array([f.geometry for f in features], dtype=object)
    bounds = shapely.bounds(geometries)
    for i in np.flatnonzero(bounds[:, 2] - bounds[:, 0] > 180.0):
        geometries[i] = split_polygon(geometries[i])
    invalid = np.flatnonzero(~shapely.is_valid(geometries))
    if len(invalid):
        # Reference boundaries are trusted, but generalised or quantized data
        # has the odd self-touching ring, on which overlays would fail.
        geometries[invalid] = shapely.make_valid(geometries[invalid])
        logger.info("repaired invalid boundaries", extra={
            "action": "geodata_repair", "path": str(path), "count": len(invalid)})
    return [_Feature(f.layer, f.id, f.properties, g)
            for f, g in zip(features, geometries, strict=True)]


class _Document:
    """One boundary file: parsed on first use, each layer decoded on first use (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parsed: tuple[_TopologyDecoder | None, dict[str | None, Any]] | None = None
        self._layers: dict[str | None, list[_Feature]] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._parsed is not None

    def features(self, layer: str | None) -> list[_Feature]:
        """The features of one TopoJSON object (None: all objects, or the GeoJSON's features)."""
        with self._lock:
            cached = self._layers.get(layer)
            if cached is None:
                cached = self._decode(layer)
                self._layers[layer] = cached
        return cached

    def _parse(self) -> tuple[_TopologyDecoder | None, dict[str | None, Any]]:
        if self._parsed is None:
            try:
                data = self.path.read_bytes()
                document = json.loads(data)
                if not isinstance(document, dict):
                    raise ValueError("the file holds no JSON object")
                if document.get("type") == "Topology":
                    decoder = _TopologyDecoder(document)
                    objects: dict[str | None, Any] = dict(document.get("objects", {}))
                    self._parsed = (decoder, objects)
                else:
                    features = _clean(_geojson_features(document, data), self.path)
                    self._parsed = (None, {None: features})
            except OSError as exc:
                raise GeodataError(self.path, f"cannot read the file: {exc}") from exc
            except (ValueError, KeyError, TypeError, IndexError, ShapelyError) as exc:
                raise GeodataError(self.path,
                                   f"not a usable GeoJSON/TopoJSON file: {exc}") from exc
        return self._parsed

    def _decode(self, layer: str | None) -> list[_Feature]:
        decoder, objects = self._parse()
        if decoder is None:
            if layer is not None:
                raise GeodataError(self.path, f"a GeoJSON file has no layer {layer!r}")
            features: list[_Feature] = objects[None]
            return features
        if layer is not None and layer not in objects:
            known = ", ".join(sorted(str(name) for name in objects))
            raise GeodataError(self.path, f"no TopoJSON object {layer!r} (it has: {known})")
        names = [layer] if layer is not None else list(objects)
        try:
            features = [f for name in names
                        for f in _topology_layer(decoder, str(name), objects[name])]
        except (ValueError, KeyError, TypeError, IndexError, ShapelyError) as exc:
            raise GeodataError(self.path, f"TopoJSON object {layer!r} is malformed: "
                                          f"{exc}") from exc
        features = _clean(features, self.path)
        logger.debug("geodata loaded", extra={
            "action": "geodata_load", "path": str(self.path), "layer": layer,
            "features": len(features)})
        return features


@dataclass(frozen=True, slots=True)
class _Entry:
    geometry: BaseGeometry
    properties: Mapping[str, Any]


class _Table:
    """A key index over one document's features (built on first use)."""

    def __init__(self, document: _Document, id_property: str | None, layer: str | None) -> None:
        self.document = document
        self.id_property = id_property
        self.layer = layer
        self._index: dict[str, _Entry] | None = None
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.document.path.name + (f"#{self.layer}" if self.layer else "")

    def _key_of(self, feature: _Feature) -> object:
        if self.id_property is None:
            return feature.id
        if self.id_property == "id" and feature.id is not None:
            return feature.id
        return feature.properties.get(self.id_property)

    def _build(self) -> dict[str, _Entry]:
        grouped: dict[str, list[_Feature]] = {}
        for feature in self.document.features(self.layer):
            key = self._key_of(feature)
            if key is None or str(key).strip() == "":
                continue
            grouped.setdefault(_normalize_key(key), []).append(feature)
        # A key on several features (a region drawn in pieces) is their union.
        return {key: _Entry(parts[0].geometry if len(parts) == 1 else
                            shapely.union_all([f.geometry for f in parts]), parts[0].properties)
                for key, parts in grouped.items()}

    def index(self) -> dict[str, _Entry]:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._build()
        return self._index


class _MappingTable:
    def __init__(self, label: str, mapping: Mapping[str, BaseGeometry]) -> None:
        self.label = label
        self._index = {_normalize_key(key): _Entry(geom, {}) for key, geom in mapping.items()}

    def index(self) -> dict[str, _Entry]:
        return self._index


@dataclass(frozen=True, slots=True)
class _Source:
    table: _Table | _MappingTable
    transform: KeyTransform | None


# -- the registry --------------------------------------------------------------


class GeocodeRegistry:
    """CAP geocode value names to boundary geometries, from GeoJSON/TopoJSON files.

    >>> registry = GeocodeRegistry()
    >>> registry.add_file("us-counties-fips.geojson", value_name="SAME",
    ...                   transform=same_county_key)          # doctest: +SKIP
    >>> registry.resolve("same", "006037")                     # doctest: +SKIP
    <MULTIPOLYGON (...)>
    """

    def __init__(self) -> None:
        self._sources: dict[str, list[_Source]] = {}
        self._names: dict[str, str] = {}
        self._documents: dict[Path, _Document] = {}
        self._tables: dict[tuple[Path, str | None, str | None], _Table] = {}

    def add_file(self, path: str | Path, *, value_name: str, id_property: str | None = None,
                 transform: KeyTransform | None = None, layer: str | None = None) -> None:
        """Let a GeoJSON or TopoJSON file answer geocodes named ``value_name``.

        ``id_property`` names the feature property that holds the key; None
        or ``"id"`` means the feature's ``id``. ``transform`` turns a CAP
        value into a key (default: the value, trimmed). ``layer`` picks one
        TopoJSON object (default: all). The file is only checked to exist
        here; it is parsed on the first lookup that reaches it, and shared
        by every value name registered on it.
        """
        file = Path(path)
        if not file.is_file():
            raise GeodataError(file, "no such file")
        resolved = file.resolve()
        document = self._documents.setdefault(resolved, _Document(file))
        table_key = (resolved, id_property, layer)
        table = self._tables.setdefault(table_key, _Table(document, id_property, layer))
        self._add(value_name, _Source(table, transform))

    def add_geometries(self, value_name: str, mapping: Mapping[str, BaseGeometry], *,
                       transform: KeyTransform | None = None,
                       label: str = "geometries") -> None:
        """Let an in-memory mapping of key to geometry (lon/lat) answer ``value_name``."""
        self._add(value_name, _Source(_MappingTable(label, mapping), transform))

    def _add(self, value_name: str, source: _Source) -> None:
        name = normalize_value_name(value_name)
        if not name:
            raise InvalidGeoInput("value_name", value_name, "a value name must not be empty")
        self._sources.setdefault(name, []).append(source)
        self._names.setdefault(name, value_name.strip())

    def value_names(self) -> tuple[str, ...]:
        """The registered value names (as first spelled), sorted."""
        return tuple(sorted(self._names.values(), key=str.casefold))

    def knows(self, value_name: str) -> bool:
        """True if some file answers ``value_name`` (compared case-insensitively)."""
        return normalize_value_name(value_name) in self._sources

    def sources(self, value_name: str) -> tuple[str, ...]:
        """The files (or labels) that answer ``value_name``, in lookup order."""
        return tuple(s.table.label for s in self._sources.get(normalize_value_name(value_name),
                                                               ()))

    def loaded_files(self) -> tuple[str, ...]:
        """The files parsed so far (lazy loading makes this a subset of those added)."""
        return tuple(str(d.path) for d in self._documents.values() if d.loaded)

    def preload(self) -> None:
        """Read every registered file now (at service start) instead of on first lookup."""
        for sources in self._sources.values():
            for source in sources:
                source.table.index()

    def lookup(self, value_name: str, value: str) -> GeocodeResult:
        """Look a geocode up: the geometry and where it came from, or why there is none."""
        sources = self._sources.get(normalize_value_name(value_name))
        if not sources:
            return GeocodeResult(value_name=value_name, value=value,
                                 status=GeocodeStatus.UNKNOWN_NAME,
                                 note=f"no boundary file is registered for {value_name!r}")
        reasons: list[str] = []
        derivable = False
        for source in sources:
            mapped = source.transform(value) if source.transform else value.strip()
            key = mapped if isinstance(mapped, GeocodeKey) else GeocodeKey(key=mapped)
            if key.key is None:
                reasons.append(key.note or f"{value!r} has no key in {source.table.label}")
                continue
            derivable = True
            entry = source.table.index().get(_normalize_key(key.key))
            if entry is None:
                reasons.append(f"{source.table.label} has no feature {key.key!r}")
                continue
            status = GeocodeStatus.APPROXIMATED if key.approximate else GeocodeStatus.FOUND
            return GeocodeResult(value_name=value_name, value=value, status=status,
                                 geometry=entry.geometry, key=key.key,
                                 source=source.table.label, note=key.note,
                                 properties=entry.properties)
        return GeocodeResult(
            value_name=value_name, value=value,
            status=GeocodeStatus.NOT_FOUND if derivable else GeocodeStatus.NOT_DERIVABLE,
            note="; ".join(dict.fromkeys(reasons)))

    def resolve(self, value_name: str, value: str) -> BaseGeometry | None:
        """The geometry (lon/lat) of a geocode, or None when it cannot be resolved."""
        return self.lookup(value_name, value).geometry


# -- the default layout --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LayoutEntry:
    """One file of a geodata folder: which value names it answers, and how."""

    file: str
    value_names: tuple[str, ...]
    id_property: str | None = None
    transform: KeyTransform | None = None
    layer: str | None = None


_ISO_NAMES = ("ISO3166", "ISO 3166", "ISO3166-1", "ISO 3166-1", "ISO3166-1-numeric",
              "ISO3166-1-alpha-2", "ISO3166-1-alpha-3", "COUNTRY",
              "http://www.iso.org/iso/country_codes.html")

#: The files :func:`default_registry` looks for, in lookup order (the first
#: file that has a key wins; later ones are fallbacks, read only on a miss).
DEFAULT_LAYOUT: tuple[LayoutEntry, ...] = (
    LayoutEntry(file="us-counties-fips.geojson", value_names=("SAME",),
                transform=same_county_key),
    LayoutEntry(file="us-counties-fips.geojson", value_names=("FIPS6",),
                transform=fips6_county_key),
    LayoutEntry(file="us-counties-fips.geojson", value_names=("UGC",), transform=ugc_county_key),
    LayoutEntry(file="us-atlas-counties-10m.topo.json", value_names=("SAME",),
                transform=same_county_key, layer="counties"),
    LayoutEntry(file="us-atlas-counties-10m.topo.json", value_names=("FIPS6",),
                transform=fips6_county_key, layer="counties"),
    LayoutEntry(file="us-atlas-counties-10m.topo.json", value_names=("UGC",),
                transform=ugc_county_key, layer="counties"),
    LayoutEntry(file="us-atlas-states-10m.topo.json", value_names=("SAME", "FIPS6"),
                transform=same_state_key, layer="states"),
    LayoutEntry(file="nuts-2021-60m-4326-levels0-3.geojson", value_names=("NUTS",),
                id_property="NUTS_ID", transform=nuts_key),
    *(LayoutEntry(file="nuts-2021-60m-4326-levels0-3.geojson", value_names=(f"NUTS{level}",),
                  id_property="NUTS_ID", transform=partial(nuts_key, level=level))
      for level in range(4)),
    LayoutEntry(file="world-atlas-countries-50m.topo.json", value_names=_ISO_NAMES,
                transform=iso3166_numeric_key, layer="countries"),
    LayoutEntry(file="world-atlas-countries-110m.topo.json", value_names=_ISO_NAMES,
                transform=iso3166_numeric_key, layer="countries"),
    LayoutEntry(file="dwd_warncells_sample_brightsky.geojson", value_names=("WARNCELLID",),
                id_property="WARNCELLID"),
)


def default_registry(data_dir: str | Path,
                     layout: Iterable[LayoutEntry] = DEFAULT_LAYOUT) -> GeocodeRegistry:
    """A registry of the boundary files found in ``data_dir`` (laid out like tests/geodata).

    Files of ``layout`` that are absent are skipped; nothing is parsed yet.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise GeodataError(folder, "no such folder")
    registry = GeocodeRegistry()
    for entry in layout:
        path = folder / entry.file
        if not path.is_file():
            continue
        for name in entry.value_names:
            registry.add_file(path, value_name=name, id_property=entry.id_property,
                              transform=entry.transform, layer=entry.layer)
    return registry
