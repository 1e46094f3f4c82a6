"""GSM 03.38 / UCS-2 codecs, SMS segmentation and cell-broadcast pages (gateways.text)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.errors import TextEncodingError, TextTooLong
from gateways.text import (
    CBS_PAGE_OCTETS,
    GSM7_BASIC,
    GSM7_EXTENSION,
    Alphabet,
    cbs_page_count,
    cbs_pages,
    decode_cbs_pages,
    detect_alphabet,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_unpack,
    normalize_language,
    septet_length,
    shorten,
    sms_segment_count,
    sms_segments,
    ucs2_decode,
    ucs2_encode,
    ucs2_length,
)

BASIC_CHARS = [ch for i, ch in enumerate(GSM7_BASIC) if i != 0x1B]
EXT_CHARS = list(GSM7_EXTENSION)
GSM_CHARS = BASIC_CHARS + EXT_CHARS

gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
# Mixed text: GSM characters, extension characters, accented letters outside GSM,
# Cyrillic, Arabic and characters outside the BMP (surrogate pairs in UTF-16).
mixed_char = st.one_of(
    st.sampled_from(GSM_CHARS),
    st.sampled_from(EXT_CHARS),
    st.sampled_from(list("áíóúÁçğışŞЖжШعربي")),
    st.sampled_from(["😀", "🚨", "𝄞", "🌊"]),
)
mixed_text = st.text(alphabet=mixed_char, max_size=700)


# --- the GSM 7-bit alphabet -----------------------------------------------------------------


def test_default_alphabet_table_positions() -> None:
    # Spot checks against TS 23.038 §6.2.1 (rows and columns of the printed table).
    assert len(GSM7_BASIC) == 128
    assert len(set(GSM7_BASIC)) == 128
    expected = {0x00: "@", 0x01: "£", 0x02: "$", 0x03: "¥", 0x09: "Ç", 0x0A: "\n",
                0x0D: "\r", 0x10: "Δ", 0x11: "_", 0x1C: "Æ", 0x1F: "É", 0x20: " ",
                0x24: "¤", 0x40: "¡", 0x41: "A", 0x5B: "Ä", 0x5F: "§", 0x60: "¿",
                0x61: "a", 0x7B: "ä", 0x7F: "à"}
    for code, char in expected.items():
        assert gsm7_encode(char) == bytes((code,)), (hex(code), char)
        assert gsm7_decode(bytes((code,))) == char


@pytest.mark.parametrize(("char", "code"), [
    ("\x0c", 0x0A), ("^", 0x14), ("{", 0x28), ("}", 0x29), ("\\", 0x2F),
    ("[", 0x3C), ("~", 0x3D), ("]", 0x3E), ("|", 0x40), ("€", 0x65),
])
def test_extension_table(char: str, code: int) -> None:
    assert gsm7_encode(char) == bytes((0x1B, code))
    assert septet_length(char) == 2
    assert gsm7_decode(bytes((0x1B, code))) == char
    assert detect_alphabet(char) is Alphabet.GSM7


def test_euro_sign_in_text() -> None:
    assert gsm7_encode("5€") == b"\x35\x1b\x65"
    assert septet_length("Preis: 5€ [netto]") == len("Preis: 5€ [netto]") + 3


def test_encode_names_first_unencodable_character() -> None:
    with pytest.raises(ValueError, match=r"'á'.*index 3") as info:
        gsm7_encode("abcáé")
    assert isinstance(info.value, TextEncodingError)
    assert (info.value.char, info.value.index) == ("á", 3)


def test_decode_receiver_rules() -> None:
    # Unknown extension code: the default-table character (TS 23.038 §6.2.1.1).
    assert gsm7_decode(b"\x1b\x41") == "A"
    # Escape + escape, and a trailing escape: a space.
    assert gsm7_decode(b"\x1b\x1b") == " "
    assert gsm7_decode(b"a\x1b") == "a "
    with pytest.raises(ValueError):
        gsm7_decode(b"\x80")


def test_detect_alphabet() -> None:
    assert detect_alphabet("Hello {world} €5") is Alphabet.GSM7
    assert detect_alphabet("Müller Ñandú è") is Alphabet.UCS2  # ú is not in GSM
    assert detect_alphabet("Привет") is Alphabet.UCS2
    assert detect_alphabet("") is Alphabet.GSM7


@given(st.text(max_size=200))
def test_detect_alphabet_is_gsm_iff_every_char_in_tables(text: str) -> None:
    in_tables = all(ch in GSM_CHARS for ch in text)
    assert (detect_alphabet(text) is Alphabet.GSM7) == in_tables


@given(gsm_text)
def test_gsm7_encode_decode_round_trip(text: str) -> None:
    septets = gsm7_encode(text)
    assert gsm7_decode(septets) == text
    assert len(septets) == septet_length(text)
    assert septet_length(text) == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    assert all(s <= 0x7F for s in septets)


# --- packing ----------------------------------------------------------------------------------


def test_known_packing_vectors() -> None:
    # The classic TS 23.038 packing examples.
    assert gsm7_pack(gsm7_encode("hellohello")).hex().upper() == "E8329BFD4697D9EC37"
    assert gsm7_pack(gsm7_encode("hello")).hex().upper() == "E8329BFD06"
    assert gsm7_pack(b"12345678").hex().upper() == "31D98C56B3DD70"
    assert gsm7_unpack(bytes.fromhex("E8329BFD4697D9EC37"), 10) == b"hellohello"


@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)))
def test_pack_unpack_round_trip(septets: bytes) -> None:
    packed = gsm7_pack(septets)
    assert len(packed) == math.ceil(len(septets) * 7 / 8)
    assert gsm7_unpack(packed, len(septets)) == septets


def test_pack_and_unpack_refuse_bad_input() -> None:
    with pytest.raises(ValueError):
        gsm7_pack(b"\x80")
    with pytest.raises(ValueError):
        gsm7_unpack(b"\x00", 2)


def test_ucs2() -> None:
    assert ucs2_encode("Aж😀") == b"\x00A\x04\x36\xd8\x3d\xde\x00"
    assert ucs2_length("Aж😀") == 4
    assert ucs2_decode(ucs2_encode("Aж😀")) == "Aж😀"
    with pytest.raises(TextEncodingError):
        ucs2_encode("a\ud800b")


# --- SMS segments -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "count", "alphabet"), [
    ("a" * 160, 1, Alphabet.GSM7),
    ("a" * 161, 2, Alphabet.GSM7),
    ("a" * 306, 2, Alphabet.GSM7),
    ("a" * 307, 3, Alphabet.GSM7),
    ("€" * 80, 1, Alphabet.GSM7),  # 160 septets
    ("€" * 81, 2, Alphabet.GSM7),
    ("ж" * 70, 1, Alphabet.UCS2),
    ("ж" * 71, 2, Alphabet.UCS2),
    ("ж" * 134, 2, Alphabet.UCS2),
    ("ж" * 135, 3, Alphabet.UCS2),
    ("😀" * 35, 1, Alphabet.UCS2),  # 70 code units
    ("😀" * 36, 2, Alphabet.UCS2),  # 33 per part: 66 units, never 67 (half a pair)
    ("", 1, Alphabet.GSM7),
])
def test_segment_counts(text: str, count: int, alphabet: Alphabet) -> None:
    segments = sms_segments(text, reference=0x42)
    assert segments.count == count == sms_segment_count(text)
    assert segments.alphabet is alphabet
    assert segments.data_coding == (0x00 if alphabet is Alphabet.GSM7 else 0x08)
    assert segments.udhi == (count > 1)
    assert segments.esm_class == (0x40 if count > 1 else 0x00)


def test_udh_layout() -> None:
    segments = sms_segments("x" * 400, reference=0xAB)
    assert [p[:6] for p in segments.parts] == [
        bytes((0x05, 0x00, 0x03, 0xAB, 3, seq)) for seq in (1, 2, 3)]
    assert [len(p) for p in segments.parts] == [6 + 153, 6 + 153, 6 + 94]
    sixteen = sms_segments("x" * 400, reference=0x1234, reference_bits=16)
    assert sixteen.parts[0][:7] == bytes((0x06, 0x08, 0x04, 0x12, 0x34, 3, 1))
    assert len(sixteen.parts[0]) == 7 + 152


def test_escape_is_not_split_at_segment_boundary() -> None:
    # 152 septets then "€" (2 septets): the euro moves to the second part.
    segments = sms_segments("a" * 152 + "€" + "b" * 10, reference=1)
    assert segments.texts[0] == "a" * 152
    assert segments.parts[0][6:] == b"a" * 152
    assert segments.parts[1][6:8] == b"\x1b\x65"


def test_too_many_segments() -> None:
    with pytest.raises(TextTooLong) as info:
        sms_segments("a" * 500, reference=1, max_segments=3)
    assert (info.value.needed, info.value.limit, info.value.unit) == (4, 3, "segments")
    with pytest.raises(ValueError):
        sms_segments("a", reference=256)


@settings(max_examples=300, deadline=None)
@given(mixed_text, st.integers(0, 255))
def test_segments_properties(text: str, reference: int) -> None:
    segments = sms_segments(text, reference=reference)
    alphabet = detect_alphabet(text)
    gsm = alphabet is Alphabet.GSM7
    units = septet_length(text) if gsm else ucs2_length(text)
    single, multi = (160, 153) if gsm else (70, 67)
    assert "".join(segments.texts) == text
    if units <= single:
        assert segments.count == 1 and not segments.udhi
        payloads = list(segments.parts)
    else:
        # Greedy filling loses at most one unit per part (an escape or a pair that
        # does not fit moves on), so the count is between these two bounds.
        assert math.ceil(units / multi) <= segments.count <= math.ceil(units / (multi - 1))
        if all(ch not in GSM7_EXTENSION for ch in text) and all(ord(ch) <= 0xFFFF for ch in text):
            assert segments.count == math.ceil(units / multi)
        payloads = []
        for seq, part in enumerate(segments.parts, start=1):
            assert part[:6] == bytes((5, 0, 3, reference, segments.count, seq))
            payloads.append(part[6:])
    for payload, chunk in zip(payloads, segments.texts, strict=True):
        if gsm:
            assert len(payload) <= (single if segments.count == 1 else multi)
            assert not payload.endswith(b"\x1b") or payload.endswith(b"\x1b\x1b")
            assert gsm7_decode(payload) == chunk  # no escape split across parts
        else:
            assert len(payload) % 2 == 0
            assert len(payload) <= 2 * (single if segments.count == 1 else multi)
            assert payload.decode("utf-16-be") == chunk  # strict: no split surrogate pair


# --- cell broadcast pages ---------------------------------------------------------------------


@pytest.mark.parametrize(("language", "dcs", "signalled"), [
    ("de", 0x00, "de"), ("en-US", 0x01, "en"), ("it", 0x02, "it"), ("fr-CA", 0x03, "fr"),
    ("es", 0x04, "es"), ("nl", 0x05, "nl"), ("sv-SE", 0x06, "sv"), ("da", 0x07, "da"),
    ("pt", 0x08, "pt"), ("fi", 0x09, "fi"), ("no", 0x0A, "no"), ("nb-NO", 0x0A, "no"),
    ("el", 0x0B, "el"), ("tr", 0x0C, "tr"), ("hu", 0x0D, "hu"), ("pl", 0x0E, "pl"),
    ("cs", 0x20, "cs"), ("he", 0x21, "he"), ("ar", 0x22, "ar"), ("ru", 0x23, "ru"),
    ("is-IS", 0x24, "is"),
    (None, 0x0F, None), ("fil", 0x0F, None),
    ("ga", 0x10, "ga"), ("zh-tw", 0x10, "zh"),
])
def test_gsm7_dcs_by_language(language: str | None, dcs: int, signalled: str | None) -> None:
    pages = cbs_pages("Storm warning", language=language)
    assert pages.alphabet is Alphabet.GSM7
    assert (pages.dcs, pages.language) == (dcs, signalled)
    septets = gsm7_unpack(pages.pages[0], 93)
    if dcs == 0x10:
        assert septets[:3] == gsm7_encode(f"{signalled}\r")  # TS 23.038 §5: "xx" + CR
    else:
        assert septets.startswith(gsm7_encode("Storm warning"))


@pytest.mark.parametrize(("language", "dcs"), [("ru", 0x11), ("ar-SA", 0x11), (None, 0x48)])
def test_ucs2_dcs(language: str | None, dcs: int) -> None:
    pages = cbs_pages("Шторм", language=language)
    assert pages.alphabet is Alphabet.UCS2
    assert pages.dcs == dcs
    page = pages.pages[0]
    if dcs == 0x11:
        # Two GSM-7 characters packed into two octets, then UCS-2 (TS 23.038 §5).
        assert page[:2] == gsm7_pack(gsm7_encode(normalize_language(language) or ""))
        assert page[2:12] == ucs2_encode("Шторм")
    else:
        assert page[:10] == ucs2_encode("Шторм")
    assert page.endswith(b"\x00\x0d")


def test_page_sizes_and_padding() -> None:
    one = cbs_pages("a" * 93, language="en")
    assert one.count == 1
    assert gsm7_unpack(one.pages[0], 93) == b"a" * 93
    two = cbs_pages("a" * 94, language="en")
    assert two.count == 2
    assert gsm7_unpack(two.pages[1], 93) == b"a" + b"\r" * 92  # padded with CR
    # 47 euros are 94 septets: 46 on page one (92 septets + one CR), 1 on page two.
    euros = cbs_pages("€" * 47, language="de")
    assert [len(t) for t in euros.texts] == [46, 1]
    assert gsm7_unpack(euros.pages[0], 93) == b"\x1b\x65" * 46 + b"\r"
    assert cbs_pages("ж" * 41, language=None).count == 1
    assert cbs_pages("ж" * 41, language="ru").count == 2  # 40 per page with the prefix
    assert cbs_pages("😀" * 21, language=None).texts[0] == "😀" * 20


def test_cbs_capacity_examples_from_spec_notes() -> None:
    # SPEC-NOTES §3: 90 characters fit one GSM-7 page; 360 need 4; 360 UCS-2 need 9.
    assert cbs_page_count("a" * 90, language="en") == 1
    assert cbs_page_count("a" * 360, language="en") == 4
    assert cbs_page_count("á" * 360, language=None) == 9
    assert cbs_pages("a" * 1395, language="en").count == 15
    with pytest.raises(TextTooLong) as info:
        cbs_pages("a" * 1396, language="en")
    assert (info.value.needed, info.value.limit, info.value.unit) == (16, 15, "pages")
    with pytest.raises(TextTooLong):
        cbs_pages("a" * 200, language="en", max_pages=2)


languages = st.sampled_from([None, "en-US", "de", "ru", "ar", "ga", "fil", "es-419"])


@settings(max_examples=300, deadline=None)
@given(mixed_text.filter(lambda t: "\r" not in t), languages)
def test_pages_properties(text: str, language: str | None) -> None:
    try:
        pages = cbs_pages(text, language=language)
    except TextTooLong as exc:
        assert exc.needed > 15
        return
    assert all(len(page) == CBS_PAGE_OCTETS for page in pages.pages)
    assert "".join(pages.texts) == text
    assert pages.count == cbs_page_count(text, language=language)
    # What a handset reads back (language prefix removed from every page, CRs stripped).
    decoded_language, decoded = decode_cbs_pages(pages.dcs, pages.pages)
    assert decoded == text
    assert decoded_language == pages.language
    gsm = pages.alphabet is Alphabet.GSM7
    if gsm:
        capacity = 90 if pages.dcs == 0x10 else 93
        units = septet_length(text)
    else:
        capacity = 40 if pages.dcs == 0x11 else 41
        units = ucs2_length(text)
    assert max(1, math.ceil(units / capacity)) <= pages.count
    assert pages.count <= max(1, math.ceil(units / (capacity - 1)))
    if all(ch not in GSM7_EXTENSION and ord(ch) <= 0xFFFF for ch in text):
        assert pages.count == max(1, math.ceil(units / capacity))
    for chunk in pages.texts:
        if gsm:
            assert septet_length(chunk) <= capacity
        else:
            assert ucs2_length(chunk) <= capacity


def test_text_with_line_breaks_keeps_inner_cr() -> None:
    pages = cbs_pages("line one\rline two\nline three", language="en")
    assert decode_cbs_pages(pages.dcs, pages.pages) == ("en", "line one\rline two\nline three")


# --- shortening -------------------------------------------------------------------------------


def test_shorten_on_word_boundary() -> None:
    text = "The quick brown fox jumps over the lazy dog"
    assert shorten(text, lambda t: len(t) <= 20) == "The quick brown..."
    assert shorten(text, lambda t: len(t) <= 100) == text
    assert shorten(text, lambda t: len(t) <= 5, ellipsis="") == "The"
    # A single long word: cut between code points.
    assert shorten("Donaudampfschifffahrt", lambda t: len(t) <= 8) == "Donau..."


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.one_of(mixed_char, st.just(" ")), min_size=1, max_size=500),
       st.integers(1, 3))
def test_shorten_fits_and_never_splits(text: str, segments: int) -> None:
    def fits(candidate: str) -> bool:
        return sms_segment_count(candidate) <= segments

    result = shorten(text, fits)
    assert result == "" or fits(result)
    base = result[:-3] if result.endswith("...") and result != text.strip() else result
    assert text.strip().startswith(base)
    # Encodable as a whole (no lone surrogate, no half escape).
    if result:
        sms_segments(result, reference=0, max_segments=segments)
