"""Message text for mobile networks: GSM 03.38, UCS-2, SMS segments and cell-broadcast pages.

Sans-IO and pure: every function takes a ``str`` or ``bytes`` and returns
values, so the SMPP and CBC gateways and the composer share one definition of
"how long is this text on the air".

References (see also ``/work/shared/SPEC-NOTES.md`` sections 2 and 3):

* 3GPP TS 23.038 §6.2.1 (GSM 7-bit default alphabet), §6.2.1.1 (extension
  table: each character costs two septets, ``0x1B`` + code), §6.1.2.1.1
  (packing of septets into octets), §5 (CBS data coding scheme: language
  groups 0000 and 0010, ``0x0F``, ``0x10``/``0x11`` with a language indication).
* 3GPP TS 23.040 §9.2.3.24.1 (concatenation UDH ``05 00 03 ref total seq``;
  ``08 04 ref16 total seq`` with a 16-bit reference), giving 160/153 GSM-7
  septets and 70/67 UCS-2 characters per segment.
* 3GPP TS 23.041 §9.4.1.2.4 (a CBS page carries 82 octets of content; short
  content is padded with ``<CR>``), osmo-cbc ``SMSCB_RAW_PAGE_LEN 82`` and
  ``SMSCB_MAX_NUM_PAGES 15``.

Length limits are always measured on the air (septets for GSM-7, UTF-16 code
units for UCS-2), never in Python characters. Splitting works on whole code
points, and every GSM-7 extension character is one code point costing two
septets, so a split can never fall inside an escape sequence or a surrogate
pair.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from gateways.errors import TextEncodingError, TextTooLong

__all__ = [
    "CBS_MAX_PAGES",
    "CBS_PAGE_OCTETS",
    "CBS_PAGE_SEPTETS",
    "CBS_PAGE_UCS2_CHARS",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Alphabet",
    "CbsPages",
    "SmsSegments",
    "cbs_dcs",
    "cbs_page_count",
    "cbs_pages",
    "decode_cbs_pages",
    "detect_alphabet",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_pack",
    "gsm7_unpack",
    "is_gsm7",
    "normalize_language",
    "septet_length",
    "shorten",
    "sms_segment_count",
    "sms_segments",
    "ucs2_decode",
    "ucs2_encode",
    "ucs2_length",
]


class Alphabet(Enum):
    """The character set a message is sent in."""

    #: GSM 7-bit default alphabet with its extension table (TS 23.038 §6.2.1).
    GSM7 = "gsm7"
    #: UCS-2, sent as UTF-16-BE so that characters outside the BMP survive.
    UCS2 = "ucs2"


# TS 23.038 §6.2.1: the 128 characters of the default alphabet, by septet value.
# 0x1B is the escape to the extension table; it maps to no character of its own.
GSM7_BASIC: Final[str] = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1: the extension table, reached with 0x1B; each costs two septets.
GSM7_EXTENSION: Final[dict[str, int]] = {
    "\x0c": 0x0A,  # form feed (page break)
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_ESC: Final = 0x1B
_CR: Final = 0x0D

_BASIC_CODE: Final[dict[str, int]] = {ch: i for i, ch in enumerate(GSM7_BASIC) if i != _ESC}
_EXT_CHAR: Final[dict[int, str]] = {code: ch for ch, code in GSM7_EXTENSION.items()}
# str.translate tables: one for the septet values, one for the septet cost of each character.
_ENCODE_TABLE: Final[dict[int, str]] = {
    **{ord(ch): chr(code) for ch, code in _BASIC_CODE.items()},
    **{ord(ch): chr(_ESC) + chr(code) for ch, code in GSM7_EXTENSION.items()},
}
_GSM7_CHARS: Final[frozenset[str]] = frozenset(_BASIC_CODE) | frozenset(GSM7_EXTENSION)
_GSM7_RE: Final = re.compile(
    "[" + re.escape("".join(sorted(_GSM7_CHARS))) + "]*", re.DOTALL
)

#: Octets of content in one cell-broadcast page (TS 23.041 §9.4.1.2.4; osmo-cbc).
CBS_PAGE_OCTETS: Final = 82
#: GSM-7 septets in one page: floor(82 * 8 / 7).
CBS_PAGE_SEPTETS: Final = 93
#: UCS-2 code units in one page: 82 / 2.
CBS_PAGE_UCS2_CHARS: Final = 41
#: Maximum number of pages of one CBS message (TS 23.041 §9.4.1.2.3; osmo-cbc).
CBS_MAX_PAGES: Final = 15

# SMS user data capacity (TS 23.040 §9.2.3.24.1): single part / with the 6-octet UDH /
# with the 7-octet UDH of a 16-bit reference.
_SMS_SINGLE: Final = {Alphabet.GSM7: 160, Alphabet.UCS2: 70}
_SMS_MULTI8: Final = {Alphabet.GSM7: 153, Alphabet.UCS2: 67}
_SMS_MULTI16: Final = {Alphabet.GSM7: 152, Alphabet.UCS2: 66}

# TS 23.038 §5, CBS DCS: languages with their own GSM-7 code (groups 0000 and 0010).
_CBS_LANGUAGE_DCS: Final[dict[str, int]] = {
    "de": 0x00, "en": 0x01, "it": 0x02, "fr": 0x03, "es": 0x04, "nl": 0x05, "sv": 0x06,
    "da": 0x07, "pt": 0x08, "fi": 0x09, "no": 0x0A, "el": 0x0B, "tr": 0x0C, "hu": 0x0D,
    "pl": 0x0E,
    "cs": 0x20, "he": 0x21, "ar": 0x22, "ru": 0x23, "is": 0x24,
}
_DCS_GSM7_UNSPECIFIED: Final = 0x0F
_DCS_GSM7_LANGUAGE_INDICATION: Final = 0x10
_DCS_UCS2_LANGUAGE_INDICATION: Final = 0x11
# General data coding group 01xx: bits 3-2 = 10 (UCS-2), no class, uncompressed.
_DCS_UCS2_GENERAL: Final = 0x48
# Deprecated or alternative ISO 639-1 codes mapped to the one TS 23.038 knows.
_LANGUAGE_ALIASES: Final = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "ji": "yi"}


# --- alphabets and codecs ---------------------------------------------------------------


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM 7-bit default or extension table."""
    return _GSM7_RE.fullmatch(text) is not None


