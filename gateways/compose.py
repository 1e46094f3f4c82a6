"""Compose a CAP alert into what the gateways send: SMS text, cell-broadcast pages, channels.

Per info block (one per language) :func:`compose` produces

* an :class:`SmsText` for location-based SMS (at most ``sms_max_segments``
  segments), and
* a :class:`BroadcastText` for cell broadcast (at most ``cb_max_pages`` pages)
  with its TS 23.041 message identifier (see :mod:`gateways.channels`),

plus one :class:`~gateways.channels.SerialNumber` for the alert. The result, a
:class:`ComposedAlert`, is plain data with ``to_json()`` / ``from_json()`` so
the dispatcher can store it.

Which text:

1. The IPAWS parameters ``CMAMlongtext`` (360 characters) then ``CMAMtext``
   (90), written by the alert's author for exactly this use, when one fits the
   channel as it is (the longer first).
2. Otherwise a text built from headline (or event), area description, expiry
   (in the sender's UTC offset, formatted in the language's convention),
   description and instruction (the description can be left out per channel);
   a long list of areas is cut to the first names and a count ("(+163)").
3. When it does not fit, it is shortened on word boundaries: description
   first, then the area list, then instruction, then headline; the expiry
   stays. Limits are measured in septets or UTF-16 code units (through
   :func:`gateways.text.sms_segment_count` and :func:`~gateways.text.cbs_page_count`),
   and every cut falls between code points, so never inside a GSM escape
   sequence or a surrogate pair.

Exercise and Test alerts are marked at the start of every text ("TEST: ",
"EXERCISE: ", localized), and their broadcasts only ever use test channels.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final

from cap.model import Alert, Info, MsgType, Status
from gateways.channels import (
    AuthorityChannels,
    GeographicalScope,
    SerialNumber,
    message_identifier,
    serial_number,
)
from gateways.errors import CompositionError
from gateways.text import (
    CBS_MAX_PAGES,
    Alphabet,
    CbsPages,
    SmsSegments,
    cbs_page_count,
    cbs_pages,
    normalize_language,
    shorten,
    sms_segment_count,
    sms_segments,
)

__all__ = [
    "BroadcastText",
    "ComposeOptions",
    "ComposedAlert",
    "SmsText",
    "TextSource",
    "build_text",
    "compose",
    "decode_serial_number",
    "encode_serial_number",
    "format_expiry",
]

logger = logging.getLogger(__name__)

#: The IPAWS parameter with the 90-character WEA text.
CMAM_TEXT: Final = "CMAMtext"
#: The IPAWS parameter with the 360-character WEA text.
CMAM_LONG_TEXT: Final = "CMAMlongtext"


class TextSource(Enum):
    """Where a channel text came from."""

    #: The IPAWS ``CMAMlongtext`` parameter.
    CMAM_LONG_TEXT = "CMAMlongtext"
    #: The IPAWS ``CMAMtext`` parameter.
    CMAM_TEXT = "CMAMtext"
    #: Built from headline, area, expiry, instruction (and description).
    COMPOSED = "composed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposeOptions:
    """How to compose; the defaults suit a national alerting service.

    ``primary_language`` is the language (ISO 639-1, e.g. ``"de"``) whose info
    blocks go on the base channels; the other languages go on the
    additional-language channels. Without it, the first info block's language
    is primary. ``overrides`` maps an alert sender to its own channel choices.
    """

    #: At most this many SMS segments per message (1..255).
    sms_max_segments: int = 3
    #: At most this many cell-broadcast pages (1..15).
    cb_max_pages: int = CBS_MAX_PAGES
    primary_language: str | None = None
    overrides: Mapping[str, AuthorityChannels] = field(default_factory=dict)
    #: Geographical scope of the serial number (PLMN wide: shown once per network).
    geo_scope: GeographicalScope = GeographicalScope.PLMN_WIDE
    #: Whether the built SMS / cell-broadcast texts include the description.
    sms_description: bool = True
    cb_description: bool = True
    #: Whether to write the UTC offset after the expiry time ("UTC-5").
    show_offset: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.sms_max_segments <= 255:
            raise ValueError(f"sms_max_segments must be 1..255, not {self.sms_max_segments}")
        if not 1 <= self.cb_max_pages <= CBS_MAX_PAGES:
            raise ValueError(f"cb_max_pages must be 1..{CBS_MAX_PAGES}, not {self.cb_max_pages}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsText:
    """The location-based SMS text of one info block."""

    #: The info block's language, as in CAP (``"en-US"``).
    language: str
    text: str
    source: TextSource
    #: True when the text had to be shortened to fit.
    shortened: bool
    #: The segments with concatenation reference 0; the SMPP client assigns real
    #: references per recipient, the segment count and alphabet stay the same.
    segments_preview: SmsSegments
    #: Nothing is sent after this moment.
    expires: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the segments as count, alphabet and data_coding)."""
        seg = self.segments_preview
        return {"language": self.language, "text": self.text, "source": self.source.value,
                "shortened": self.shortened, "expires": _iso(self.expires),
                "segments": {"count": seg.count, "alphabet": seg.alphabet.value,
                             "data_coding": seg.data_coding}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SmsText:
        """Rebuild from :meth:`to_json` output (the segments are recomputed from the text)."""
        text = str(data["text"])
        return cls(language=str(data["language"]), text=text,
                   source=TextSource(data["source"]), shortened=bool(data["shortened"]),
                   segments_preview=sms_segments(text, reference=0),
                   expires=_from_iso(data.get("expires")))


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastText:
    """The cell-broadcast message of one info block."""

    #: The info block's language, as in CAP (``"de-DE"``).
    language: str
    text: str
    source: TextSource
    #: True when the text had to be shortened to fit.
    shortened: bool
    #: The encoded pages with DCS and language.
    pages: CbsPages
    #: TS 23.041 message identifier (4370-4399 or an authority's own).
    message_identifier: int
    #: True when this info block is not in the primary language.
    additional_language: bool
    #: Nothing is broadcast after this moment.
    expires: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the pages as hex, ready for ECBE ``payload_encoded``."""
        return {"language": self.language, "text": self.text, "source": self.source.value,
                "shortened": self.shortened, "message_identifier": self.message_identifier,
                "additional_language": self.additional_language,
                "expires": _iso(self.expires),
                "pages": {"alphabet": self.pages.alphabet.value, "dcs": self.pages.dcs,
                          "language": self.pages.language, "hex": self.pages.hex_pages(),
                          "texts": list(self.pages.texts)}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BroadcastText:
        """Rebuild from :meth:`to_json` output (the pages are taken as stored)."""
        pages = data["pages"]
        return cls(language=str(data["language"]), text=str(data["text"]),
                   source=TextSource(data["source"]), shortened=bool(data["shortened"]),
                   pages=CbsPages(alphabet=Alphabet(pages["alphabet"]), dcs=int(pages["dcs"]),
                                  language=pages["language"],
                                  pages=tuple(bytes.fromhex(h) for h in pages["hex"]),
                                  texts=tuple(str(t) for t in pages["texts"])),
                   message_identifier=int(data["message_identifier"]),
                   additional_language=bool(data["additional_language"]),
                   expires=_from_iso(data.get("expires")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposedAlert:
    """Everything the gateways need to send one CAP alert.

    ``broadcasts`` and ``sms`` are empty for alerts that are never sent (Draft,
    System, Ack, Error); ``serial_number`` is then None as well.
    """

    sender: str
    identifier: str
    sent: datetime
    status: Status
    msg_type: MsgType
    serial_number: SerialNumber | None
    broadcasts: tuple[BroadcastText, ...]
    sms: tuple[SmsText, ...]

    @property
    def sendable(self) -> bool:
        """Whether there is any text to send.

        A Cancel without info blocks has none but still cancels: the dispatcher
        deletes what the chain put on the air (its identifiers are in its store).
        """
        return bool(self.broadcasts or self.sms)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` works on it as is)."""
        return {"sender": self.sender, "identifier": self.identifier, "sent": _iso(self.sent),
                "status": self.status.value, "msg_type": self.msg_type.value,
                "serial_number": (self.serial_number.to_json()
                                  if self.serial_number is not None else None),
                "broadcasts": [b.to_json() for b in self.broadcasts],
                "sms": [s.to_json() for s in self.sms]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComposedAlert:
        """Rebuild from :meth:`to_json` output."""
        sent = _from_iso(data["sent"])
        if sent is None:
            raise ValueError("'sent' is missing")
        serial = data.get("serial_number")
        return cls(sender=str(data["sender"]), identifier=str(data["identifier"]), sent=sent,
                   status=Status(data["status"]), msg_type=MsgType(data["msg_type"]),
                   serial_number=SerialNumber.from_json(serial) if serial else None,
                   broadcasts=tuple(BroadcastText.from_json(b) for b in data["broadcasts"]),
                   sms=tuple(SmsText.from_json(s) for s in data["sms"]))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value is not None else None


# --- serial number helpers for the CBC gateway ---------------------------------------------


def encode_serial_number(*, geo_scope: int, message_code: int, update_number: int) -> int:
    """The 16-bit serial number of the given fields (TS 23.041 §9.4.1.2.1)."""
    return SerialNumber(geo_scope=GeographicalScope(geo_scope), message_code=message_code,
                        update_number=update_number).pack()


def decode_serial_number(value: int) -> SerialNumber:
    """The fields of a 16-bit serial number."""
    return SerialNumber.unpack(value)


# --- language conventions ------------------------------------------------------------------

# (area label, expiry label, status markers) per ISO 639-1 language. Labels avoid
# characters outside the GSM alphabet where the language's usual text avoids them, so a
# label alone never forces a GSM-7 text into UCS-2 (which halves the room).
_LABELS: Final[dict[str, tuple[str, str]]] = {
    "en": ("Area", "Until"),
    "de": ("Gebiet", "Bis"),
    "fr": ("Zone", "Jusqu'au"),
    "es": ("Zona", "Hasta el"),
    "it": ("Zona", "Fino al"),
    "nl": ("Gebied", "Tot"),
    "pt": ("Local", "Até"),
    "sv": ("Område", "Till"),
    "da": ("Område", "Til"),
    "no": ("Område", "Til"),
    "fi": ("Alue", "Voimassa"),
    "pl": ("Obszar", "Do"),
    "cs": ("Oblast", "Do"),
    "hu": ("Terület", "Eddig"),
    "tr": ("Bölge", "Bitiş"),
    "el": ("Περιοχή", "Έως"),
    "ru": ("Район", "До"),
    "ar": ("المنطقة", "حتى"),
    "he": ("אזור", "עד"),
    "is": ("Svæði", "Til"),
}
_MARKERS: Final[dict[str, tuple[str, str]]] = {
    # (Test, Exercise)
    "en": ("TEST", "EXERCISE"),
    "de": ("TEST", "ÜBUNG"),
    "fr": ("TEST", "EXERCICE"),
    "es": ("PRUEBA", "SIMULACRO"),
    "it": ("TEST", "ESERCITAZIONE"),
    "nl": ("TEST", "OEFENING"),
    "pt": ("TESTE", "EXERCÍCIO"),
    "pl": ("TEST", "ĆWICZENIA"),
    "ru": ("ТЕСТ", "УЧЕНИЯ"),
    "ar": ("اختبار", "تمرين"),
}
_MONTHS_EN: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                     "Nov", "Dec")
# Area descriptions that name no place (DWD writes this for its polygon-only area).
_PLACEHOLDER_AREAS: Final = frozenset({"polygonal event area"})
#: Characters of area names listed before the rest are only counted.
AREA_BUDGET: Final = 100


def _offset_suffix(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None:  # pragma: no cover - model datetimes are aware
        return ""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f" UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")


def format_expiry(value: datetime, language: str | None, *, show_offset: bool = False) -> str:
    """``value`` in its own UTC offset (the sender's), in the language's usual short form.

    English: ``Jun 23 4:00 PM``; German: ``23.06. 16:00 Uhr``; French:
    ``23/06 à 16h00``; Spanish ``23/06 a las 16:00``; Italian ``23/06 ore 16:00``;
    others ``23.06. 16:00``. No conversion to another zone: the sender wrote
    the time for its audience.
    """
    lang = normalize_language(language)
    day, month, hour, minute = value.day, value.month, value.hour, value.minute
    if lang == "en":
        hour12 = hour % 12 or 12
        text = f"{_MONTHS_EN[month - 1]} {day} {hour12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
    elif lang == "de":
        text = f"{day:02d}.{month:02d}. {hour:02d}:{minute:02d} Uhr"
    elif lang == "fr":
        text = f"{day:02d}/{month:02d} à {hour:02d}h{minute:02d}"
    elif lang == "es":
        text = f"{day:02d}/{month:02d} a las {hour:02d}:{minute:02d}"
    elif lang == "it":
        text = f"{day:02d}/{month:02d} ore {hour:02d}:{minute:02d}"
    else:
        text = f"{day:02d}.{month:02d}. {hour:02d}:{minute:02d}"
    return text + (_offset_suffix(value) if show_offset else "")


def _marker(status: Status, language: str | None) -> str:
    if status not in (Status.TEST, Status.EXERCISE):
        return ""
    test, exercise = _MARKERS.get(normalize_language(language) or "en", _MARKERS["en"])
    return test if status is Status.TEST else exercise


def _with_marker(text: str, marker: str) -> str:
    if not marker or text.casefold().startswith(marker.casefold()):
        return text
    return f"{marker}: {text}"


# --- building and fitting texts ------------------------------------------------------------


def _clean(value: str | None) -> str:
    """Collapse whitespace (CAP text often carries hard line breaks) and trailing dots."""
    if not value:
        return ""
    return " ".join(value.split()).rstrip(". ")


def _areas(info: Info, budget: int = AREA_BUDGET) -> str:
    """The area descriptions, joined; beyond ``budget`` characters the rest is counted.

    A national warning can name hundreds of municipalities (DWD: 169); listing
    them all would fill every page, and the geo-targeted recipients are in the
    area anyway. So the first names are kept and the others counted: "A, B (+167)".
    """
    names = [_clean(area.area_desc) for area in info.areas]
    unique = list(dict.fromkeys(
        n for n in names if n and n.casefold() not in _PLACEHOLDER_AREAS))
    kept: list[str] = []
    length = 0
    for name in unique:
        added = len(name) + (2 if kept else 0)
        if kept and length + added > budget:
            break
        kept.append(name)
        length += added
    rest = len(unique) - len(kept)
    return ", ".join(kept) + (f" (+{rest})" if rest else "")


@dataclass(frozen=True, slots=True)
class _Parts:
    headline: str
    area: str
    expiry: str
    instruction: str
    description: str


def _assemble(parts: _Parts, language: str | None, marker: str) -> str:
    area_label, until_label = _LABELS.get(normalize_language(language) or "en", _LABELS["en"])
    sentences = [parts.headline]
    if parts.area:
        sentences.append(f"{area_label}: {parts.area}")
    if parts.expiry:
        sentences.append(f"{until_label} {parts.expiry}")
    if parts.description:
        sentences.append(parts.description)
    if parts.instruction:
        sentences.append(parts.instruction)
    body = ""
    for sentence in sentences:
        if not sentence:
            continue
        if body:
            # A part shortened with "..." (or ending in ! ?) needs no extra full stop.
            body += " " if body.endswith((".", "!", "?", ":")) else ". "
        body += sentence
    if body and not body.endswith((".", "!", "?")):
        body += "."
    return _with_marker(body, marker)


def _parts(info: Info, *, description: bool, show_offset: bool) -> _Parts:
    return _Parts(
        headline=_clean(info.headline) or _clean(info.event),
        area=_areas(info),
        expiry=(format_expiry(info.expires, info.language, show_offset=show_offset)
                if info.expires is not None else ""),
        instruction=_clean(info.instruction),
        description=_clean(info.description) if description else "",
    )


# Shortened first to last. The expiry is never cut; the recipients are in the area
# (the channels are geo-targeted), so the area list goes before the instruction.
_SHRINK_ORDER: Final = ("description", "area", "instruction", "headline")


def build_text(info: Info, fits: Callable[[str], bool], *, status: Status = Status.ACTUAL,
               description: bool = False, show_offset: bool = False) -> tuple[str, bool]:
    """The text built from ``info`` that ``fits``, and whether it had to be shortened.

    The parts are headline (else event), area descriptions, expiry, description
    (if asked) and instruction, joined as sentences with the language's labels.
    When the whole does not fit, parts are shortened on word boundaries in the
    order description, area, instruction, headline.
    """
    parts = _parts(info, description=description, show_offset=show_offset)
    marker = _marker(status, info.language)
    full = _assemble(parts, info.language, marker)
    if fits(full):
        return full, False
    current = parts
    for name in _SHRINK_ORDER:
        value = getattr(current, name)
        if not value:
            continue

        def fits_with(candidate: str, _name: str = name, _base: _Parts = current) -> bool:
            trial = _replace(_base, _name, candidate)
            return fits(_assemble(trial, info.language, marker))

        current = _replace(current, name, shorten(value, fits_with))
        text = _assemble(current, info.language, marker)
        if fits(text):
            return text, True
    # Even the marker and expiry alone are too long (a tiny limit): cut the whole text.
    return shorten(_assemble(current, info.language, marker), fits), True


def _replace(parts: _Parts, name: str, value: str) -> _Parts:
    return dataclasses.replace(parts, **{name: value})


def _choose_text(info: Info, fits: Callable[[str], bool], *, status: Status,
                 description: bool, show_offset: bool) -> tuple[str, TextSource, bool]:
    marker = _marker(status, info.language)
    given = [(source, _with_marker(" ".join(value.split()), marker))
             for source, value in ((TextSource.CMAM_LONG_TEXT, info.parameter(CMAM_LONG_TEXT)),
                                   (TextSource.CMAM_TEXT, info.parameter(CMAM_TEXT)))
             if value and value.strip()]
    for source, text in given:
        if fits(text):
            return text, source, False
    if given:
        source, text = given[0]
        short = shorten(text, fits)
        if short:
            return short, source, True
    text, shortened = build_text(info, fits, status=status, description=description,
                                 show_offset=show_offset)
    return text, TextSource.COMPOSED, shortened


# --- compose -------------------------------------------------------------------------------


def _primary_language(alert: Alert, wanted: str | None) -> str | None:
    languages = [normalize_language(info.language) for info in alert.infos]
    if wanted is not None and normalize_language(wanted) in languages:
        return normalize_language(wanted)
    return languages[0] if languages else None


def compose(alert: Alert, *, options: ComposeOptions | None = None,
            previous_serial: SerialNumber | int | None = None,
            chain_root: tuple[str, str] | None = None,
            message_code: int | None = None) -> ComposedAlert:
    """Compose ``alert`` for SMS and cell broadcast.

    Args:
        alert: The CAP alert.
        options: Limits, primary language, overrides; defaults if None.
        previous_serial: The serial number the previous message of this alert's
            Update chain was broadcast with; an Update or Cancel increments it.
        chain_root: The (sender, identifier) of the chain's first alert, when
            the caller knows it (else taken from ``references``).
        message_code: A message code allocated by the caller (e.g. to avoid one
            in use); else derived from the chain root.

    Raises:
        CompositionError: a text does not fit even after shortening (a limit
            too small for the marker and expiry alone).

    """
    opts = options if options is not None else ComposeOptions()
    sendable = (alert.status not in (Status.DRAFT, Status.SYSTEM)
                and alert.msg_type not in (MsgType.ACK, MsgType.ERROR))
    if not sendable or not alert.infos:
        serial = None
        if sendable:
            serial = serial_number(alert, previous=previous_serial, root=chain_root,
                                   message_code=message_code, geo_scope=opts.geo_scope)
        return ComposedAlert(sender=alert.sender, identifier=alert.identifier, sent=alert.sent,
                             status=alert.status, msg_type=alert.msg_type,
                             serial_number=serial, broadcasts=(), sms=())
    serial = serial_number(alert, previous=previous_serial, root=chain_root,
                           message_code=message_code, geo_scope=opts.geo_scope)
    primary = _primary_language(alert, opts.primary_language)
    broadcasts: list[BroadcastText] = []
    sms: list[SmsText] = []
    for info in alert.infos:
        lang = normalize_language(info.language)
        additional = lang != primary
        identifier = message_identifier(alert, info, additional_language_block=additional,
                                        overrides=opts.overrides)
        if identifier is None:  # pragma: no cover - excluded by `sendable` above
            continue

        def fits_cb(text: str, _lang: str = info.language) -> bool:
            return cbs_page_count(text, language=_lang) <= opts.cb_max_pages

        def fits_sms(text: str) -> bool:
            return sms_segment_count(text) <= opts.sms_max_segments

        cb_text, cb_source, cb_short = _choose_text(
            info, fits_cb, status=alert.status, description=opts.cb_description,
            show_offset=opts.show_offset)
        sms_text, sms_source, sms_short = _choose_text(
            info, fits_sms, status=alert.status, description=opts.sms_description,
            show_offset=opts.show_offset)
        if not cb_text or not sms_text:
            raise CompositionError(
                f"info block {info.language!r}: no text fits "
                f"{opts.sms_max_segments} SMS segments / {opts.cb_max_pages} pages")
        broadcasts.append(BroadcastText(
            language=info.language, text=cb_text, source=cb_source, shortened=cb_short,
            pages=cbs_pages(cb_text, language=info.language, max_pages=opts.cb_max_pages),
            message_identifier=identifier, additional_language=additional,
            expires=info.expires))
        sms.append(SmsText(
            language=info.language, text=sms_text, source=sms_source, shortened=sms_short,
            segments_preview=sms_segments(sms_text, reference=0,
                                          max_segments=opts.sms_max_segments),
            expires=info.expires))
    logger.debug("composed alert", extra={"action": "compose", "alert_id": alert.identifier,
                                          "languages": [b.language for b in broadcasts]})
    return ComposedAlert(sender=alert.sender, identifier=alert.identifier, sent=alert.sent,
                         status=alert.status, msg_type=alert.msg_type, serial_number=serial,
                         broadcasts=tuple(broadcasts), sms=tuple(sms))
