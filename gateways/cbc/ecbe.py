"""The ECBE REST interface of a cell broadcast centre, sans-IO.

ECBE is osmo-cbc's northbound JSON API (``/api/ecbe/v1``): ``POST /message``
creates a message and ``DELETE /message/:message_id`` deletes one. This module
builds the request bodies, interprets the answers and, for the simulator,
parses bodies exactly as osmo-cbc's ``src/rest_api.c`` does (the shipped JSON
schema differs from the code; the code is what a real CBC accepts). Nothing
here opens a socket: :mod:`gateways.cbc.client` sends what
:func:`create_request` and friends return and hands the status and body to
:func:`interpret_response`.

Two dialects, chosen per operator (see ``docs/cbc-rest.md``):

* ``osmo-cbc``: exactly what osmo-cbc 0.4 accepts. The scope can only be
  ``scope_plmn`` (the operator's whole network) and there is no replace
  operation: a replace is a DELETE followed by a create.
* ``capcast``: the same JSON, plus ``scope_cell_list`` carrying the targeted
  cells, and ``PUT /message/:message_id`` to replace an active message.

The record of a message is :class:`CbcMessage`; :func:`message_to_json` and
:func:`parse_message` are inverse (a property test checks it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, Final

from gateways import compose
from gateways.channels import GeographicalScope, MessageIdentifier
from gateways.errors import (
    CbcError,
    ConnectionLost,
    GatewayTimeout,
    LocalProtocolError,
    RemoteProtocolError,
)
from gateways.text import Alphabet, CbsPages, cbs_pages, is_gsm7, normalize_language

__all__ = [
    "MAX_CELL_IDENTITY",
    "MESSAGE_PATH",
    "PREFIX",
    "REPETITION_UNIT",
    "Category",
    "CbcIllegalState",
    "CbcMessage",
    "CbcMessageActive",
    "CbcNotImplemented",
    "CbcRequestRefused",
    "CbcTimeout",
    "CbcUnexpectedStatus",
    "CbcUnknownMessage",
    "CbcUnreachable",
    "CellId",
    "CharacterSet",
    "Confirmation",
    "DecodedPayload",
    "Dialect",
    "EcbeOptions",
    "EcbeRequestError",
    "EncodedPayload",
    "EtwsPayload",
    "HttpRequest",
    "Operation",
    "ParsedMessage",
    "Payload",
    "Rat",
    "ReplaceIncomplete",
    "ScopeNotSupported",
    "SerialForm",
    "create_request",
    "delete_request",
    "interpret_response",
    "message_path",
    "message_to_json",
    "osmo_decoded_dcs",
    "parse_body",
    "parse_cell_id",
    "parse_message",
    "parse_message_id",
    "payload_for_text",
    "repetition_seconds",
    "repetition_units",
    "replace_request",
]

#: The path prefix of every ECBE endpoint.
PREFIX: Final = "/api/ecbe/v1"
#: The create endpoint (POST); ``MESSAGE_PATH/<id>`` is the delete (and capcast replace) one.
MESSAGE_PATH: Final = f"{PREFIX}/message"

#: One CBSP repetition-period unit, in seconds (TS 48.049 §8.2.8; osmo-cbc ``cbc_message.h``).
REPETITION_UNIT: Final = Fraction("1.883")
_MAX_REPETITION_UNITS: Final = 4095
_MAX_PAGES: Final = 15
_PAGE_OCTETS: Final = 82
_ETWS_SECURITY_OCTETS: Final = 50
#: The largest cell identity of each kind: CI 16 bits, ECI 28 bits, NCI 36 bits.
#: GSM CI is 16 bits; a UMTS cell in a CGI-shaped id carries the 28-bit UTRAN cell id
#: (RNC id and C-Id), as OpenCelliD and capcast inventories write it.
MAX_CELL_IDENTITY: Final = {"ci": 0xFFFF, "uci": (1 << 28) - 1, "eci": (1 << 28) - 1,
                            "nci": (1 << 36) - 1}


class Dialect(Enum):
    """Which ECBE variant a CBC speaks; chosen per operator."""

    #: osmo-cbc 0.4: PLMN-wide scope only, no replace (delete + create instead).
    OSMO_CBC = "osmo-cbc"
    #: capcast's extension: a cell list in the scope and PUT to replace.
    CAPCAST = "capcast"


class Category(Enum):
    """CBSP message category (``category``)."""

    #: Broadcast in the normal schedule (the default).
    NORMAL = "normal"
    #: Broadcast at the earliest opportunity.
    HIGH_PRIORITY = "high_priority"
    #: Broadcast when nothing else is scheduled.
    BACKGROUND = "background"


class CharacterSet(Enum):
    """``payload_decoded.character_set``: how osmo-cbc encodes ``data_utf8``."""

    #: GSM 7-bit default alphabet (no extension table: osmo-cbc's converter lacks it).
    GSM = "gsm"
    #: 8-bit data; ``data_utf8`` holds hex.
    EIGHT_BIT = "8bit"
    #: UCS-2.
    UCS2 = "ucs2"


class SerialForm(Enum):
    """How the serial number is written in ``smscb_message.serial_nr``."""

    #: ``{"serial_nr_encoded": 0..65535}``.
    ENCODED = "encoded"
    #: ``{"serial_nr_decoded": {"geo_scope": ..., "msg_code": ..., "update_nr": ...}}``.
    DECODED = "decoded"


class Rat(Enum):
    """The radio access technology of a cell named in a capcast cell list."""

    #: GSM (CGI, 4 parts).
    GSM = "gsm"
    #: UMTS (CGI with LAC and CI, 4 parts).
    UMTS = "umts"
    #: LTE (ECGI, 3 parts, 28-bit cell identity).
    LTE = "lte"
    #: 5G NR (NR CGI, 3 parts, 36-bit cell identity).
    NR = "nr"


class Operation(Enum):
    """An ECBE operation."""

    #: POST /message.
    CREATE = "create"
    #: PUT /message/:id (capcast) or DELETE + POST (osmo-cbc).
    REPLACE = "replace"
    #: DELETE /message/:id.
    DELETE = "delete"


class Confirmation(Enum):
    """How the CBC confirmed an operation."""

    #: The CBC answered success to this request.
    ACCEPTED = "accepted"
    #: An earlier attempt whose answer was lost took effect: after it, a create was
    #: answered 409 (the id is active) or a delete 404 (the id is gone).
    EARLIER_ATTEMPT = "earlier-attempt"


# geo_scope names of serial_nr_decoded (osmo-cbc ``geo_scope_vals``).
_GEO_SCOPES: Final = {scope.ecbe_name: scope for scope in GeographicalScope}
# osmo-cbc ``iso639_1_cbs_dcs_vals``: the DCS it derives for GSM text in these languages.
_OSMO_GSM_LANGUAGE_DCS: Final = {
    "de": 0x00, "en": 0x01, "it": 0x02, "fr": 0x03, "es": 0x04, "nl": 0x05, "sv": 0x06,
    "da": 0x07, "pt": 0x08, "fi": 0x09, "no": 0x0A, "el": 0x0B, "tr": 0x0C, "hu": 0x0D,
    "pl": 0x0E, "cs": 0x20, "he": 0x21, "ar": 0x22, "ru": 0x23, "is": 0x24,
}
# osmo-cbc ``ts23041_warning_type_vals``; the code spells the third one "tsuname", the
# documentation "tsunami": a parser accepts both, a builder writes the encoded form.
_ETWS_WARNING_TYPES: Final = {
    "earthquake": 0, "tsunami": 1, "earthquake_and_tsunami": 2, "earthquake_and_tsuname": 2,
    "test": 3, "other": 4,
}


# --- repetition ---------------------------------------------------------------------------


def repetition_units(seconds: float | Fraction) -> int:
    """The CBSP repetition period (units of 1.883 s) closest to ``seconds``.

    Rounds to the nearest unit (halves up), so the period on the air differs
    from the one asked for by at most 0.94 s, and converting a unit count to
    seconds and back gives the same count. Computed exactly (no float error).

    Raises:
        LocalProtocolError: ``seconds`` is not positive or above 4095 units
            (7711 s, about 2 h 8 min), the most CBSP can express.

    """
    if not (isinstance(seconds, Fraction) or math.isfinite(seconds)) or seconds <= 0:
        raise LocalProtocolError(f"repetition period must be a positive number of seconds, "
                                 f"not {seconds!r}")
    units = math.floor(Fraction(seconds) / REPETITION_UNIT + Fraction(1, 2))
    if units > _MAX_REPETITION_UNITS:
        limit = float(_MAX_REPETITION_UNITS * REPETITION_UNIT)
        raise LocalProtocolError(
            f"repetition period {seconds} s is longer than CBSP allows "
            f"({_MAX_REPETITION_UNITS} units of 1.883 s = {limit:.0f} s)")
    return max(units, 1)


def repetition_seconds(units: int) -> float:
    """The repetition period in seconds of ``units`` CBSP units of 1.883 s."""
    return float(units * REPETITION_UNIT)


# --- cells --------------------------------------------------------------------------------

_CELL_RE: Final = re.compile(
    r"(?:(?P<rat>gsm|umts|lte|nr):)?(?P<mcc>[0-9]{3})-(?P<mnc>[0-9]{2,3})"
    r"-(?P<a>[0-9]{1,12})(?:-(?P<b>[0-9]{1,12}))?")


@dataclass(frozen=True, slots=True, kw_only=True)
class CellId:
    """A cell named in a capcast ``scope_cell_list``: CGI, ECGI or NR CGI.

    ``lac`` is set for a CGI (4 parts) and None for an ECGI / NR CGI (3 parts).
    ``rat`` is None when the text did not say; a 3-part id without it names the
    LTE or NR cell with that PLMN and identity (see ``docs/cbc-rest.md``).
    """

    #: The RAT tag, when given.
    rat: Rat | None = None
    #: Mobile country code, three digits.
    mcc: str
    #: Mobile network code, two or three digits as written ("01" and "001" differ).
    mnc: str
    #: Location area code (0..65535) of a CGI, None for an ECGI / NR CGI.
    lac: int | None = None
    #: CI (16 bits GSM, 28 bits UMTS UTRAN cell id), ECI (28 bits) or NCI (36 bits).
    cell: int

    def __post_init__(self) -> None:
        if not (len(self.mcc) == 3 and self.mcc.isdigit() and self.mcc.isascii()):
            raise ValueError(f"MCC must be three digits, not {self.mcc!r}")
        if not (len(self.mnc) in (2, 3) and self.mnc.isdigit() and self.mnc.isascii()):
            raise ValueError(f"MNC must be two or three digits, not {self.mnc!r}")
        if self.lac is not None:
            if self.rat in (Rat.LTE, Rat.NR):
                raise ValueError(f"an {self.rat.value} cell has no LAC: write mcc-mnc-identity")
            if not 0 <= self.lac <= 0xFFFF:
                raise ValueError(f"LAC {self.lac} is outside 0..65535")
            if self.rat is Rat.GSM:
                limit, what = MAX_CELL_IDENTITY["ci"], "CI"
            else:
                limit, what = MAX_CELL_IDENTITY["uci"], "CI (16-bit GSM, 28-bit UMTS)"
        elif self.rat in (Rat.GSM, Rat.UMTS):
            raise ValueError(f"a {self.rat.value} cell needs a LAC: write mcc-mnc-lac-ci")
        elif self.rat is Rat.LTE:
            limit, what = MAX_CELL_IDENTITY["eci"], "E-UTRAN cell identity"
        else:
            limit, what = MAX_CELL_IDENTITY["nci"], "NR cell identity"
        if not 0 <= self.cell <= limit:
            raise ValueError(f"{what} {self.cell} is outside 0..{limit}")

    @property
    def text(self) -> str:
        """The canonical text: ``[rat:]mcc-mnc-lac-ci`` or ``[rat:]mcc-mnc-identity``."""
        tag = f"{self.rat.value}:" if self.rat is not None else ""
        lac = f"-{self.lac}" if self.lac is not None else ""
        return f"{tag}{self.mcc}-{self.mnc}{lac}-{self.cell}"

    def __str__(self) -> str:
        return self.text


def parse_cell_id(text: str) -> CellId:
    """Parse a cell id in the forms of ``docs/cbc-rest.md`` (CGI, ECGI, NR CGI).

    Numbers are decimal; leading zeros of LAC and identity are not significant
    (the canonical :attr:`CellId.text` drops them), those of MCC and MNC are.

    Raises:
        ValueError: the text is not one of the forms, or a field is out of range.

    """
    match = _CELL_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a cell id ([rat:]mcc-mnc-lac-ci for a CGI, "
                         "[rat:]mcc-mnc-eci for an ECGI, [rat:]mcc-mnc-nci for an NR CGI)")
    rat = Rat(match["rat"]) if match["rat"] else None
    if match["b"] is None:
        return CellId(rat=rat, mcc=match["mcc"], mnc=match["mnc"], cell=int(match["a"]))
    return CellId(rat=rat, mcc=match["mcc"], mnc=match["mnc"], lac=int(match["a"]),
                  cell=int(match["b"]))


def _cell_tuple(cells: Iterable[CellId | str]) -> tuple[CellId, ...]:
    """Cells as CellIds, duplicates removed (first occurrence kept)."""
    parsed = (c if isinstance(c, CellId) else parse_cell_id(c) for c in cells)
    return tuple(dict.fromkeys(parsed))


# --- payloads -----------------------------------------------------------------------------


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an integer in {low}..{high}, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedPayload:
    """``payload_decoded``: text that the CBC encodes itself.

    osmo-cbc's GSM converter does not handle extension-table characters and
    reads ``data_utf8`` byte by byte (so non-ASCII GSM characters such as "é"
    are garbled), packs pages without per-page alignment, and does not set a
    UCS-2 DCS; :func:`payload_for_text` only uses this form where the result is
    the same as :class:`EncodedPayload` would give.
    """

    #: The text (hex octets for ``8bit``), sent as ``data_utf8``.
    text: str
    #: How the CBC encodes the text.
    character_set: CharacterSet
    #: Language (at most two characters, as osmo-cbc checks; ISO 639-1 expected), or None.
    language: str | None = None
    #: Message class 0..3 for the DCS, or None.
    dcs_class: int | None = None

    def __post_init__(self) -> None:
        if self.language is not None and len(self.language) > 2:
            raise LocalProtocolError(
                f"language must be a two-letter ISO 639-1 code, not {self.language!r}")
        if self.dcs_class is not None:
            _check_range("dcs_class", self.dcs_class, 0, 3)


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedPayload:
    """``payload_encoded``: the data coding scheme and the page contents, as sent on the air."""

    #: TS 23.038 §5 CBS data coding scheme.
    dcs: int
    #: 1..15 pages of at most 82 octets (send full 82-octet pages: osmo-cbc fills a
    #: short page with zero octets, which GSM-7 shows as "@").
    pages: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_range("dcs", self.dcs, 0, 255)
        if not 1 <= len(self.pages) <= _MAX_PAGES:
            raise LocalProtocolError(f"a CBS message has 1..{_MAX_PAGES} pages, "
                                     f"not {len(self.pages)}")
        for index, page in enumerate(self.pages):
            if not isinstance(page, bytes) or len(page) > _PAGE_OCTETS:
                raise LocalProtocolError(f"page {index + 1} must be at most {_PAGE_OCTETS} "
                                         f"octets of bytes")

    @classmethod
    def from_pages(cls, pages: CbsPages) -> EncodedPayload:
        """The payload of pages made by :func:`gateways.text.cbs_pages`."""
        return cls(dcs=pages.dcs, pages=pages.pages)


@dataclass(frozen=True, slots=True, kw_only=True)
class EtwsPayload:
    """``payload_etws``: an ETWS primary notification (warning type and flags)."""

    #: TS 23.041 §9.3.24 warning type (0 earthquake .. 4 other; up to 255 encoded).
    warning_type: int
    #: Emergency user alert flag.
    emergency_user_alert: bool = False
    #: Popup flag.
    popup_on_display: bool = False
    #: Warning security information (50 octets), or None.
    warning_sec_info: bytes | None = None

    def __post_init__(self) -> None:
        _check_range("warning_type", self.warning_type, 0, 255)
        if self.warning_sec_info is not None and len(self.warning_sec_info) > 50:
            raise LocalProtocolError("warning_sec_info is at most 50 octets")


Payload = DecodedPayload | EncodedPayload | EtwsPayload


def osmo_decoded_dcs(payload: DecodedPayload) -> int:
    """The DCS osmo-cbc derives for a ``payload_decoded`` (``parse_payload_decoded``).

    GSM: the TS 23.038 language code for the 20 languages of its table, 0x0F for
    any other language (the language is lost), ``0xF0|class`` with a class and
    no language, else 0x0F. 8-bit: ``0xF4|class``. UCS-2: osmo-cbc sets no DCS,
    so the message keeps 0x00 (GSM-7 German) -- one reason capcast sends UCS-2
    only as ``payload_encoded``.
    """
    if payload.character_set is CharacterSet.GSM:
        if payload.language is not None:
            return _OSMO_GSM_LANGUAGE_DCS.get(payload.language, 0x0F)
        return 0xF0 | payload.dcs_class if payload.dcs_class is not None else 0x0F
    if payload.character_set is CharacterSet.EIGHT_BIT:
        return 0xF4 | (payload.dcs_class or 0)
    return 0x00


def payload_for_text(text: str, *, language: str | None,
                     allow_decoded: bool = True) -> DecodedPayload | EncodedPayload:
    """The payload for a text: pages made by :func:`gateways.text.cbs_pages`.

    The pages, DCS and language indication are capcast's own (GSM-7 with the
    extension table, UCS-2 with the language, ``<CR>`` padding per page). The
    shorter ``payload_decoded`` form is used only where osmo-cbc produces the
    same broadcast: one GSM-7 page of ASCII characters without extension-table
    characters, in a language whose DCS osmo-cbc derives the same way (or no
    language). ``allow_decoded=False`` always sends ``payload_encoded``.

    Raises:
        TextTooLong: more than 15 pages.
        LocalProtocolError: the text is empty.

    """
    if not text:
        raise LocalProtocolError("a cell broadcast message needs text")
    pages = cbs_pages(text, language=language)
    if allow_decoded and pages.alphabet is Alphabet.GSM7 and pages.count == 1 \
            and text.isascii() and is_gsm7(text) and not _has_extension(text):
        lang = normalize_language(language)
        decoded = DecodedPayload(text=text, character_set=CharacterSet.GSM, language=lang)
        if osmo_decoded_dcs(decoded) == pages.dcs:
            return decoded
    return EncodedPayload.from_pages(pages)


_EXTENSION_CHARS: Final = frozenset("\x0c^{}\\[~]|€")


def _has_extension(text: str) -> bool:
    return not _EXTENSION_CHARS.isdisjoint(text)


# --- the message record -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CbcMessage:
    """One cell broadcast message as ECBE carries it.

    ``message_id`` is the 3GPP message identifier (the channel, e.g. 4370 for
    CMAS Presidential / EU-Alert level 1): osmo-cbc keys messages by it, so two
    alerts on the same channel cannot be active at once on one CBC.
    ``cells`` None means the operator's whole network (``scope_plmn``); a
    tuple is the targeted cells (``scope_cell_list``, capcast dialect only).
    """

    #: 3GPP TS 23.041 message identifier, 0..65535.
    message_id: int
    #: 16-bit serial number (geographical scope, message code, update number).
    serial_number: int
    #: The content.
    payload: Payload
    #: Repetition period in CBSP units of 1.883 s (see :func:`repetition_units`).
    repetition_period: int
    #: Number of broadcasts requested, 0 = until deleted.
    num_broadcasts: int = 0
    #: Warning period in seconds (0..65535), None = infinite.
    warning_period: int | None = None
    #: CBSP category.
    category: Category = Category.NORMAL
    #: The targeted cells (cell id strings are parsed), or None for the operator's
    #: whole network (PLMN). Duplicates are removed.
    cells: tuple[CellId, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        _check_range("message_id", self.message_id, 0, 0xFFFF)
        _check_range("serial_number", self.serial_number, 0, 0xFFFF)
        _check_range("repetition_period", self.repetition_period, 0, _MAX_REPETITION_UNITS)
        _check_range("num_broadcasts", self.num_broadcasts, 0, 0xFFFF)
        if self.warning_period is not None:
            _check_range("warning_period", self.warning_period, 0, 0xFFFF)
        if self.cells is not None:
            if not self.cells:
                raise LocalProtocolError("an empty cell list targets nobody: pass cells=None "
                                         "for the whole network or name at least one cell")
            object.__setattr__(self, "cells", _cell_tuple(self.cells))

    @property
    def whole_network(self) -> bool:
        """True when the message covers the operator's whole network (PLMN-wide)."""
        return self.cells is None