def detect_alphabet(text: str) -> Alphabet:
    """The alphabet ``text`` is sent in: GSM-7 iff every character is in the GSM tables.

    National language shift tables (TS 23.038 §6.2.1.2) are not used: network
    and handset support is uneven, so any other character means UCS-2.
    """
    return Alphabet.GSM7 if is_gsm7(text) else Alphabet.UCS2


def _first_unencodable(text: str) -> tuple[int, str]:
    for index, char in enumerate(text):
        if char not in _GSM7_CHARS:
            return index, char
    raise AssertionError("no unencodable character")  # pragma: no cover


def gsm7_encode(text: str) -> bytes:
    """Encode ``text`` as unpacked GSM-7 septets, one per octet (as SMPP carries them).

    Extension characters become ``0x1B`` followed by their code.

    Raises:
        TextEncodingError: (a ``ValueError``) naming the first character that
            is in neither table and its index.

    """
    if not is_gsm7(text):
        index, char = _first_unencodable(text)
        raise TextEncodingError(
            f"character {char!r} (U+{ord(char):04X}) at index {index} is not in the "
            "GSM 7-bit default alphabet or its extension table",
            char=char, index=index,
        )
    return text.translate(_ENCODE_TABLE).encode("latin-1")


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM-7 septets (one per octet) to text.

    Follows the receiver rules of TS 23.038 §6.2.1.1: an escape followed by a
    code with no extension character shows the default-table character of that
    code; an escape followed by another escape, or a trailing escape, shows a
    space.

    Raises:
        ValueError: an octet is above 0x7F (not a septet).

    """
    out: list[str] = []
    escaped = False
    for index, septet in enumerate(data):
        if septet > 0x7F:
            raise ValueError(f"octet 0x{septet:02X} at index {index} is not a septet")
        if escaped:
            escaped = False
            if septet == _ESC:
                out.append(" ")
            else:
                out.append(_EXT_CHAR.get(septet, GSM7_BASIC[septet]))
        elif septet == _ESC:
            escaped = True
        else:
            out.append(GSM7_BASIC[septet])
    if escaped:
        out.append(" ")
    return "".join(out)


def gsm7_pack(septets: bytes) -> bytes:
    """Pack septets into octets, least significant bit first (TS 23.038 §6.1.2.1.1).

    ``n`` septets need ``ceil(7 n / 8)`` octets; spare high bits of the last
    octet are zero.

    Raises:
        ValueError: a value is above 0x7F.

    """
    out = bytearray()
    acc = 0
    bits = 0
    for index, septet in enumerate(septets):
        if septet > 0x7F:
            raise ValueError(f"value 0x{septet:02X} at index {index} is not a septet")
        acc |= septet << bits
        bits += 7
        if bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def gsm7_unpack(data: bytes, count: int | None = None) -> bytes:
    """Unpack ``count`` septets from packed octets (the inverse of :func:`gsm7_pack`).

    Without ``count``, every whole septet in ``data`` is returned
    (``floor(8 len / 7)``), which may include a trailing zero septet from the
    padding bits; pass the septet count when it is known.

    Raises:
        ValueError: ``count`` is negative or more than ``data`` holds.

    """
    available = len(data) * 8 // 7
    if count is None:
        count = available
    if not 0 <= count <= available:
        raise ValueError(f"{len(data)} octets hold at most {available} septets, not {count}")
    out = bytearray()
    acc = 0
    bits = 0
    for octet in data:
        acc |= octet << bits
        bits += 8
        while bits >= 7 and len(out) < count:
            out.append(acc & 0x7F)
            acc >>= 7
            bits -= 7
        if len(out) == count:
            break
    return bytes(out)


def septet_length(text: str) -> int:
    """The number of septets ``text`` takes in GSM-7 (extension characters count 2).

    Raises:
        TextEncodingError: the text is not GSM-7 encodable.

    """
    return len(gsm7_encode(text))


def ucs2_encode(text: str) -> bytes:
    """Encode ``text`` as UTF-16-BE (surrogate pairs for characters outside the BMP).

    Raises:
        TextEncodingError: the text holds a lone surrogate, which UTF-16 cannot carry.

    """
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise TextEncodingError(
            f"character U+{ord(text[exc.start]):04X} at index {exc.start} "
            "is a lone surrogate and cannot be sent",
            char=text[exc.start], index=exc.start,
        ) from exc


def ucs2_decode(data: bytes) -> str:
    """Decode UTF-16-BE octets (the inverse of :func:`ucs2_encode`).

    Raises:
        ValueError: odd length or a broken surrogate pair.

    """
    return data.decode("utf-16-be")


def ucs2_length(text: str) -> int:
    """The number of UTF-16 code units of ``text`` (characters outside the BMP count 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _unit_cost(alphabet: Alphabet) -> Callable[[str], int]:
    """The on-air cost of one character: septets (GSM-7) or code units (UCS-2)."""
    if alphabet is Alphabet.GSM7:
        return lambda ch: 2 if ch in GSM7_EXTENSION else 1
    return lambda ch: 2 if ord(ch) > 0xFFFF else 1


def _units(text: str, alphabet: Alphabet) -> int:
    if alphabet is Alphabet.GSM7:
        return septet_length(text)
    return ucs2_length(text)


def _split(text: str, alphabet: Alphabet, capacity: int) -> list[str]:
    """Split ``text`` greedily into chunks of at most ``capacity`` units, on code points.

    A code point is never divided, so an escape sequence (one extension
    character) or a surrogate pair (one non-BMP character) stays whole.
    """
    cost = _unit_cost(alphabet)
    chunks: list[str] = []
    start = 0
    used = 0
    for index, char in enumerate(text):
        c = cost(char)
        if used + c > capacity:
            chunks.append(text[start:index])
            start = index
            used = 0
        used += c
    chunks.append(text[start:])
    return chunks


def _count_chunks(text: str, alphabet: Alphabet, capacity: int) -> int:
    """How many chunks :func:`_split` would make, without building them."""
    cost = _unit_cost(alphabet)
    count = 1
    used = 0
    for char in text:
        c = cost(char)
        if used + c > capacity:
            count += 1
            used = 0
        used += c
    return count


# --- SMS ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsSegments:
    """A text cut into SMS segments, ready for SMPP ``submit_sm``.

    Each part is the ``short_message``: the concatenation UDH (only when there
    is more than one part) followed by the payload. GSM-7 payloads are unpacked,
    one septet per octet, as SMPP carries them with ``data_coding`` 0x00;
    UCS-2 payloads are UTF-16-BE with ``data_coding`` 0x08.
    """

    alphabet: Alphabet
    #: SMPP data_coding: 0x00 (SMSC default alphabet, GSM-7) or 0x08 (UCS-2).
    data_coding: int
    #: The short_message of each segment (UDH + payload).
    parts: tuple[bytes, ...]
    #: True when the parts carry a UDH: set esm_class UDHI (0x40).
    udhi: bool
    #: The text carried by each segment.
    texts: tuple[str, ...]

    @property
    def count(self) -> int:
        """The number of segments (what the SMSC charges and the throughput limit counts)."""
        return len(self.parts)

    @property
    def esm_class(self) -> int:
        """The esm_class to send: 0x40 (UDHI) for concatenated parts, else 0x00."""
        return 0x40 if self.udhi else 0x00


def _sms_capacities(alphabet: Alphabet, reference_bits: int) -> tuple[int, int]:
    multi = _SMS_MULTI8 if reference_bits == 8 else _SMS_MULTI16
    return _SMS_SINGLE[alphabet], multi[alphabet]


def sms_segment_count(text: str, *, reference_bits: Literal[8, 16] = 8) -> int:
    """The number of SMS segments :func:`sms_segments` makes of ``text`` (no limit applied)."""
    alphabet = detect_alphabet(text)
    single, multi = _sms_capacities(alphabet, reference_bits)
    if _units(text, alphabet) <= single:
        return 1
    return _count_chunks(text, alphabet, multi)


def sms_segments(text: str, *, reference: int, max_segments: int = 255,
                 reference_bits: Literal[8, 16] = 8) -> SmsSegments:
    """Cut ``text`` into SMS segments with the concatenation UDH (TS 23.040 §9.2.3.24.1).

    One segment holds 160 GSM-7 septets or 70 UCS-2 code units. Longer texts are
    split into parts of 153 / 67 (6-octet UDH ``05 00 03 ref total seq``; with
    ``reference_bits=16``, 152 / 66 and ``06 08 04 ref_hi ref_lo total seq``).
    No split falls inside an escape sequence or a surrogate pair, so a part may
    hold one unit less than its capacity.

    Args:
        text: The message text.
        reference: The concatenation reference, the same for all parts of one
            message and different between consecutive messages to one recipient.
        max_segments: The most segments allowed (at most 255).
        reference_bits: 8 (IEI 0x00) or 16 (IEI 0x08).

    Raises:
        TextTooLong: more than ``max_segments`` segments would be needed.
        ValueError: a bad reference, limit or reference size.

    """
    if reference_bits not in (8, 16):
        raise ValueError(f"reference_bits must be 8 or 16, not {reference_bits!r}")
    if not 0 <= reference < (1 << reference_bits):
        raise ValueError(f"reference {reference} does not fit in {reference_bits} bits")
    if not 1 <= max_segments <= 255:
        raise ValueError(f"max_segments must be between 1 and 255, not {max_segments}")
    alphabet = detect_alphabet(text)
    encode = gsm7_encode if alphabet is Alphabet.GSM7 else ucs2_encode
    data_coding = 0x00 if alphabet is Alphabet.GSM7 else 0x08
    single, multi = _sms_capacities(alphabet, reference_bits)
    if _units(text, alphabet) <= single:
        return SmsSegments(alphabet=alphabet, data_coding=data_coding, parts=(encode(text),),
                           udhi=False, texts=(text,))
    texts = _split(text, alphabet, multi)
    total = len(texts)
    if total > max_segments:
        raise TextTooLong(
            f"text needs {total} SMS segments, at most {max_segments} allowed",
            needed=total, limit=max_segments, unit="segments",
        )
    parts = []
    for seq, chunk in enumerate(texts, start=1):
        if reference_bits == 8:
            udh = bytes((0x05, 0x00, 0x03, reference, total, seq))
        else:
            udh = bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, seq))
        parts.append(udh + encode(chunk))
    return SmsSegments(alphabet=alphabet, data_coding=data_coding, parts=tuple(parts),
                       udhi=True, texts=tuple(texts))


