"""The SMPP codec: smpplib's encoding behind our records, SMPP 5.0 broadcast, receipts.

Hex vectors marked "node-smpp" were produced by node-smpp 0.5.1 (``PDU.toBuffer()``),
an implementation capcast did not write.
"""

from __future__ import annotations

import contextlib
import string

import pytest
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.errors import LocalProtocolError, SmppError
from gateways.smpp import codec
from gateways.smpp.codec import (
    BroadcastArea,
    BroadcastContentType,
    BroadcastFrequencyInterval,
    BroadcastSm,
    CommandId,
    DeliverSm,
    MessageState,
    PduDecodeError,
    SubmitSm,
    Tlv,
    TlvTag,
)
from gateways.smpp.errors import (
    STATUS_CLASSES,
    CommandStatusError,
    FlowControlError,
    InvalidPassword,
    MessageQueueFull,
    Throttled,
    UnknownCommandStatus,
    error_for_status,
    is_retryable,
    status_name,
)

# node-smpp 0.5.1: broadcast_sm with two alias areas, content type GSM/4370,
# broadcast_rep_num 300 (two octets: 01 2c), every 5 minutes, message_payload.
NODE_BROADCAST_SM = bytes.fromhex(
    "0000007000000111000000000000000700050043415043415354000000000000000006060011003236322d"
    "30312d313233342d3536373806060011003236322d30312d313233342d353637390601000301111206040002"
    "012c060500030900050424000c4576616375617465206e6f77")
NODE_BROADCAST_SM_RESP = bytes.fromhex("0000001780000111000000000000000762633166303000")
# node-smpp 0.5.1: a delivery receipt with the text form (id in decimal) and the
# receipted_message_id (hex, NUL-terminated) and message_state TLVs.
NODE_RECEIPT = bytes.fromhex(
    "000000a30000000500000000000000030000003439313531313233343536373800000043415043415354000400"
    "000000000000006069643a37393336207375623a30303120646c7672643a303031207375626d697420646174"
    "653a3236313132383135333020646f6e6520646174653a3236313132383135333020737461743a44454c4956"
    "5244206572723a30303020746578743a001e000531663030000427000102")
NODE_QUERY_BROADCAST_RESP = bytes.fromhex(
    "00000028800001120000000000000009626331663030000427000101060600030063310608000164")
NODE_BIND_TRANSCEIVER = bytes.fromhex(
    "000000270000000900000000000000016361706361737400733363726574004342430050000000")


# -- captured vectors ---------------------------------------------------------------------


def test_decodes_node_smpp_broadcast_sm() -> None:
    pdu = codec.decode(NODE_BROADCAST_SM)
    assert isinstance(pdu, BroadcastSm)
    assert pdu.sequence == 7
    assert (pdu.source_addr_ton, pdu.source_addr) == (5, "CAPCAST")
    assert [a.name for a in pdu.areas] == ["262-01-1234-5678", "262-01-1234-5679"]
    assert pdu.content_type == BroadcastContentType(network_type=1, content_type=4370)
    assert pdu.rep_num == 300
    assert pdu.frequency_interval == BroadcastFrequencyInterval(unit=9, count=5)
    assert pdu.frequency_interval.total_seconds == 300
    assert pdu.message_payload == b"Evacuate now"


def test_encodes_broadcast_sm_exactly_as_node_smpp() -> None:
    pdu = BroadcastSm(
        sequence=7, source_addr_ton=5, source_addr="CAPCAST",
        areas=(BroadcastArea.alias("262-01-1234-5678"), BroadcastArea.alias("262-01-1234-5679")),
        content_type=BroadcastContentType(network_type=1, content_type=4370), rep_num=300,
        frequency_interval=BroadcastFrequencyInterval(unit=9, count=5),
        message_payload=b"Evacuate now")
    assert codec.encode(pdu) == NODE_BROADCAST_SM