@dataclass(frozen=True, slots=True, kw_only=True)
class EcbeOptions:
    """How to talk to one operator's CBC."""

    #: Which ECBE variant the CBC speaks.
    dialect: Dialect
    #: Our name as a cell broadcast entity (``cbe_name``, mandatory in osmo-cbc).
    cbe_name: str = "capcast"
    #: How to write serial numbers.
    serial_form: SerialForm = SerialForm.ENCODED

    def __post_init__(self) -> None:
        if not self.cbe_name:
            raise LocalProtocolError("cbe_name must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedMessage:
    """What :func:`parse_message` read from a request body."""

    #: The cell broadcast entity that sent it.
    cbe_name: str
    #: The message.
    message: CbcMessage
    #: The form the serial number was written in.
    serial_form: SerialForm


# --- JSON: building -----------------------------------------------------------------------


def _serial_json(serial: int, form: SerialForm) -> dict[str, Any]:
    if form is SerialForm.ENCODED:
        return {"serial_nr_encoded": serial}
    fields = compose.decode_serial_number(serial)
    return {"serial_nr_decoded": {"geo_scope": fields.geo_scope.ecbe_name,
                                  "msg_code": fields.message_code,
                                  "update_nr": fields.update_number}}


def _payload_json(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, EncodedPayload):
        return {"payload_encoded": {"dcs": payload.dcs,
                                    "pages": [page.hex() for page in payload.pages]}}
    if isinstance(payload, DecodedPayload):
        decoded: dict[str, Any] = {"character_set": payload.character_set.value,
                                   "data_utf8": payload.text}
        if payload.language is not None:
            decoded["language"] = payload.language
        if payload.dcs_class is not None:
            decoded["dcs_class"] = payload.dcs_class
        return {"payload_decoded": decoded}
    etws: dict[str, Any] = {"warning_type": {"warning_type_encoded": payload.warning_type},
                            "emergency_user_alert": payload.emergency_user_alert,
                            "popup_on_display": payload.popup_on_display}
    if payload.warning_sec_info is not None:
        etws["warning_sec_info"] = payload.warning_sec_info.hex()
    return {"payload_etws": etws}


class ScopeNotSupported(LocalProtocolError):
    """The CBC's dialect cannot express the message's scope.

    osmo-cbc accepts only ``scope_plmn``: a message for some cells of an
    operator cannot be sent to it, only one for the whole network.
    """

    def __init__(self, message: str, *, cells: int, operator: str | None = None,
                 link: str | None = None) -> None:
        self.cells = cells
        super().__init__(message, operator=operator, link=link)


def message_to_json(message: CbcMessage, options: EcbeOptions) -> dict[str, Any]:
    """The ECBE JSON object for ``message`` (the body of a create or a capcast replace).

    Raises:
        ScopeNotSupported: a cell list for a CBC of the osmo-cbc dialect.

    """
    if message.cells is None:
        scope: dict[str, Any] = {"scope_plmn": {}}
    elif options.dialect is Dialect.OSMO_CBC:
        raise ScopeNotSupported(
            f"osmo-cbc accepts only a PLMN-wide scope (scope_plmn), but message "
            f"{message.message_id} targets {len(message.cells)} cell(s), not the operator's "
            "whole network; refusing rather than broadcasting to every cell. Use a CBC of "
            "the capcast dialect (cell list in the scope) or SMPP broadcast for this operator",
            cells=len(message.cells))
    else:
        scope = {"scope_cell_list": {"cells": [cell.text for cell in message.cells]}}
    document: dict[str, Any] = {
        "cbe_name": options.cbe_name,
        "category": message.category.value,
        "repetition_period": message.repetition_period,
        "num_of_bcast": message.num_broadcasts,
    }
    if message.warning_period is not None:
        document["warning_period_sec"] = message.warning_period
    document["scope"] = scope
    document["smscb_message"] = {
        "message_id": message.message_id,
        "serial_nr": _serial_json(message.serial_number, options.serial_form),
        "payload": _payload_json(message.payload),
    }
    return document


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """An HTTP request to send to the CBC: method, path (below the base URL) and body."""

    method: str
    path: str
    #: The body, or None for no body.
    body: bytes | None = None
    #: Content-Type of the body.
    content_type: str | None = None
    #: The operation this request is (a step of).
    operation: Operation
    #: The message identifier concerned.
    message_id: int


def message_path(message_id: int) -> str:
    """``/api/ecbe/v1/message/<message_id>``."""
    _check_range("message_id", message_id, 0, 0xFFFF)
    return f"{MESSAGE_PATH}/{message_id}"


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def create_request(message: CbcMessage, options: EcbeOptions) -> HttpRequest:
    """``POST /api/ecbe/v1/message`` with the message as JSON.

    Raises:
        ScopeNotSupported: a cell list for a CBC of the osmo-cbc dialect.

    """
    return HttpRequest(method="POST", path=MESSAGE_PATH,
                       body=_json_bytes(message_to_json(message, options)),
                       content_type="application/json", operation=Operation.CREATE,
                       message_id=message.message_id)


def replace_request(message: CbcMessage, options: EcbeOptions) -> HttpRequest:
    """``PUT /api/ecbe/v1/message/<id>`` (capcast dialect) with the new version of the message.

    Raises:
        LocalProtocolError: the osmo-cbc dialect has no replace (use delete + create).

    """
    if options.dialect is not Dialect.CAPCAST:
        raise LocalProtocolError("osmo-cbc has no replace operation: delete the message and "
                                 "create the new version")
    return HttpRequest(method="PUT", path=message_path(message.message_id),
                       body=_json_bytes(message_to_json(message, options)),
                       content_type="application/json", operation=Operation.REPLACE,
                       message_id=message.message_id)


def delete_request(message_id: int) -> HttpRequest:
    """``DELETE /api/ecbe/v1/message/<message_id>`` (no body)."""
    return HttpRequest(method="DELETE", path=message_path(message_id),
                       operation=Operation.DELETE, message_id=message_id)


# --- responses ----------------------------------------------------------------------------


class CbcRequestRefused(CbcError):
    """400: the CBC could not use the request; ``reason`` is its explanation."""

    def __init__(self, message: str, *, reason: str, message_id: int | None = None,
                 status: int = 400, body: str | None = None, operator: str | None = None,
                 link: str | None = None) -> None:
        self.reason = reason
        self.message_id = message_id
        super().__init__(message, status=status, body=body, operator=operator, link=link)


class _CbcIdError(CbcError):
    def __init__(self, message: str, *, message_id: int | None, status: int | None = None,
                 body: str | None = None, operator: str | None = None,
                 link: str | None = None) -> None:
        self.message_id = message_id
        super().__init__(message, status=status, body=body, operator=operator, link=link)


class CbcUnknownMessage(_CbcIdError):
    """404: the CBC has no active message with this identifier."""


class CbcMessageActive(_CbcIdError):
    """409: a message with this identifier is still active on the CBC.

    osmo-cbc keys messages by message identifier alone: a second alert on the
    same channel conflicts until the first is deleted (or replaced).
    """


class CbcIllegalState(_CbcIdError):
    """500: the CBC refused the operation in the message's current state.

    osmo-cbc answers "Illegal FSM event" when, for example, a delete arrives
    while the create of the same message is still waiting for its peers.
    Usually transient: retry after the pending operation has finished.
    """


class CbcNotImplemented(_CbcIdError):
    """501: the CBC does not implement the operation."""


class CbcUnexpectedStatus(_CbcIdError, RemoteProtocolError):
    """Any other HTTP status (a reverse proxy's 502, a redirect, ...)."""


class CbcUnreachable(_CbcIdError, ConnectionLost):
    """No connection to the CBC could be made (refused, unreachable, connect timeout).

    Nothing was sent, so nothing happened on the CBC.
    """


class CbcTimeout(_CbcIdError, GatewayTimeout):
    """The CBC did not answer in time, or the connection broke after the request was sent.

    The outcome is unknown: the operation may have taken effect.
    """


class ReplaceIncomplete(_CbcIdError):
    """An osmo-cbc replace deleted the old message but could not create the new one.

    The channel is silent until the replace is retried (safe: the delete step
    then finds nothing and the create follows). ``cause`` is the create's error.
    """

    def __init__(self, message: str, *, message_id: int | None, cause: CbcError,
                 operator: str | None = None, link: str | None = None) -> None:
        self.cause = cause
        super().__init__(message, message_id=message_id, status=cause.status, body=cause.body,
                         operator=operator, link=link)


def _channel(message_id: int) -> str:
    """``4370`` with the channel's name when it is a CMAS / EU-Alert identifier."""
    try:
        name = MessageIdentifier(message_id).name.lower().replace("_", " ")
    except ValueError:
        return str(message_id)
    return f"{message_id} ({name})"


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "replace").strip()