# --- cell broadcast -----------------------------------------------------------------------


def normalize_language(language: str | None) -> str | None:
    """The two-letter ISO 639-1 code of a CAP/BCP 47 language tag, or None.

    ``"en-US"`` gives ``"en"``, ``"nb-NO"`` gives ``"no"`` (the code TS 23.038
    uses); a tag whose primary subtag is not two letters (``"fil"``, ``"und"``)
    gives None, since the CBS language indication has room for two characters.
    """
    if not language:
        return None
    primary = language.strip().replace("_", "-").split("-", 1)[0].lower()
    if len(primary) != 2 or not primary.isascii() or not primary.isalpha():
        return None
    return _LANGUAGE_ALIASES.get(primary, primary)


def cbs_dcs(alphabet: Alphabet, language: str | None) -> tuple[int, bool]:
    """The CBS data coding scheme (TS 23.038 §5) and whether pages carry a language prefix.

    * GSM-7, a language of group 0000 or 0010: that code (``en`` 0x01, ``ru`` 0x23).
    * GSM-7, another two-letter language: 0x10, each page starts with ``"xx\\r"``.
    * GSM-7, no language: 0x0F (language unspecified).
    * UCS-2, a language: 0x11, each page starts with the two letters as packed GSM-7.
    * UCS-2, no language: 0x48 (general data coding, UCS-2, no class).

    ``language`` must already be normalized (see :func:`normalize_language`).
    """
    if alphabet is Alphabet.GSM7:
        if language is None:
            return _DCS_GSM7_UNSPECIFIED, False
        if language in _CBS_LANGUAGE_DCS:
            return _CBS_LANGUAGE_DCS[language], False
        return _DCS_GSM7_LANGUAGE_INDICATION, True
    if language is None:
        return _DCS_UCS2_GENERAL, False
    return _DCS_UCS2_LANGUAGE_INDICATION, True