def test_broadcast_rep_num_is_two_octets() -> None:
    raw = codec.encode(BroadcastSm(
        areas=(BroadcastArea.alias("c"),), content_type=BroadcastContentType(), rep_num=1,
        frequency_interval=BroadcastFrequencyInterval.seconds(60)))
    assert bytes.fromhex("0604" "0002" "0001") in raw
    # A one-octet rep_num (Rusmpp's mistake) is refused, not misread.
    bad = raw.replace(bytes.fromhex("060400020001"), bytes.fromhex("0604000101"))
    bad = len(bad).to_bytes(4, "big") + bad[4:]
    with pytest.raises(PduDecodeError) as info:
        codec.decode(bad)
    assert info.value.status == 0xC2


def test_broadcast_sm_without_mandatory_tlvs_is_refused_both_ways() -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(BroadcastSm(content_type=BroadcastContentType(),
                                 frequency_interval=BroadcastFrequencyInterval(count=1)))
    raw = codec.encode(BroadcastSm(areas=(BroadcastArea.alias("c1"),),
                                   content_type=BroadcastContentType(),
                                   frequency_interval=BroadcastFrequencyInterval(count=1)))
    area_tlv = BroadcastArea.alias("c1").to_tlv()
    no_area = raw.replace(codec.encode_tlvs([area_tlv]), b"")
    no_area = len(no_area).to_bytes(4, "big") + no_area[4:]
    with pytest.raises(PduDecodeError) as info:
        codec.decode(no_area)
    assert info.value.status == 0xC3


def test_broadcast_responses_from_node_smpp() -> None:
    resp = codec.decode(NODE_BROADCAST_SM_RESP)
    assert isinstance(resp, codec.BroadcastSmResp)
    assert (resp.sequence, resp.message_id, resp.failed_areas) == (7, "bc1f00", ())
    query = codec.decode(NODE_QUERY_BROADCAST_RESP)
    assert isinstance(query, codec.QueryBroadcastSmResp)
    assert query.message_state == MessageState.ENROUTE
    assert [a.name for a in query.areas] == ["c1"]
    assert query.area_success == 100
    assert codec.encode(query) == NODE_QUERY_BROADCAST_RESP


def test_bind_transceiver_matches_node_smpp_and_smpplib() -> None:
    bind = codec.BindTransceiver(sequence=1, system_id="capcast", password="s3cret",
                                 system_type="CBC", interface_version=0x50)
    assert codec.encode(bind) == NODE_BIND_TRANSCEIVER
    assert codec.decode(NODE_BIND_TRANSCEIVER) == bind


def test_receipt_from_node_smpp_text_and_tlvs() -> None:
    pdu = codec.decode(NODE_RECEIPT)
    assert isinstance(pdu, DeliverSm)
    receipt = codec.parse_receipt(pdu)
    assert receipt is not None
    # The TLV wins over the text form's decimal id.
    assert receipt.message_id == "1f00"
    assert receipt.state is MessageState.DELIVERED
    assert receipt.recipient == "4915112345678"
    assert receipt.error == "000"
    assert receipt.submit_date == "2611281530"


@pytest.mark.parametrize(("text", "message_id", "state"), [
    ("id:0123456789 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
     "stat:DELIVRD err:000 text:Flood warning", "0123456789", MessageState.DELIVERED),
    ("id:A1B2C3 sub:001 dlvrd:000 submit date:2401011200 done date:2401011201 stat:UNDELIV "
     "err:001 Text:xx", "A1B2C3", MessageState.UNDELIVERABLE),
    ("id:77 stat:EXPIRED", "77", MessageState.EXPIRED),
    ("id:78 stat:REJECTD err:069", "78", MessageState.REJECTED),
])
def test_receipt_text_form(text: str, message_id: str, state: MessageState) -> None:
    pdu = DeliverSm(sequence=5, source_addr="491234", esm_class=0x04,
                    short_message=text.encode("ascii"))
    receipt = codec.parse_receipt(pdu)
    assert receipt is not None
    assert (receipt.message_id, receipt.state, receipt.sequence) == (message_id, state, 5)


