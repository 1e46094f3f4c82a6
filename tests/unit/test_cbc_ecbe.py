"""The sans-IO ECBE layer: request bodies, answers, osmo-cbc's parser, the simulator's model."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateways.cbc.ecbe import (
    MAX_CELL_IDENTITY,
    Category,
    CbcIllegalState,
    CbcMessage,
    CbcMessageActive,
    CbcNotImplemented,
    CbcRequestRefused,
    CbcTimeout,
    CbcUnexpectedStatus,
    CbcUnknownMessage,
    CbcUnreachable,
    CellId,
    CharacterSet,
    Confirmation,
    DecodedPayload,
    Dialect,
    EcbeOptions,
    EcbeRequestError,
    EncodedPayload,
    EtwsPayload,
    Operation,
    Rat,
    ScopeNotSupported,
    SerialForm,
    create_request,
    delete_request,
    interpret_response,
    message_path,
    message_to_json,
    osmo_decoded_dcs,
    parse_body,
    parse_cell_id,
    parse_message,
    parse_message_id,
    payload_for_text,
    repetition_seconds,
    repetition_units,
    replace_request,
)
from gateways.errors import (
    CbcError,
    ConnectionLost,
    GatewayTimeout,
    LocalProtocolError,
    RemoteProtocolError,
)
from gateways.simulators.cbc import CbcModel, MessageState, Outcome
from gateways.text import cbs_pages, decode_cbs_pages

OSMO = EcbeOptions(dialect=Dialect.OSMO_CBC, cbe_name="capcast-test")
CAPCAST = EcbeOptions(dialect=Dialect.CAPCAST, cbe_name="capcast-test")
PAGE = bytes(range(82))


def message(**changes: Any) -> CbcMessage:
    fields: dict[str, Any] = {
        "message_id": 4370, "serial_number": 0x4011,
        "payload": EncodedPayload(dcs=0x01, pages=(PAGE,)),
        "repetition_period": 32, "num_broadcasts": 0,
    }
    fields.update(changes)
    return CbcMessage(**fields)


# --- request bodies -------------------------------------------------------------------------


def test_create_body_in_the_osmo_dialect_is_exactly_what_osmo_cbc_reads() -> None:
    msg = message(warning_period=3600, category=Category.HIGH_PRIORITY, num_broadcasts=10)
    assert message_to_json(msg, OSMO) == {
        "cbe_name": "capcast-test",
        "category": "high_priority",
        "repetition_period": 32,
        "num_of_bcast": 10,
        "warning_period_sec": 3600,
        "scope": {"scope_plmn": {}},
        "smscb_message": {
            "message_id": 4370,
            "serial_nr": {"serial_nr_encoded": 0x4011},
            "payload": {"payload_encoded": {"dcs": 1, "pages": [PAGE.hex()]}},
        },
    }


def test_warning_period_is_left_out_when_infinite() -> None:
    assert "warning_period_sec" not in message_to_json(message(), OSMO)


def test_decoded_serial_number_names_the_fields_as_osmo_cbc_does() -> None:
    options = EcbeOptions(dialect=Dialect.OSMO_CBC, serial_form=SerialForm.DECODED)
    serial = (1 << 14) | (0x2A5 << 4) | 7
    body = message_to_json(message(serial_number=serial), options)
    assert body["smscb_message"]["serial_nr"] == {
        "serial_nr_decoded": {"geo_scope": "plmn_wide", "msg_code": 0x2A5, "update_nr": 7}}


@pytest.mark.parametrize(("scope", "name"), [(0, "cell_wide_immediate"), (1, "plmn_wide"),
                                             (2, "lac_sac_tac_wide"), (3, "cell_wide")])
def test_every_geographical_scope_has_its_osmo_name(scope: int, name: str) -> None:
    options = EcbeOptions(dialect=Dialect.OSMO_CBC, serial_form=SerialForm.DECODED)
    body = message_to_json(message(serial_number=scope << 14), options)
    assert body["smscb_message"]["serial_nr"]["serial_nr_decoded"]["geo_scope"] == name


@given(st.integers(0, 0xFFFF), st.sampled_from(SerialForm))
def test_serial_numbers_survive_both_forms(serial: int, form: SerialForm) -> None:
    options = EcbeOptions(dialect=Dialect.OSMO_CBC, serial_form=form)
    document = json.loads(json.dumps(message_to_json(message(serial_number=serial), options)))
    parsed = parse_message(document, dialect=Dialect.OSMO_CBC)
    assert parsed.message.serial_number == serial
    assert parsed.serial_form is form


def test_decoded_payload_and_etws_bodies() -> None:
    decoded = DecodedPayload(text="Flood warning", character_set=CharacterSet.GSM,
                             language="en", dcs_class=1)
    assert message_to_json(message(payload=decoded), OSMO)["smscb_message"]["payload"] == {
        "payload_decoded": {"character_set": "gsm", "data_utf8": "Flood warning",
                            "language": "en", "dcs_class": 1}}
    etws = EtwsPayload(warning_type=2, emergency_user_alert=True, popup_on_display=True,
                       warning_sec_info=bytes(50))
    assert message_to_json(message(payload=etws), OSMO)["smscb_message"]["payload"] == {
        "payload_etws": {"warning_type": {"warning_type_encoded": 2},
                         "emergency_user_alert": True, "popup_on_display": True,
                         "warning_sec_info": "00" * 50}}


def test_osmo_dialect_refuses_a_message_for_some_cells_only() -> None:
    msg = message(cells=("262-01-4711-12", "262-01-26777346"))
    with pytest.raises(ScopeNotSupported) as caught:
        message_to_json(msg, OSMO)
    assert caught.value.cells == 2
    assert "scope_plmn" in str(caught.value) and "whole network" in str(caught.value)
    with pytest.raises(ScopeNotSupported):
        create_request(msg, OSMO)
    assert isinstance(caught.value, LocalProtocolError)


def test_capcast_dialect_carries_the_cells_in_the_scope() -> None:
    msg = message(cells=("262-01-04711-012", "nr:262-01-68719476735", "262-01-4711-12"))
    assert message_to_json(msg, CAPCAST)["scope"] == {
        "scope_cell_list": {"cells": ["262-01-4711-12", "nr:262-01-68719476735"]}}
    assert message_to_json(message(), CAPCAST)["scope"] == {"scope_plmn": {}}


def test_requests() -> None:
    create = create_request(message(), OSMO)
    assert (create.method, create.path, create.content_type) == \
        ("POST", "/api/ecbe/v1/message", "application/json")
    assert create.body is not None and json.loads(create.body) == message_to_json(message(), OSMO)
    assert create.operation is Operation.CREATE and create.message_id == 4370
    delete = delete_request(4370)
    assert (delete.method, delete.path, delete.body) == ("DELETE", "/api/ecbe/v1/message/4370",
                                                         None)
    put = replace_request(message(), CAPCAST)
    assert (put.method, put.path, put.operation) == \
        ("PUT", "/api/ecbe/v1/message/4370", Operation.REPLACE)
    with pytest.raises(LocalProtocolError, match="no replace"):
        replace_request(message(), OSMO)
    for bad in (-1, 65536):
        with pytest.raises(LocalProtocolError):
            message_path(bad)


def test_utf8_text_is_sent_as_utf8_json() -> None:
    decoded = DecodedPayload(text="Überflutung €", character_set=CharacterSet.UCS2)
    body = create_request(message(payload=decoded), OSMO).body
    assert body is not None and "Überflutung €".encode() in body


@pytest.mark.parametrize("changes", [
    {"message_id": 65536}, {"message_id": -1}, {"serial_number": 1 << 16},
    {"repetition_period": 4096}, {"num_broadcasts": 65536}, {"warning_period": 65536},
    {"message_id": True}, {"cells": ()}, {"cells": ("262-1-5",)},
])
def test_out_of_range_messages_are_refused_locally(changes: dict[str, Any]) -> None:
    with pytest.raises((LocalProtocolError, ValueError)):
        message(**changes)


def test_payload_limits() -> None:
    with pytest.raises(LocalProtocolError):
        EncodedPayload(dcs=1, pages=())
    with pytest.raises(LocalProtocolError):
        EncodedPayload(dcs=1, pages=(PAGE,) * 16)
    with pytest.raises(LocalProtocolError):
        EncodedPayload(dcs=1, pages=(PAGE + b"x",))
    with pytest.raises(LocalProtocolError):
        EncodedPayload(dcs=256, pages=(PAGE,))
    with pytest.raises(LocalProtocolError):
        DecodedPayload(text="x", character_set=CharacterSet.GSM, language="eng")
    with pytest.raises(LocalProtocolError):
        DecodedPayload(text="x", character_set=CharacterSet.GSM, dcs_class=4)
    assert len(EncodedPayload(dcs=1, pages=(PAGE,) * 15).pages) == 15


# --- repetition -----------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "units"), [
    (1.883, 1), (0.5, 1), (0.95, 1), (60, 32), (30, 16), (2.8245, 2), (3.766, 2),
    (300, 159), (7711, 4095), (Fraction(4095 * 1883, 1000), 4095)])
def test_repetition_is_rounded_to_the_nearest_unit(seconds: float, units: int) -> None:
    assert repetition_units(seconds) == units


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), 7712])
def test_repetition_outside_cbsp_is_refused(seconds: float) -> None:
    with pytest.raises(LocalProtocolError):
        repetition_units(seconds)


@given(st.integers(1, 4095))
def test_repetition_units_round_trip(units: int) -> None:
    assert repetition_units(repetition_seconds(units)) == units


@given(st.floats(0.95, 7711.0))
def test_repetition_error_is_at_most_half_a_unit(seconds: float) -> None:
    assert abs(repetition_seconds(repetition_units(seconds)) - seconds) <= 1.883 / 2 + 1e-9


# --- cell ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("262-01-4711-12", CellId(mcc="262", mnc="01", lac=4711, cell=12)),
    ("310-410-65535-65535", CellId(mcc="310", mnc="410", lac=65535, cell=65535)),
    ("262-01-26777346", CellId(mcc="262", mnc="01", cell=26777346)),
    ("lte:262-01-268435455", CellId(rat=Rat.LTE, mcc="262", mnc="01", cell=268435455)),
    ("nr:262-001-68719476735", CellId(rat=Rat.NR, mcc="262", mnc="001", cell=(1 << 36) - 1)),
    ("gsm:262-01-1-2", CellId(rat=Rat.GSM, mcc="262", mnc="01", lac=1, cell=2)),
    ("umts:262-01-0001-0002", CellId(rat=Rat.UMTS, mcc="262", mnc="01", lac=1, cell=2)),
])
def test_cell_ids_parse(text: str, expected: CellId) -> None:
    assert parse_cell_id(text) == expected


@pytest.mark.parametrize("text", [
    "262-1-4711-12", "26-01-1-2", "262-01-65536-1", "gsm:262-01-1-65536", "lte:262-01-268435456",
    "lte:262-01-1-2", "gsm:262-01-5", "262-01-68719476736", "262-01", "LTE:262-01-5",
    "262-01-1-2-3", " 262-01-5", "262-01--5", "5g:262-01-5", "",
])
def test_bad_cell_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cell_id(text)


def test_cell_text_is_canonical() -> None:
    assert parse_cell_id("262-01-0004711-00012").text == "262-01-4711-12"
    assert str(parse_cell_id("nr:262-01-007")) == "nr:262-01-7"


_cells = st.one_of(
    st.builds(CellId, rat=st.sampled_from([None, Rat.GSM, Rat.UMTS]),
              mcc=st.from_regex(r"[0-9]{3}", fullmatch=True),
              mnc=st.from_regex(r"[0-9]{2,3}", fullmatch=True), lac=st.integers(0, 0xFFFF),
              cell=st.integers(0, 0xFFFF)),
    st.builds(CellId, rat=st.just(Rat.LTE), mcc=st.from_regex(r"[0-9]{3}", fullmatch=True),
              mnc=st.from_regex(r"[0-9]{2,3}", fullmatch=True),
              cell=st.integers(0, MAX_CELL_IDENTITY["eci"])),
    st.builds(CellId, rat=st.sampled_from([None, Rat.NR]),
              mcc=st.from_regex(r"[0-9]{3}", fullmatch=True),
              mnc=st.from_regex(r"[0-9]{2,3}", fullmatch=True),
              cell=st.integers(0, MAX_CELL_IDENTITY["nci"])),
)


@given(_cells)
def test_cell_ids_round_trip(cell: CellId) -> None:
    assert parse_cell_id(cell.text) == cell


# --- payloads from text ---------------------------------------------------------------------


def test_plain_english_text_uses_payload_decoded() -> None:
    payload = payload_for_text("Flood warning for the river valley. Leave now.", language="en")
    assert payload == DecodedPayload(text="Flood warning for the river valley. Leave now.",
                                     character_set=CharacterSet.GSM, language="en")
    assert osmo_decoded_dcs(payload) == cbs_pages(payload.text, language="en").dcs == 0x01


@pytest.mark.parametrize(("text", "language"), [
    ("Water level {rising}", "en"),       # extension table: osmo-cbc cannot encode it
    ("Flut in Köln", "de"),               # non-ASCII GSM: osmo-cbc reads the UTF-8 bytes
    ("Наводнение", "ru"),                 # UCS-2: osmo-cbc sets no UCS-2 DCS
    ("Alerte inondation", "ja"),          # a language osmo-cbc would lose (0x0F, not 0x10)
    ("x " * 60, "en"),                    # two pages: osmo-cbc packs across the page border
])
def test_other_texts_use_capcast_pages(text: str, language: str) -> None:
    payload = payload_for_text(text, language=language)
    assert isinstance(payload, EncodedPayload)
    pages = cbs_pages(text, language=language)
    assert (payload.dcs, payload.pages) == (pages.dcs, pages.pages)
    assert all(len(page) == 82 for page in payload.pages)
    assert decode_cbs_pages(payload.dcs, payload.pages)[1] == text.rstrip("\r")


def test_payload_decoded_can_be_turned_off_and_text_is_required() -> None:
    assert isinstance(payload_for_text("Hello", language="en", allow_decoded=False),
                      EncodedPayload)
    with pytest.raises(LocalProtocolError):
        payload_for_text("", language="en")


def test_no_language_gives_the_unspecified_dcs_both_ways() -> None:
    payload = payload_for_text("Test", language=None)
    assert isinstance(payload, DecodedPayload) and osmo_decoded_dcs(payload) == 0x0F


@pytest.mark.parametrize(("payload", "dcs"), [
    (DecodedPayload(text="a", character_set=CharacterSet.GSM, language="de"), 0x00),
    (DecodedPayload(text="a", character_set=CharacterSet.GSM, language="is"), 0x24),
    (DecodedPayload(text="a", character_set=CharacterSet.GSM, language="ja"), 0x0F),
    (DecodedPayload(text="a", character_set=CharacterSet.GSM, dcs_class=2), 0xF2),
    (DecodedPayload(text="a", character_set=CharacterSet.GSM), 0x0F),
    (DecodedPayload(text="00", character_set=CharacterSet.EIGHT_BIT, dcs_class=1), 0xF5),
    (DecodedPayload(text="a", character_set=CharacterSet.UCS2, language="en"), 0x00),
])
def test_osmo_decoded_dcs(payload: DecodedPayload, dcs: int) -> None:
    assert osmo_decoded_dcs(payload) == dcs


# --- answers --------------------------------------------------------------------------------


def _interpret(status: int, body: bytes = b"", operation: Operation = Operation.CREATE,
               after_unknown: bool = False) -> Confirmation:
    return interpret_response(operation, status, body, message_id=4370,
                              after_unknown=after_unknown, endpoint="http://cbc:12345/api",
                              operator="Telco")


@pytest.mark.parametrize("status", [200, 201, 204])
@pytest.mark.parametrize("operation", list(Operation))
def test_success(status: int, operation: Operation) -> None:
    assert _interpret(status, operation=operation) is Confirmation.ACCEPTED


@pytest.mark.parametrize(("status", "body", "operation", "error"), [
    (400, b"CBCMSG 'cbe_name' is mandatory", Operation.CREATE, CbcRequestRefused),
    (404, b"Unknown message ID", Operation.DELETE, CbcUnknownMessage),
    (404, b"Unknown message ID", Operation.REPLACE, CbcUnknownMessage),
    (409, b"Could not allocate", Operation.CREATE, CbcMessageActive),
    (409, b"Serial number unchanged", Operation.REPLACE, CbcMessageActive),
    (500, b"Illegal FSM event", Operation.DELETE, CbcIllegalState),
    (501, b"Not Implemented", Operation.CREATE, CbcNotImplemented),
    (502, b"<html>Bad Gateway</html>", Operation.CREATE, CbcUnexpectedStatus),
    (302, b"", Operation.CREATE, CbcUnexpectedStatus),
])
def test_errors(status: int, body: bytes, operation: Operation,
                error: type[CbcError]) -> None:
    with pytest.raises(error) as caught:
        _interpret(status, body, operation)
    exc = caught.value
    assert type(exc) is error
    assert exc.status == status and exc.body == body.decode()
    assert exc.link == "http://cbc:12345/api" and exc.operator == "Telco"
    assert getattr(exc, "message_id", None) == 4370
    assert "http://cbc:12345/api" in str(exc) and "Telco" in str(exc)


def test_bad_request_carries_the_reason_and_explains_the_scope() -> None:
    with pytest.raises(CbcRequestRefused) as caught:
        _interpret(400, b"CBCMSG only 'scope_plmn' supported")
    assert caught.value.reason == "CBCMSG only 'scope_plmn' supported"
    assert "PLMN-wide" in str(caught.value)


def test_conflict_names_the_channel() -> None:
    with pytest.raises(CbcMessageActive) as caught:
        _interpret(409, b"Could not allocate")
    assert "4370 (presidential)" in str(caught.value)
    assert "another alert on this channel" in str(caught.value)


def test_after_a_lost_answer_409_and_404_mean_the_earlier_attempt_landed() -> None:
    assert _interpret(409, b"Could not allocate", Operation.CREATE, after_unknown=True) \
        is Confirmation.EARLIER_ATTEMPT
    assert _interpret(404, b"Unknown message ID", Operation.DELETE, after_unknown=True) \
        is Confirmation.EARLIER_ATTEMPT
    # A replace's 409 is a real conflict (the serial number did not change) even then.
    with pytest.raises(CbcMessageActive):
        _interpret(409, b"Serial number unchanged", Operation.REPLACE, after_unknown=True)
    with pytest.raises(CbcMessageActive):
        _interpret(409, b"Could not allocate", Operation.CREATE, after_unknown=False)


def test_error_families() -> None:
    assert issubclass(CbcUnreachable, ConnectionLost) and issubclass(CbcUnreachable, CbcError)
    assert issubclass(CbcTimeout, GatewayTimeout) and issubclass(CbcTimeout, CbcError)
    assert issubclass(CbcUnexpectedStatus, RemoteProtocolError)
    assert issubclass(EcbeRequestError, RemoteProtocolError)


# --- what osmo-cbc accepts (the simulator's parser) -----------------------------------------


def valid_document() -> dict[str, Any]:
    return message_to_json(message(), OSMO)


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return document


_DELETE = object()
_PAYLOAD = "smscb_message.payload"


@pytest.mark.parametrize(("path", "value", "reason"), [
    ("cbe_name", _DELETE, "CBCMSG 'cbe_name' is mandatory"),
    ("cbe_name", 5, "CBCMSG 'cbe_name' is mandatory"),
    ("category", "urgent", "CBCMSG 'category' unknown"),
    ("repetition_period", _DELETE, "CBCMSG 'repetiton_period' is mandatory"),
    ("repetition_period", 4096, "CBCMSG 'repetiton_period' out of range"),
    ("repetition_period", 1.0, "CBCMSG 'repetiton_period' out of range"),
    ("repetition_period", True, "CBCMSG 'repetiton_period' out of range"),
    ("num_of_bcast", 65536, "CBCMSG 'num_of_bcast' out of range"),
    ("warning_period_sec", -1, "CBCMSG 'warning_period_sec' out of range"),
    ("scope", _DELETE, "CBCMSG 'scope' is mandatory"),
    ("scope", {"scope_cell_list": {"cells": ["262-01-1-2"]}},
     "CBCMSG only 'scope_plmn' supported"),
    ("scope", [], "CBCMSG only 'scope_plmn' supported"),
    ("smscb_message", _DELETE, "CBCMSG 'smscb_message' is mandatory"),
    ("smscb_message", 5, "not a JSON object"),
    ("smscb_message.serial_nr", _DELETE, "serial_nr is mandatory"),
    ("smscb_message.serial_nr", 5, "'serial_nr' must be present and an object"),
    ("smscb_message.serial_nr", {"serial_nr_encoded": 65536},
     "Either 'serial_nr_encoded' or 'serial_nr_decoded' are mandatory"),
    ("smscb_message.serial_nr", {},
     "Either 'serial_nr_encoded' or 'serial_nr_decoded' are mandatory"),
    ("smscb_message.serial_nr", {"serial_nr_decoded": {"msg_code": 1, "update_nr": 1}},
     "'geo_scope' is mandatory"),
    ("smscb_message.serial_nr",
     {"serial_nr_decoded": {"geo_scope": "world", "msg_code": 1, "update_nr": 1}},
     "'geo_scope' is invalid"),
    ("smscb_message.serial_nr",
     {"serial_nr_decoded": {"geo_scope": "cell_wide", "msg_code": 1025, "update_nr": 1}},
     "'msg_code' is out of range"),
    ("smscb_message.serial_nr",
     {"serial_nr_decoded": {"geo_scope": "cell_wide", "msg_code": 1, "update_nr": 16}},
     "'update_nr' is out of range"),
    ("smscb_message.message_id", _DELETE, "message_id out of range"),
    ("smscb_message.message_id", 65536, "message_id out of range"),
    (_PAYLOAD, _DELETE, "'payload' must be JSON object"),
    (_PAYLOAD, {}, "'payload_type_encoded', 'payload_type_decoded' or 'payload_etws' must be "
                   "present"),
    (_PAYLOAD, {"payload_encoded": {"pages": ["00"]}}, "'dcs' out of range"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1}}, "'pages' absent or not an array"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1, "pages": []}}, "'pages' array size out of range"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1, "pages": ["00"] * 16}},
     "'pages' array size out of range"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1, "pages": [5]}},
     "'pages' array must contain strings"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1, "pages": ["00" * 83]}},
     "'pages' actual data array must contain strings up to 82 hex nibbles"),
    (_PAYLOAD, {"payload_encoded": {"dcs": 1, "pages": ["0g"]}},
     "'pages' array must contain hex strings"),
    (_PAYLOAD, {"payload_decoded": {"data_utf8": "x"}}, "Currently 'character_set' is mandatory"),
    (_PAYLOAD, {"payload_decoded": {"character_set": "gsm", "language": "eng",
                                    "data_utf8": "x"}},
     "Only two-digit 'language' code is supported"),
    (_PAYLOAD, {"payload_decoded": {"character_set": "gsm", "dcs_class": 4, "data_utf8": "x"}},
     "'dcs_class' out of range"),
    (_PAYLOAD, {"payload_decoded": {"character_set": "gsm"}}, "'data_utf8' is mandatory"),
    (_PAYLOAD, {"payload_decoded": {"character_set": "latin1", "data_utf8": "x"}},
     "Invalid 'character_set'"),
    (_PAYLOAD, {"payload_etws": {}}, "'warning_type' must be object"),
    (_PAYLOAD, {"payload_etws": {"warning_type": {}}},
     "either 'warning_type_encoded' or 'warning_type_decoded' must be present"),
    (_PAYLOAD, {"payload_etws": {"warning_type": {"warning_type_decoded": "meteor"}}},
     "'warning_type_decoded' is invalid"),
    (_PAYLOAD, {"payload_etws": {"warning_type": {"warning_type_encoded": 0},
                                 "warning_sec_info": "zz"}},
     "'warnin_sec_info' must be hex string"),
])
def test_parser_refuses_with_osmo_cbc_texts(path: str, value: Any, reason: str) -> None:
    document = _set(valid_document(), path, value)
    with pytest.raises(EcbeRequestError) as caught:
        parse_message(document, dialect=Dialect.OSMO_CBC)
    assert caught.value.reason == reason


def test_parser_refuses_what_is_not_an_object() -> None:
    with pytest.raises(EcbeRequestError, match="CBCMSG must be JSON object"):
        parse_message([], dialect=Dialect.OSMO_CBC)


def test_parser_accepts_what_osmo_cbc_accepts() -> None:
    document = _set(valid_document(), "category", 7)  # not a string: counts as absent
    _set(document, "num_of_bcast", _DELETE)
    _set(document, "smscb_message.serial_nr",
         {"serial_nr_decoded": {"geo_scope": "plmn_wide", "msg_code": 1024, "update_nr": 3}})
    _set(document, "smscb_message.payload",
         {"payload_etws": {"warning_type": {"warning_type_decoded": "earthquake_and_tsuname"}}})
    parsed = parse_message(document, dialect=Dialect.OSMO_CBC).message
    assert parsed.category is Category.NORMAL and parsed.num_broadcasts == 0
    assert parsed.serial_number == (1 << 14) | 3  # msg_code 1024 masked to 0, as osmo-cbc does
    assert parsed.payload == EtwsPayload(warning_type=2)


def test_capcast_dialect_parses_cell_lists() -> None:
    document = valid_document()
    document["scope"] = {"scope_cell_list": {"cells": ["262-01-1-2", "262-01-001-2",
                                                       "nr:262-01-9"]}}
    parsed = parse_message(document, dialect=Dialect.CAPCAST).message
    assert parsed.cells == (CellId(mcc="262", mnc="01", lac=1, cell=2),
                            CellId(rat=Rat.NR, mcc="262", mnc="01", cell=9))


@pytest.mark.parametrize(("scope", "reason"), [
    ({"scope_cell_list": {"cells": []}}, "must name at least one cell"),
    ({"scope_cell_list": {}}, "must be an object with a 'cells' array"),
    ({"scope_cell_list": {"cells": ["262-01-1-2", "x"]}}, "cell 1: 'x' is not a cell id"),
    ({"scope_cell_list": {"cells": [5]}}, "cell 0"),
    ({"scope_plmn": {}, "scope_cell_list": {"cells": ["262-01-1-2"]}}, "only one of"),
    ({}, "'scope_plmn' or 'scope_cell_list'"),
])
def test_capcast_dialect_refuses_bad_cell_lists(scope: dict[str, Any], reason: str) -> None:
    document = valid_document()
    document["scope"] = scope
    with pytest.raises(EcbeRequestError, match=reason.replace("(", r"\(")):
        parse_message(document, dialect=Dialect.CAPCAST)


@pytest.mark.parametrize(("content_type", "body"), [
    (None, b"{}"), ("text/plain", b"{}"), ("application/json", b"{"),
    ("application/json", b"\xff"), ("application/json", b'{"a": 99999999999999999999}'),
])
def test_bodies_that_are_not_json(content_type: str | None, body: bytes) -> None:
    with pytest.raises(EcbeRequestError, match=r"^REST: No JSON Body$"):
        parse_body(content_type, body)


def test_json_body() -> None:
    assert parse_body("application/json; charset=utf-8", b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(("text", "value"), [
    ("4370", 4370), ("0", 0), ("65535", 65535), ("abc", 0), (" 12x", 12), ("+5", 5),
    ("", 0), ("65536", None), ("-1", None), ("99999999999999999999", None),
])
def test_message_id_in_the_path_is_read_like_atoi(text: str, value: int | None) -> None:
    assert parse_message_id(text) == value


# --- JSON round trip ------------------------------------------------------------------------

_pages = st.lists(st.binary(min_size=0, max_size=82), min_size=1, max_size=15).map(tuple)
_payloads = st.one_of(
    st.builds(EncodedPayload, dcs=st.integers(0, 255), pages=_pages),
    st.builds(DecodedPayload, text=st.text(), character_set=st.sampled_from(CharacterSet),
              language=st.one_of(st.none(), st.from_regex(r"[a-z]{2}", fullmatch=True)),
              dcs_class=st.one_of(st.none(), st.integers(0, 3))),
    st.builds(EtwsPayload, warning_type=st.integers(0, 255), emergency_user_alert=st.booleans(),
              popup_on_display=st.booleans(),
              warning_sec_info=st.one_of(st.none(), st.binary(min_size=50, max_size=50))),
)
_messages = st.builds(
    CbcMessage, message_id=st.integers(0, 0xFFFF), serial_number=st.integers(0, 0xFFFF),
    payload=_payloads, repetition_period=st.integers(0, 4095),
    num_broadcasts=st.integers(0, 0xFFFF),
    warning_period=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    category=st.sampled_from(Category),
    cells=st.one_of(st.none(), st.lists(_cells, min_size=1, max_size=5).map(tuple)))


@given(_messages, st.sampled_from(SerialForm), st.text(min_size=1))
def test_json_round_trip(msg: CbcMessage, form: SerialForm, cbe_name: str) -> None:
    dialect = Dialect.CAPCAST if msg.cells is not None else Dialect.OSMO_CBC
    options = EcbeOptions(dialect=dialect, cbe_name=cbe_name, serial_form=form)
    body = create_request(msg, options).body
    assert body is not None
    parsed = parse_message(parse_body("application/json", body), dialect=dialect)
    assert (parsed.message, parsed.cbe_name, parsed.serial_form) == (msg, cbe_name, form)


# --- the simulator's state machine ----------------------------------------------------------


def _post(model: CbcModel, document: object, content_type: str = "application/json") -> Any:
    return model.handle("POST", "/api/ecbe/v1/message", content_type,
                        json.dumps(document).encode())


def _state(model: CbcModel, message_id: int = 4370) -> MessageState:
    return model.messages[message_id].state


def test_model_create_conflict_delete() -> None:
    model = CbcModel(dialect=Dialect.OSMO_CBC, create_delay=15.0)
    created = _post(model, valid_document())
    assert (created.status, created.body, created.outcome, created.delay) == \
        (200, "", Outcome.CREATED, 15.0)
    assert _state(model) is MessageState.CREATING
    again = _post(model, valid_document())
    assert (again.status, again.body, again.outcome) == (409, "Could not allocate",
                                                         Outcome.REFUSED)
    early = model.handle("DELETE", "/api/ecbe/v1/message/4370", None, b"")
    assert (early.status, early.body) == (500, "Illegal FSM event")
    assert created.complete is not None
    created.complete()
    assert _state(model) is MessageState.ACTIVE
    deleted = model.handle("DELETE", "/api/ecbe/v1/message/4370", None, b"")
    assert (deleted.status, deleted.outcome) == (200, Outcome.DELETED)
    assert _state(model) is MessageState.DELETING
    assert _post(model, valid_document()).status == 409  # still allocated while deleting
    assert deleted.complete is not None
    deleted.complete()
    assert 4370 not in model.messages
    gone = model.handle("DELETE", "/api/ecbe/v1/message/4370", None, b"")
    assert (gone.status, gone.body) == (404, "Unknown message ID")
    assert _post(model, valid_document()).status == 200  # the id can be used again


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/ecbe/v1/message/4370", 404), ("GET", "/api/ecbe/v1/message", 404),
    ("PUT", "/api/ecbe/v1/message/4370", 404), ("POST", "/api/ecbe/v1/message/4370", 404),
    ("DELETE", "/api/ecbe/v1/message/70000", 400), ("DELETE", "/api/ecbe/v1/message/abc", 404),
    ("DELETE", "/api/ecbe/v1/message/", 404), ("DELETE", "/api/ecbe/v1/message/1/2", 404),
    ("GET", "/", 404),
])
def test_model_other_requests(method: str, path: str, status: int) -> None:
    decision = CbcModel(dialect=Dialect.OSMO_CBC).handle(method, path, None, b"")
    assert decision.status == status and decision.outcome is Outcome.REFUSED


def test_model_refuses_bodies_as_osmo_cbc() -> None:
    model = CbcModel(dialect=Dialect.OSMO_CBC)
    assert _post(model, valid_document(), "text/plain").body == "REST: No JSON Body"
    assert _post(model, {}).body == "CBCMSG 'cbe_name' is mandatory"
    no_scope = valid_document()
    del no_scope["scope"]
    assert _post(model, no_scope).body == "CBCMSG 'scope' is mandatory"
    cells = valid_document()
    cells["scope"] = {"scope_cell_list": {"cells": ["262-01-1-2"]}}
    refused = _post(model, cells)
    assert (refused.status, refused.body) == (400, "CBCMSG only 'scope_plmn' supported")
    assert not model.messages
    assert _post(CbcModel(dialect=Dialect.CAPCAST), cells).status == 200


def test_model_capcast_replace() -> None:
    model = CbcModel(dialect=Dialect.CAPCAST)

    def put(document: dict[str, Any], path_id: str = "4370") -> Any:
        return model.handle("PUT", f"/api/ecbe/v1/message/{path_id}", "application/json",
                            json.dumps(document).encode())

    new = message_to_json(message(serial_number=0x4012), CAPCAST)
    assert put(new).status == 404
    created = _post(model, valid_document())
    assert put(new).body == "Illegal FSM event"  # the create is still pending
    assert created.complete is not None
    created.complete()
    assert put(new, "4371").status == 400
    assert put(new, "x").status == 400
    changed_text = copy.deepcopy(valid_document())
    changed_text["smscb_message"]["payload"]["payload_encoded"]["dcs"] = 2
    assert (put(changed_text).status, put(changed_text).body) == (409, "Serial number unchanged")
    replaced = put(new)
    assert (replaced.status, replaced.outcome) == (200, Outcome.REPLACED)
    assert replaced.complete is not None
    replaced.complete()
    assert model.messages[4370].message.serial_number == 0x4012
    again = put(new)
    assert (again.status, again.outcome) == (200, Outcome.UNCHANGED)


def test_umts_cell_ids_carry_28_bit_utran_ids() -> None:
    # Regression: inventories write UMTS cells as mcc-mnc-lac-ci with the 28-bit
    # UTRAN cell id; the scope refused them as if every CI were 16-bit GSM.
    assert parse_cell_id("001-01-1-65684").cell == 65684
    assert parse_cell_id("umts:001-01-1-268435455").cell == (1 << 28) - 1
    with pytest.raises(ValueError, match="CI 65684"):
        parse_cell_id("gsm:001-01-1-65684")
    with pytest.raises(ValueError):
        parse_cell_id("001-01-1-268435456")