def interpret_response(operation: Operation, status: int, body: bytes, *, message_id: int,
                       after_unknown: bool = False, endpoint: str | None = None,
                       operator: str | None = None) -> Confirmation:
    """What an ECBE answer means, or the error it is.

    ``after_unknown`` is True when an earlier attempt of the same operation got
    no answer (timeout, dropped connection): then a 409 to a create means the
    earlier create landed, and a 404 to a delete that the earlier delete did.
    ``endpoint`` and ``operator`` go into the errors.

    Raises:
        CbcRequestRefused: 400, with the CBC's reason.
        CbcUnknownMessage: 404 (to a replace, or to a delete without ``after_unknown``).
        CbcMessageActive: 409 (to a create without ``after_unknown``, or a replace).
        CbcIllegalState: 500.
        CbcNotImplemented: 501.
        CbcUnexpectedStatus: any other non-2xx status.

    """
    text = _body_text(body)
    where = f"CBC {endpoint}" if endpoint else "the CBC"
    who = f" (operator {operator})" if operator else ""
    kwargs: dict[str, Any] = {"status": status, "body": text, "operator": operator,
                              "link": endpoint}
    what = f"{operation.value} of message {message_id}"
    if 200 <= status < 300:
        return Confirmation.ACCEPTED
    if status == 409 and operation is Operation.CREATE and after_unknown:
        return Confirmation.EARLIER_ATTEMPT
    if status == 404 and operation is Operation.DELETE and after_unknown:
        return Confirmation.EARLIER_ATTEMPT
    if status == 400:
        hint = ""
        if "scope_plmn" in text:
            hint = " (this CBC accepts only PLMN-wide messages: use the osmo-cbc dialect's " \
                   "whole-network scope, or a CBC of the capcast dialect for cell lists)"
        raise CbcRequestRefused(f"{where}{who} refused the {what}: {text or '(no reason)'}"
                                f"{hint}", reason=text, message_id=message_id, **kwargs)
    if status == 404:
        raise CbcUnknownMessage(f"{where}{who} has no active message {message_id} "
                                f"({operation.value}: {text or 'Unknown message ID'})",
                                message_id=message_id, **kwargs)
    if status == 409:
        raise CbcMessageActive(
            f"{where}{who} already has an active message with identifier "
            f"{_channel(message_id)} ({text or 'Could not allocate'}): the CBC keys messages "
            "by message identifier alone, so another alert on this channel is still on the "
            "air; delete or replace it first",
            message_id=message_id, **kwargs)
    if status == 500:
        raise CbcIllegalState(
            f"{where}{who} refused the {what} in the message's current state "
            f"({text or 'Internal Server Error'}); an earlier operation on this identifier "
            "may still be in progress", message_id=message_id, **kwargs)
    if status == 501:
        raise CbcNotImplemented(f"{where}{who} does not implement the {operation.value} "
                                f"operation ({text or 'Not Implemented'})",
                                message_id=message_id, **kwargs)
    raise CbcUnexpectedStatus(f"{where}{who} answered the {what} with HTTP {status}: "
                              f"{text[:200] or '(empty body)'}", message_id=message_id, **kwargs)