def test_mobile_originated_message_is_not_a_receipt() -> None:
    assert codec.parse_receipt(DeliverSm(short_message=b"id:1 stat:DELIVRD")) is None


# -- smpplib behind our API ---------------------------------------------------------------


def _smpplib_bytes(command: str, sequence: int, **fields: object) -> bytes:
    made = smpplib.smpp.make_pdu(command, client=codec.SequenceGenerator(), **fields)
    made.sequence = sequence
    raw: bytes = made.generate()
    return raw


def test_submit_sm_is_smpplibs_bytes() -> None:
    pdu = SubmitSm(sequence=42, source_addr_ton=5, source_addr="CAPCAST", dest_addr_ton=1,
                   dest_addr_npi=1, destination_addr="4915112345678", registered_delivery=1,
                   short_message=b"Flood warning")
    expected = _smpplib_bytes("submit_sm", 42, source_addr_ton=5, source_addr="CAPCAST",
                              dest_addr_ton=1, dest_addr_npi=1,
                              destination_addr="4915112345678", registered_delivery=1,
                              short_message=b"Flood warning")
    assert codec.encode(pdu) == expected
    assert codec.decode(expected) == pdu


def test_fast_responses_equal_smpplib() -> None:
    assert codec.encode_submit_sm_resp(9, "abc") == _smpplib_bytes(
        "submit_sm_resp", 9, message_id="abc")
    assert codec.encode_fast(codec.SubmitSmResp(sequence=9, message_id="abc")) == \
        codec.encode(codec.SubmitSmResp(sequence=9, message_id="abc"))
    assert codec.encode_deliver_sm_resp(4) == _smpplib_bytes("deliver_sm_resp", 4,
                                                            message_id="")


def test_template_renders_what_encode_builds() -> None:
    sample = SubmitSm(source_addr="CAPCAST", esm_class=0x40, data_coding=8,
                      validity_period=codec.smpp_time(1_800_000_000.0), registered_delivery=1,
                      short_message=bytes.fromhex("050003aa0201") + "Ünïcode".encode("utf-16-be"),
                      tlvs=(Tlv.u16(TlvTag.USER_MESSAGE_REFERENCE, 7),))
    template = codec.SubmitTemplate(sample)
    for seq, destination in [(1, "4915112345678"), (0x7FFFFFFF, "1"), (77, "0" * 20)]:
        expected = codec.encode(SubmitSm(**{**_fields(sample), "sequence": seq,
                                            "destination_addr": destination}))
        assert template.render(seq, destination.encode()) == expected


def _fields(pdu: SubmitSm) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(pdu, f.name) for f in fields(pdu)}


def test_fields_that_do_not_fit_are_refused_not_truncated() -> None:
    with pytest.raises(LocalProtocolError, match="destination_addr"):
        codec.encode(SubmitSm(destination_addr="1" * 21))
    with pytest.raises(LocalProtocolError, match="message_payload"):
        codec.encode(SubmitSm(short_message=b"x" * 255))
    with pytest.raises(LocalProtocolError, match="ASCII"):
        codec.encode(SubmitSm(source_addr="Störung"))
    with pytest.raises(LocalProtocolError):
        codec.encode(SubmitSm(esm_class=256))


def test_sequence_generator_wraps() -> None:
    gen = codec.SequenceGenerator(0x7FFFFFFE)
    assert [gen.next_sequence() for _ in range(3)] == [0x7FFFFFFE, 0x7FFFFFFF, 1]
    with pytest.raises(ValueError):
        codec.SequenceGenerator(0)


def test_scan_submit_sm_agrees_with_decode() -> None:
    raw = codec.encode(SubmitSm(sequence=3, destination_addr="4915", registered_delivery=1,
                                short_message=b"hi", tlvs=(Tlv(tag=0x1400, value=b"v"),)))
    scanned = codec.scan_submit_sm(raw)
    assert (scanned.sequence, scanned.destination_addr, scanned.registered_delivery) == \
        (3, "4915", 1)
    assert scanned.decode() == codec.decode(raw)
    with pytest.raises(PduDecodeError):
        codec.scan_submit_sm(raw[:-2])