@dataclass(frozen=True, slots=True, kw_only=True)
class CbsPages:
    """A text cut into cell-broadcast pages (the CBS-Message-Information-Pages).

    Every page is exactly 82 octets: packed GSM-7 (93 septets) padded with
    ``<CR>``, or UTF-16-BE (41 code units) padded with U+000D. With DCS 0x10 each
    page starts with the language and a CR (``"xx\\r"``, leaving 90 septets); with
    DCS 0x11 each page starts with the language as two packed GSM-7 characters
    in two octets (leaving 40 UCS-2 code units). The prefix is repeated on every
    page because receivers (Android ``GsmSmsCbMessage.unpackBody``) strip it
    from every page.
    """

    alphabet: Alphabet
    #: TS 23.038 §5 data coding scheme of the CBS message.
    dcs: int
    #: The two-letter language signalled (in the DCS or the page prefix), or None.
    language: str | None
    #: The content of each page, 82 octets each.
    pages: tuple[bytes, ...]
    #: The text on each page (without language prefix and padding).
    texts: tuple[str, ...]

    @property
    def count(self) -> int:
        """The number of pages."""
        return len(self.pages)

    @property
    def has_language_prefix(self) -> bool:
        """True when every page starts with a language indication (DCS 0x10 / 0x11)."""
        return self.dcs in (_DCS_GSM7_LANGUAGE_INDICATION, _DCS_UCS2_LANGUAGE_INDICATION)

    def hex_pages(self) -> list[str]:
        """The pages as hex strings, as ECBE's ``payload_encoded.pages`` carries them."""
        return [page.hex() for page in self.pages]


