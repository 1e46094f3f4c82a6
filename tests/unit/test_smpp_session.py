"""Two sans-IO SMPP sessions (ESME and SMSC) talking over an in-memory link; bad input."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateways.errors import LocalProtocolError
from gateways.smpp import codec
from gateways.smpp.codec import (
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    DeliverSm,
    EnquireLink,
    GenericNack,
    SubmitSm,
    SubmitSmReceived,
    SubmitSmResp,
    Tlv,
    TlvTag,
)
from gateways.smpp.session import (
    NEED_DATA,
    ConnectionClosed,
    Event,
    ProtocolViolation,
    ReceiptReceived,
    ReceiptTracker,
    Role,
    Session,
    State,
    receipt_keys,
)

# What capcast's ESME writes for its bind (sequence 1), as captured: the same bytes
# node-smpp 0.5.1 produces for these fields.
BIND_HEX = "000000270000000900000000000000016361706361737400733363726574004342430050000000"


def events(session: Session) -> list[Event]:
    out = []
    while (event := session.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def bound_pair(*, window: int = 8, lazy: bool = False) -> tuple[Session, Session]:
    esme = Session(role=Role.ESME, window=window, name="esme")
    smsc = Session(role=Role.SMSC, name="smsc", lazy_submit=lazy)
    data = esme.send(BindTransceiver(system_id="capcast", password="s3cret", system_type="CBC",
                                     interface_version=0x50))
    assert data.hex() == BIND_HEX
    smsc.receive_data(data)
    (bind,) = events(smsc)
    assert isinstance(bind, BindTransceiver) and smsc.state is State.BINDING
    esme.receive_data(smsc.send(BindTransceiverResp(sequence=bind.sequence, system_id="sim")))
    (resp,) = events(esme)
    assert isinstance(resp, BindTransceiverResp)
    assert esme.state is State.BOUND_TRX and smsc.state is State.BOUND_TRX
    return esme, smsc


def test_submit_response_and_receipt_correlation_hex_to_decimal() -> None:
    esme, smsc = bound_pair()
    template = codec.SubmitTemplate(SubmitSm(source_addr="CAPCAST", registered_delivery=1,
                                             short_message=b"Flood"))
    seq, data = esme.send_submit(template, b"4915112345678")
    assert esme.outstanding == 1
    smsc.receive_data(data)
    (submit,) = events(smsc)
    assert isinstance(submit, SubmitSm) and submit.destination_addr == "4915112345678"
    esme.receive_data(smsc.send(SubmitSmResp(sequence=seq, message_id="1A2B")))
    (resp,) = events(esme)
    assert isinstance(resp, SubmitSmResp) and resp.message_id == "1A2B"
    assert esme.outstanding == 0
    esme.expect_receipt(resp.message_id, "job/0")
    # The SMSC writes the same id in decimal in its receipt (0x1A2B = 6699).
    receipt = DeliverSm(source_addr="4915112345678", esm_class=0x04,
                        short_message=b"id:6699 sub:001 dlvrd:001 submit date:2401011200 "
                                      b"done date:2401011201 stat:DELIVRD err:000 text:")
    esme.receive_data(smsc.send(receipt))
    (got,) = events(esme)
    assert isinstance(got, ReceiptReceived)
    assert got.reference == "job/0"
    assert got.receipt.state is codec.MessageState.DELIVERED
    assert len(esme.receipts) == 0  # a final receipt is forgotten


def test_receipt_tlvs_decimal_to_hex() -> None:
    tracker = ReceiptTracker()
    tracker.expect("000255", "ref")
    assert tracker.match("FF", final=False) == "ref"
    assert receipt_keys("00ff") == ["ff", "255"]


def test_receipt_for_unknown_id_is_logged_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    esme, smsc = bound_pair()
    dlr = DeliverSm(sequence=9, source_addr="49", esm_class=0x04,
                    tlvs=(Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, "nope"),
                          Tlv.u8(TlvTag.MESSAGE_STATE, 2)))
    with caplog.at_level(logging.INFO, logger="gateways.smpp.session"):
        esme.receive_data(smsc.send(dlr))
        (got,) = events(esme)
    assert isinstance(got, ReceiptReceived) and got.reference is None
    record = next(r for r in caplog.records
                  if r.__dict__.get("action") == "smpp_receipt_unmatched")
    assert record.__dict__["message_id"] == "nope"
    # The session goes on: the receipt is answered and the link still works.
    esme.send(codec.DeliverSmResp(sequence=got.pdu.sequence))
    assert esme.state is State.BOUND_TRX


def test_tracker_is_bounded() -> None:
    tracker = ReceiptTracker(capacity=3)
    for i in range(5):
        tracker.expect(str(i + 100), f"r{i}")
    assert len(tracker) == 3
    assert tracker.match("100", final=True) is None
    assert tracker.match("104", final=True) == "r4"


def test_enquire_link_and_unbind_are_answered_automatically() -> None:
    esme, smsc = bound_pair()
    smsc.receive_data(esme.send(EnquireLink()))
    (ping,) = events(smsc)
    assert isinstance(ping, EnquireLink)
    esme.receive_data(smsc.data_to_send())
    (pong,) = events(esme)
    assert isinstance(pong, codec.EnquireLinkResp) and esme.outstanding == 0
    smsc.receive_data(esme.send(codec.Unbind()))
    assert esme.state is State.UNBINDING
    assert isinstance(events(smsc)[0], codec.Unbind)
    assert smsc.state is State.CLOSED
    esme.receive_data(smsc.data_to_send())
    assert isinstance(events(esme)[0], codec.UnbindResp)
    assert esme.state is State.CLOSED
    esme.receive_data(b"")
    assert events(esme) == [ConnectionClosed()]


def test_window_is_enforced_locally() -> None:
    esme, _ = bound_pair(window=2)
    template = codec.SubmitTemplate(SubmitSm(short_message=b"x"))
    esme.send_submit(template, b"1")
    esme.send(SubmitSm(destination_addr="2"))
    assert esme.window_free == 0
    with pytest.raises(LocalProtocolError, match="window"):
        esme.send_submit(template, b"3")
    esme.send(EnquireLink())  # keepalive is never held back by the window


def test_an_outstanding_enquire_link_takes_no_window_slot() -> None:
    # A keepalive sent while the window had room must not make a later submit "overflow"
    # the window: the client counts only its submits, and a refused submit was lost.
    esme, smsc = bound_pair(window=2)
    template = codec.SubmitTemplate(SubmitSm(short_message=b"x"))
    esme.send(EnquireLink())
    assert esme.window_free == 2 and esme.outstanding == 1
    esme.send_submit(template, b"1")
    esme.send(SubmitSm(destination_addr="2"))
    assert esme.window_free == 0 and esme.outstanding == 3
    with pytest.raises(LocalProtocolError, match="window"):
        esme.send_submit(template, b"3")
    # The enquire_link_resp frees no window slot; a submit_sm_resp does.
    sequences = esme.outstanding_sequences()
    (ping,) = [seq for seq, command in sequences.items() if command == 0x15]
    esme.receive_data(codec.encode(codec.EnquireLinkResp(sequence=ping)))
    events(esme)
    assert esme.window_free == 0 and esme.outstanding == 2
    assert esme.forget_outstanding(next(iter(esme.outstanding_sequences())))
    assert esme.window_free == 1
    del smsc


def test_local_misuse_raises() -> None:
    esme = Session(role=Role.ESME)
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(destination_addr="1"))  # not bound
    smsc = Session(role=Role.SMSC)
    with pytest.raises(LocalProtocolError):
        smsc.send(BindTransmitter(system_id="x"))
    with pytest.raises(LocalProtocolError):
        smsc.send(BindTransceiverResp(sequence=1))  # no pending bind


def test_submit_before_bind_is_refused_by_the_smsc() -> None:
    smsc = Session(role=Role.SMSC)
    smsc.receive_data(codec.encode(SubmitSm(sequence=4, destination_addr="1")))
    (event,) = events(smsc)
    assert isinstance(event, ProtocolViolation) and event.status == 0x04
    reply = codec.decode(smsc.data_to_send())
    assert isinstance(reply, SubmitSmResp) and (reply.sequence, reply.status) == (4, 0x04)


def test_lazy_submit_path_for_the_smsc() -> None:
    esme, smsc = bound_pair(lazy=True)
    seq, data = esme.send_submit(codec.SubmitTemplate(SubmitSm(registered_delivery=1,
                                                               short_message=b"hi")), b"4912")
    smsc.receive_data(data)
    (event,) = events(smsc)
    assert isinstance(event, SubmitSmReceived)
    assert (event.sequence, event.destination_addr, event.registered_delivery) == (seq, "4912", 1)
    assert event.decode().short_message == b"hi"


def test_unknown_command_gets_generic_nack() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(bytes.fromhex("00000014" "00000777" "00000000" "0000002a" "01020304"))
    (event,) = events(smsc)
    assert isinstance(event, ProtocolViolation) and not event.fatal
    reply = codec.decode(smsc.data_to_send())
    assert isinstance(reply, GenericNack) and (reply.sequence, reply.status) == (42, 0x03)
    assert smsc.state is State.BOUND_TRX


def test_truncated_tlv_in_a_request_is_answered_with_its_response() -> None:
    _, smsc = bound_pair()
    raw = codec.encode(SubmitSm(sequence=6, destination_addr="1",
                                tlvs=(Tlv.u16(TlvTag.SAR_MSG_REF_NUM, 1),)))[:-1]
    smsc.receive_data(len(raw).to_bytes(4, "big") + raw[4:])
    (event,) = events(smsc)
    assert isinstance(event, ProtocolViolation) and event.status == 0xC0
    reply = codec.decode(smsc.data_to_send())
    assert isinstance(reply, SubmitSmResp) and reply.status == 0xC0 and reply.sequence == 6


@pytest.mark.parametrize("length", [0, 5, 15, 10_000_000])
def test_wrong_command_length_closes_the_session(length: int,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    esme, _ = bound_pair()
    with caplog.at_level(logging.WARNING, logger="gateways.smpp.session"):
        esme.receive_data(length.to_bytes(4, "big") + bytes.fromhex("800000040000000000000001"))
        (event,) = events(esme)
    assert isinstance(event, ProtocolViolation) and event.fatal
    assert esme.state is State.CLOSED
    nack = codec.decode(esme.data_to_send())
    assert isinstance(nack, GenericNack) and nack.status == 0x02
    assert any(r.__dict__.get("action") == "smpp_protocol_violation" for r in caplog.records)
    esme.receive_data(b"more garbage")
    assert events(esme) == []


def test_response_to_unknown_sequence_is_a_violation_not_an_event() -> None:
    esme, _ = bound_pair()
    esme.receive_data(codec.encode(SubmitSmResp(sequence=999, message_id="x")))
    (event,) = events(esme)
    assert isinstance(event, ProtocolViolation) and event.sequence == 999


def test_pdus_split_at_every_byte() -> None:
    esme, smsc = bound_pair()
    data = b"".join(esme.send(SubmitSm(destination_addr=str(i), short_message=b"m"))
                    for i in range(3))
    got = []
    for i in range(len(data)):
        smsc.receive_data(data[i:i + 1])
        got.extend(events(smsc))
    assert [e.destination_addr for e in got if isinstance(e, SubmitSm)] == ["0", "1", "2"]


def _feed_garbage(session: Session, chunks: list[bytes]) -> None:
    for chunk in chunks:
        session.receive_data(chunk)
        for event in events(session):
            assert isinstance(event, (codec.Pdu, ProtocolViolation, ConnectionClosed,
                                      ReceiptReceived, SubmitSmReceived))
        session.data_to_send()
    session.receive_data(b"")
    events(session)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6), st.booleans())
def test_random_bytes_never_raise(chunks: list[bytes], smsc_side: bool) -> None:
    esme, smsc = bound_pair(lazy=smsc_side)
    _feed_garbage(smsc if smsc_side else esme, chunks)


_commands = st.sampled_from([0x4, 0x5, 0x9, 0x15, 0x80000004, 0x80000005, 0x80000000, 0x111,
                             0x112, 0x113, 0x80000111, 0x6, 0x103, 0x3, 0x77777])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_commands, st.integers(0, 0xFFFFFFFF), st.integers(0, 40),
                          st.binary(max_size=60)), max_size=5), st.booleans())
def test_well_framed_garbage_pdus_never_raise(pdus: list[tuple[int, int, int, bytes]],
                                              smsc_side: bool) -> None:
    """Valid framing, random commands, sequences, statuses and bodies (TLVs included)."""
    esme, smsc = bound_pair(lazy=smsc_side)
    raw = [(16 + len(body)).to_bytes(4, "big") + cid.to_bytes(4, "big") +
           status.to_bytes(4, "big") + seq.to_bytes(4, "big") + body
           for cid, seq, status, body in pdus]
    _feed_garbage(smsc if smsc_side else esme, raw)