# -- bad input ----------------------------------------------------------------------------


def test_unknown_command_and_unknown_tlvs_are_kept() -> None:
    raw = bytes.fromhex("00000018" "00000099" "00000000" "00000005" "abcdef01")
    raw = raw[:4] + bytes.fromhex("00000099") + raw[8:]
    raw = (20).to_bytes(4, "big") + raw[4:]
    pdu = codec.decode(raw)
    assert isinstance(pdu, codec.UnknownPdu)
    assert (pdu.raw_command_id, pdu.sequence, pdu.body) == (0x99, 5, bytes.fromhex("abcdef01"))
    with_tlv = codec.encode(codec.SubmitSmResp(sequence=2, message_id="x",
                                               tlvs=(Tlv(tag=0x7777, value=b"zz"),)))
    assert codec.decode(with_tlv).tlvs == (Tlv(tag=0x7777, value=b"zz"),)


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
def test_truncated_tlv_is_an_error_with_the_right_status(cut: int) -> None:
    raw = codec.encode(SubmitSm(sequence=8, destination_addr="1",
                                tlvs=(Tlv.u16(TlvTag.SAR_MSG_REF_NUM, 5),)))
    bad = raw[:-cut]
    bad = len(bad).to_bytes(4, "big") + bad[4:]
    with pytest.raises(PduDecodeError) as info:
        codec.decode(bad)
    assert info.value.status == 0xC0
    assert info.value.sequence == 8
    assert not info.value.fatal


def test_wrong_command_length_is_fatal() -> None:
    raw = codec.encode(codec.EnquireLink(sequence=1))
    with pytest.raises(PduDecodeError) as info:
        codec.decode(raw + b"\0")
    assert info.value.fatal and info.value.status == 0x02
    with pytest.raises(PduDecodeError):
        codec.decode(raw[:10])