def _cbs_layout(text: str, language: str | None) -> tuple[Alphabet, int, str | None, bool, int]:
    alphabet = detect_alphabet(text)
    lang = normalize_language(language)
    dcs, prefixed = cbs_dcs(alphabet, lang)
    if alphabet is Alphabet.GSM7:
        capacity = CBS_PAGE_SEPTETS - (3 if prefixed else 0)
    else:
        capacity = CBS_PAGE_UCS2_CHARS - (1 if prefixed else 0)
    signalled = lang if (prefixed or lang in _CBS_LANGUAGE_DCS) else None
    return alphabet, dcs, signalled, prefixed, capacity


def cbs_page_count(text: str, *, language: str | None) -> int:
    """The number of pages :func:`cbs_pages` makes of ``text`` (no limit applied)."""
    alphabet, _, _, _, capacity = _cbs_layout(text, language)
    return _count_chunks(text, alphabet, capacity)


def _gsm7_page(chunk: str, prefix: str) -> bytes:
    septets = gsm7_encode(prefix + chunk)
    padded = septets + bytes((_CR,)) * (CBS_PAGE_SEPTETS - len(septets))
    return gsm7_pack(padded)


def _ucs2_page(chunk: str, language: str | None) -> bytes:
    head = gsm7_pack(gsm7_encode(language)) if language is not None else b""
    body = head + ucs2_encode(chunk)
    return body + b"\x00\x0d" * ((CBS_PAGE_OCTETS - len(body)) // 2)


def cbs_pages(text: str, *, language: str | None, max_pages: int = CBS_MAX_PAGES) -> CbsPages:
    """Cut ``text`` into 82-octet cell-broadcast pages with the DCS of TS 23.038 §5.

    ``language`` is a CAP/BCP 47 tag (``"de-DE"``) or None; see :func:`cbs_dcs`
    for how it becomes the DCS or a per-page language prefix. The alphabet is
    GSM-7 when every character is in the GSM tables, else UCS-2. No page splits
    an escape sequence or a surrogate pair, so a page may hold one unit less.

    Raises:
        TextTooLong: more than ``max_pages`` pages would be needed.
        ValueError: ``max_pages`` outside 1..15.

    """
    if not 1 <= max_pages <= CBS_MAX_PAGES:
        raise ValueError(f"max_pages must be between 1 and {CBS_MAX_PAGES}, not {max_pages}")
    alphabet, dcs, signalled, prefixed, capacity = _cbs_layout(text, language)
    texts = _split(text, alphabet, capacity)
    if len(texts) > max_pages:
        raise TextTooLong(
            f"text needs {len(texts)} cell broadcast pages, at most {max_pages} allowed",
            needed=len(texts), limit=max_pages, unit="pages",
        )
    prefix_lang = signalled if prefixed else None
    if alphabet is Alphabet.GSM7:
        prefix = f"{prefix_lang}\r" if prefix_lang is not None else ""
        pages = tuple(_gsm7_page(chunk, prefix) for chunk in texts)
    else:
        pages = tuple(_ucs2_page(chunk, prefix_lang) for chunk in texts)
    return CbsPages(alphabet=alphabet, dcs=dcs, language=signalled, pages=pages,
                    texts=tuple(texts))


def decode_cbs_pages(dcs: int, pages: tuple[bytes, ...] | list[bytes]) -> tuple[str | None, str]:
    """Decode CBS pages as a handset does: (language, text).

    Supports the codings :func:`cbs_pages` produces (and the rest of group
    0000/0010 and 01xx GSM-7/UCS-2). The language prefix of DCS 0x10/0x11 is
    removed from every page, and trailing ``<CR>`` padding is stripped from each.
    Meant for tests and simulators.

    Raises:
        ValueError: a DCS this function does not decode.

    """
    group = dcs >> 4
    language: str | None = None
    ucs2 = False
    indicated = False
    if group == 0x0:
        names = list(_CBS_LANGUAGE_DCS)
        language = names[dcs & 0x0F] if (dcs & 0x0F) < 15 else None
    elif group == 0x2:
        code = {v: k for k, v in _CBS_LANGUAGE_DCS.items()}.get(dcs)
        language = code
    elif dcs in (_DCS_GSM7_LANGUAGE_INDICATION, _DCS_UCS2_LANGUAGE_INDICATION):
        indicated = True
        ucs2 = dcs == _DCS_UCS2_LANGUAGE_INDICATION
    elif group in (0x4, 0x5) and (dcs >> 2) & 0x3 in (0, 2):
        ucs2 = (dcs >> 2) & 0x3 == 2
    else:
        raise ValueError(f"unsupported CBS data coding scheme 0x{dcs:02X}")
    texts: list[str] = []
    for page in pages:
        if ucs2:
            body = page
            if indicated:
                language = gsm7_decode(gsm7_unpack(page[:2], 2))
                body = page[2:]
            text = ucs2_decode(body[: len(body) & ~1])
        else:
            text = gsm7_decode(gsm7_unpack(page))
            if indicated:
                language, text = text[:2], text[3:]
        texts.append(text.rstrip("\r"))
    return language, "".join(texts)


# --- shortening ---------------------------------------------------------------------------

_BREAK_RE: Final = re.compile(r"\s+")


def shorten(text: str, fits: Callable[[str], bool], *, ellipsis: str = "...") -> str:
    """The longest version of ``text`` that ``fits``, cut on a word boundary.

    ``fits`` is the channel's test (e.g. "at most 4 cell broadcast pages"), so
    the limit is measured in septets or code units, never in characters. The
    cut falls on whitespace when there is any, otherwise between code points
    (never inside a surrogate pair or an escape sequence, which are single code
    points). ``ellipsis`` is appended to a shortened text when it still fits;
    use an ASCII ellipsis since "…" is not in the GSM alphabet and would force
    UCS-2. ``fits`` must be monotonic: if a text fits, so does any prefix.

    Returns "" when not even the first word fits.
    """
    text = text.strip()
    if fits(text):
        return text
    # Cut points before each run of whitespace keep whole words; when not even the
    # first word fits, fall back to cuts between code points.
    word_cuts = [m.start() for m in _BREAK_RE.finditer(text)]
    char_cuts = list(range(1, len(text)))
    for cuts in (word_cuts, char_cuts):
        for suffix in dict.fromkeys((ellipsis, "")):
            best = _last_fitting(text, cuts, suffix, fits)
            if best:
                return best
    return ""


def _last_fitting(text: str, cuts: list[int], suffix: str, fits: Callable[[str], bool]) -> str:
    """The longest ``text[:cut] + suffix`` that fits, by binary search over ``cuts``."""

    def candidate(cut: int) -> str:
        head = text[:cut].rstrip(" \t\r\n,;:-")
        return head + suffix if head else ""

    lo, hi = 0, len(cuts) - 1
    best = ""
    while lo <= hi:
        mid = (lo + hi) // 2
        trial = candidate(cuts[mid])
        if trial and fits(trial):
            best = trial
            lo = mid + 1
        else:
            hi = mid - 1
    return best