# --- JSON: parsing (what osmo-cbc accepts, with its error strings) ---------------------------


class EcbeRequestError(RemoteProtocolError):
    """A request body a CBC refuses; ``reason`` is the text a CBC answers with (HTTP 400)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


_INT64: Final = (-(1 << 63), (1 << 63) - 1)


def _parse_int(text: str) -> int:
    value = int(text)
    if not _INT64[0] <= value <= _INT64[1]:
        # jansson refuses integers beyond 64 bits: the whole body is not JSON to it.
        raise ValueError("integer too large")
    return value


def parse_body(content_type: str | None, body: bytes) -> object:
    """The JSON document of a request body, as osmo-cbc (ulfius + jansson) reads it.

    The Content-Type must contain ``application/json``; the body must be JSON.

    Raises:
        EcbeRequestError: ``REST: No JSON Body`` otherwise.

    """
    if content_type is None or "application/json" not in content_type:
        raise EcbeRequestError("REST: No JSON Body")
    try:
        return json.loads(body.decode("utf-8"), parse_int=_parse_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EcbeRequestError("REST: No JSON Body") from None


class _Missing(Exception):
    """The key is absent (jansson ENOENT)."""


class _Invalid(Exception):
    """The key is there but not an integer in range (EINVAL / ERANGE)."""


def _int(parent: object, key: str, low: int, high: int) -> int:
    """osmo-cbc ``json_get_integer_range``: ENOENT if absent, else an integer in range."""
    if not isinstance(parent, dict):
        raise _Invalid(key)
    if key not in parent:
        raise _Missing(key)
    value = parent[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Invalid(key)
    return value


def _opt_int(parent: object, key: str, low: int, high: int, error: str) -> int | None:
    try:
        return _int(parent, key, low, high)
    except _Missing:
        return None
    except _Invalid:
        raise EcbeRequestError(error) from None


def _str(parent: object, key: str) -> str | None:
    """osmo-cbc ``json_get_string``: None unless the key holds a string."""
    if isinstance(parent, dict):
        value = parent.get(key)
        if isinstance(value, str):
            return value
    return None


def _get(parent: object, key: str) -> object | None:
    """Jansson ``json_object_get``: None for a non-object parent or an absent key."""
    return parent.get(key) if isinstance(parent, dict) else None


_HEX_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _parse_serial(value: object) -> tuple[int, SerialForm]:
    if not isinstance(value, dict):
        raise EcbeRequestError("'serial_nr' must be present and an object")
    try:
        return _int(value, "serial_nr_encoded", 0, 0xFFFF), SerialForm.ENCODED
    except _Invalid:
        raise EcbeRequestError(
            "Either 'serial_nr_encoded' or 'serial_nr_decoded' are mandatory") from None
    except _Missing:
        pass
    decoded = value.get("serial_nr_decoded")
    if decoded is None:
        raise EcbeRequestError("Either 'serial_nr_encoded' or 'serial_nr_decoded' are mandatory")
    scope_name = _str(decoded, "geo_scope")
    if scope_name is None:
        raise EcbeRequestError("'geo_scope' is mandatory")
    if scope_name not in _GEO_SCOPES:
        raise EcbeRequestError("'geo_scope' is invalid")
    try:
        # osmo-cbc allows 1024 here (off by one) and masks it to 0.
        code = _int(decoded, "msg_code", 0, 1024)
    except (_Missing, _Invalid):
        raise EcbeRequestError("'msg_code' is out of range") from None
    try:
        update = _int(decoded, "update_nr", 0, 15)
    except (_Missing, _Invalid):
        raise EcbeRequestError("'update_nr' is out of range") from None
    serial = compose.encode_serial_number(geo_scope=_GEO_SCOPES[scope_name],
                                          message_code=code & 0x3FF, update_number=update)
    return serial, SerialForm.DECODED


def _parse_payload_decoded(value: object) -> DecodedPayload:
    charset = _str(value, "character_set")
    if charset is None:
        raise EcbeRequestError("Currently 'character_set' is mandatory")
    language = _str(value, "language")
    if language is not None and len(language.encode("utf-8")) > 2:
        raise EcbeRequestError("Only two-digit 'language' code is supported")
    dcs_class = _opt_int(value, "dcs_class", 0, 3, "'dcs_class' out of range")
    data = _str(value, "data_utf8")
    if data is None:
        raise EcbeRequestError("'data_utf8' is mandatory")
    try:
        character_set = CharacterSet(charset)
    except ValueError:
        raise EcbeRequestError("Invalid 'character_set'") from None
    return DecodedPayload(text=data, character_set=character_set, language=language,
                          dcs_class=dcs_class)


def _parse_payload_encoded(value: object) -> EncodedPayload:
    try:
        dcs = _int(value, "dcs", 0, 255)
    except (_Missing, _Invalid):
        raise EcbeRequestError("'dcs' out of range") from None
    pages = _get(value, "pages")
    if not isinstance(pages, list):
        raise EcbeRequestError("'pages' absent or not an array")
    if not 1 <= len(pages) <= _MAX_PAGES:
        raise EcbeRequestError("'pages' array size out of range")
    data: list[bytes] = []
    for page in pages:
        if not isinstance(page, str):
            raise EcbeRequestError("'pages' array must contain strings")
        if len(page) > 2 * _PAGE_OCTETS:
            raise EcbeRequestError(
                "'pages' actual data array must contain strings up to 82 hex nibbles")
        if not _HEX_RE.fullmatch(page):
            raise EcbeRequestError("'pages' array must contain hex strings")
        data.append(bytes.fromhex(page))
    return EncodedPayload(dcs=dcs, pages=tuple(data))


def _parse_payload_etws(value: object) -> EtwsPayload:
    warning = _get(value, "warning_type")
    if not isinstance(warning, dict):
        raise EcbeRequestError("'warning_type' must be object")
    try:
        warning_type = _int(warning, "warning_type_encoded", 0, 255)
    except _Invalid:
        raise EcbeRequestError("either 'warning_type_encoded' or 'warning_type_decoded' "
                               "must be present") from None
    except _Missing:
        name = warning.get("warning_type_decoded")
        if name is None:
            raise EcbeRequestError("either 'warning_type_encoded' or 'warning_type_decoded' "
                                   "must be present") from None
        if not isinstance(name, str):
            raise EcbeRequestError("'warning_type_decoded' is not a string") from None
        if name not in _ETWS_WARNING_TYPES:
            raise EcbeRequestError("'warning_type_decoded' is invalid") from None
        warning_type = _ETWS_WARNING_TYPES[name]
    info = _str(value, "warning_sec_info")
    security: bytes | None = None
    if info is not None:
        if not _HEX_RE.fullmatch(info) or len(info) > 2 * _ETWS_SECURITY_OCTETS:
            raise EcbeRequestError("'warnin_sec_info' must be hex string")  # sic, osmo-cbc
        security = bytes.fromhex(info)
    return EtwsPayload(warning_type=warning_type,
                       emergency_user_alert=_get(value, "emergency_user_alert") is True,
                       popup_on_display=_get(value, "popup_on_display") is True,
                       warning_sec_info=security)


def _parse_payload(value: object) -> Payload:
    if not isinstance(value, dict):
        raise EcbeRequestError("'payload' must be JSON object")
    if "payload_encoded" in value:
        return _parse_payload_encoded(value["payload_encoded"])
    if "payload_decoded" in value:
        return _parse_payload_decoded(value["payload_decoded"])
    if "payload_etws" in value:
        return _parse_payload_etws(value["payload_etws"])
    raise EcbeRequestError(
        "'payload_type_encoded', 'payload_type_decoded' or 'payload_etws' must be present")


def _parse_scope(value: object, dialect: Dialect) -> tuple[CellId, ...] | None:
    has_plmn = isinstance(value, dict) and "scope_plmn" in value
    has_cells = isinstance(value, dict) and "scope_cell_list" in value
    if dialect is Dialect.OSMO_CBC:
        if not has_plmn:
            raise EcbeRequestError("CBCMSG only 'scope_plmn' supported")
        return None
    if not has_cells:
        if not has_plmn:
            raise EcbeRequestError("CBCMSG 'scope' must hold 'scope_plmn' or "
                                   "'scope_cell_list'")
        return None
    if has_plmn:
        raise EcbeRequestError("CBCMSG 'scope' must hold only one of 'scope_plmn' and "
                               "'scope_cell_list'")
    cells = _get(_get(value, "scope_cell_list"), "cells")
    if not isinstance(cells, list):
        raise EcbeRequestError("CBCMSG 'scope_cell_list' must be an object with a 'cells' "
                               "array")
    if not cells:
        raise EcbeRequestError("CBCMSG 'scope_cell_list' must name at least one cell")
    parsed: list[CellId] = []
    for index, text in enumerate(cells):
        try:
            parsed.append(parse_cell_id(text))
        except ValueError as exc:
            raise EcbeRequestError(f"CBCMSG 'scope_cell_list' cell {index}: {exc}") from None
    return _cell_tuple(parsed)


def parse_message(document: object, *, dialect: Dialect) -> ParsedMessage:
    """Read a create (or capcast replace) body as a CBC of ``dialect`` does.

    In the osmo-cbc dialect this follows ``json2cbc_message`` of osmo-cbc's
    ``src/rest_api.c`` check for check, in the same order and with the same
    error strings (typos included: ``'repetiton_period'``), and accepts what it
    accepts (a non-string ``category`` counts as absent, ``msg_code`` 1024).
    The capcast dialect accepts all of that plus ``scope_cell_list``.

    Raises:
        EcbeRequestError: with the reason a CBC answers (HTTP 400).

    """
    if not isinstance(document, dict):
        raise EcbeRequestError("CBCMSG must be JSON object")
    cbe_name = _str(document, "cbe_name")
    if cbe_name is None:
        raise EcbeRequestError("CBCMSG 'cbe_name' is mandatory")
    category_name = _str(document, "category")
    category = Category.NORMAL
    if category_name is not None:
        try:
            category = Category(category_name)
        except ValueError:
            raise EcbeRequestError("CBCMSG 'category' unknown") from None
    try:
        repetition = _int(document, "repetition_period", 0, _MAX_REPETITION_UNITS)
    except _Missing:
        raise EcbeRequestError("CBCMSG 'repetiton_period' is mandatory") from None
    except _Invalid:
        raise EcbeRequestError("CBCMSG 'repetiton_period' out of range") from None
    broadcasts = _opt_int(document, "num_of_bcast", 0, 0xFFFF,
                          "CBCMSG 'num_of_bcast' out of range")
    warning = _opt_int(document, "warning_period_sec", 0, 0xFFFF,
                       "CBCMSG 'warning_period_sec' out of range")
    if "scope" not in document:
        raise EcbeRequestError("CBCMSG 'scope' is mandatory")
    cells = _parse_scope(document["scope"], dialect)
    smscb = document.get("smscb_message")
    if smscb is None:
        raise EcbeRequestError("CBCMSG 'smscb_message' is mandatory")
    if not isinstance(smscb, dict):
        raise EcbeRequestError("not a JSON object")
    if "serial_nr" not in smscb:
        raise EcbeRequestError("serial_nr is mandatory")
    serial, form = _parse_serial(smscb["serial_nr"])
    try:
        message_id = _int(smscb, "message_id", 0, 0xFFFF)
    except (_Missing, _Invalid):
        raise EcbeRequestError("message_id out of range") from None
    payload = _parse_payload(smscb.get("payload"))
    message = CbcMessage(message_id=message_id, serial_number=serial, payload=payload,
                         repetition_period=repetition, num_broadcasts=broadcasts or 0,
                         warning_period=warning, category=category, cells=cells)
    return ParsedMessage(cbe_name=cbe_name, message=message, serial_form=form)


def parse_message_id(text: str) -> int | None:
    """The message id of a ``/message/:message_id`` path as osmo-cbc reads it (C ``atoi``).

    Leading blanks, an optional sign and the leading digits count; anything
    else reads as 0 (so ``/message/abc`` is message 0). Returns None for a value
    outside 0..65535, which osmo-cbc answers with 400.
    """
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)", text)
    assert match is not None  # the pattern matches any string
    digits = match[2]
    value = int(digits) if digits else 0
    if match[1] == "-":
        value = -value
    return value if 0 <= value <= 0xFFFF else None