def test_missing_nul_and_overlong_short_message() -> None:
    no_nul = bytes.fromhex("00000014" "80000004" "00000000" "00000003") + b"abcd"
    with pytest.raises(PduDecodeError) as info:
        codec.decode(no_nul)
    assert info.value.status == 0x02
    raw = bytearray(codec.encode(SubmitSm(destination_addr="1", short_message=b"abc")))
    raw[-4] = 200  # sm_length past the end
    with pytest.raises(PduDecodeError) as info:
        codec.decode(bytes(raw))
    assert info.value.status == 0x01


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_decode_or_raise_pdu_decode_error(body: bytes) -> None:
    for command_id in (4, 5, 9, 0x80000004, 0x111, 0x80000112, 0x113, 0x21, 0x1234):
        raw = (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big") + \
            bytes(4) + (1).to_bytes(4, "big") + body
        try:
            pdu = codec.decode(raw)
        except PduDecodeError as exc:
            assert exc.sequence == 1
        else:
            assert pdu.sequence == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_random_whole_pdus_never_raise_anything_else(raw: bytes) -> None:
    with contextlib.suppress(PduDecodeError):
        codec.decode(raw)


# -- round trips --------------------------------------------------------------------------

_cstr = st.text(alphabet=string.ascii_letters + string.digits + "+-", max_size=12)
_byte = st.integers(0, 255)
_tlvs = st.lists(st.builds(Tlv, tag=st.integers(0x1400, 0x14FF), value=st.binary(max_size=8)),
                 max_size=3).map(tuple)


@settings(max_examples=150, deadline=None)
@given(seq=st.integers(1, 0x7FFFFFFF), source=_cstr, dest=_cstr, esm=_byte, dcs=_byte,
       registered=_byte, sm=st.binary(max_size=254), tlvs=_tlvs,
       cls=st.sampled_from([SubmitSm, DeliverSm]))
def test_short_message_round_trip_and_smpplib_agrees(
        seq: int, source: str, dest: str, esm: int, dcs: int, registered: int, sm: bytes,
        tlvs: tuple[Tlv, ...], cls: type[SubmitSm] | type[DeliverSm]) -> None:
    pdu = cls(sequence=seq, source_addr=source, destination_addr=dest, esm_class=esm,
              data_coding=dcs, registered_delivery=registered, short_message=sm, tlvs=tlvs)
    raw = codec.encode(pdu)
    assert codec.decode(raw) == pdu
    theirs = smpplib.smpp.parse_pdu(raw, client=codec.SequenceGenerator(),
                                    allow_unknown_opt_params=True)
    assert theirs.destination_addr.decode() == dest
    assert (theirs.short_message or b"") == sm
    assert theirs.esm_class == esm


@settings(max_examples=100, deadline=None)
@given(areas=st.lists(st.binary(min_size=0, max_size=100), min_size=1, max_size=5),
       fmt=st.integers(0, 2), network=st.integers(0, 3), content=st.integers(0, 0xFFFF),
       rep=st.none() | st.integers(0, 0xFFFF), unit=st.sampled_from([0, 8, 9, 10, 11]),
       count=st.integers(0, 0xFFFF), payload=st.none() | st.binary(max_size=300),
       seq=st.integers(1, 0x7FFFFFFF))
def test_broadcast_sm_round_trip(areas: list[bytes], fmt: int, network: int, content: int,
                                 rep: int | None, unit: int, count: int, payload: bytes | None,
                                 seq: int) -> None:
    pdu = BroadcastSm(sequence=seq, areas=tuple(BroadcastArea(format=fmt, details=a)
                                                for a in areas),
                      content_type=BroadcastContentType(network_type=network,
                                                        content_type=content),
                      rep_num=rep, frequency_interval=BroadcastFrequencyInterval(unit=unit,
                                                                                 count=count),
                      message_payload=payload)
    assert codec.decode(codec.encode(pdu)) == pdu


def test_every_request_has_its_response() -> None:
    for command_id in (CommandId.SUBMIT_SM, CommandId.BROADCAST_SM, CommandId.QUERY_BROADCAST_SM,
                       CommandId.CANCEL_BROADCAST_SM, CommandId.BIND_TRANSCEIVER):
        resp = codec.response_for(command_id, sequence=3, status=0x58)
        assert resp is not None and resp.command_id == command_id | codec.RESPONSE_BIT
        assert codec.decode(codec.encode(resp)) == resp
    assert isinstance(codec.response_for(0x99, sequence=1, status=3), codec.GenericNack)
    assert codec.response_for(CommandId.ALERT_NOTIFICATION, sequence=1, status=0) is None


# -- command_status registry --------------------------------------------------------------


def test_status_registry() -> None:
    assert isinstance(error_for_status(0x58), Throttled)
    assert isinstance(error_for_status(0x14), MessageQueueFull)
    assert isinstance(error_for_status(0x58), FlowControlError)
    assert isinstance(error_for_status(0x0E, command="bind_transceiver"), InvalidPassword)
    assert is_retryable(0x58) and is_retryable(0x14) and not is_retryable(0x0B)
    unknown = error_for_status(0x4D2)
    assert isinstance(unknown, UnknownCommandStatus)
    assert isinstance(unknown, SmppError)
    assert unknown.command_status == 0x4D2
    assert status_name(0x4D2) == "0x000004d2"
    assert status_name(0x112) == "ESME_RINVBCASTCHANIND"
    names = {cls.name for cls in STATUS_CLASSES.values()}
    assert len(names) == len(STATUS_CLASSES) > 60
    assert all(issubclass(cls, CommandStatusError) for cls in STATUS_CLASSES.values())
    assert "ESME_RTHROTTLED" in str(error_for_status(0x58, command="submit_sm"))
