"""capcast's asyncio SMPP client against the SMSC simulator over loopback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gateways.errors import Expired
from gateways.simulators.smsc import IdBase, SmscConfig, SmscSimulator
from gateways.smpp import codec
from gateways.smpp.client import (
    BindMode,
    LinkConfig,
    OutcomeStatus,
    Receipt,
    SmppClient,
    SmsMessage,
    SubmitOutcome,
)
from gateways.smpp.errors import InvalidPassword


def link(port: int, **overrides: object) -> LinkConfig:
    options: dict[str, object] = {"host": "127.0.0.1", "port": port, "system_id": "capcast",
                                  "password": "s3cret", "reconnect_initial": 0.05,
                                  "reconnect_max": 0.2, "response_timeout": 2.0}
    options.update(overrides)
    return LinkConfig(**options)  # type: ignore[arg-type]


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"49151{i:08d}" for i in range(start, start + n)]


async def test_bulk_with_receipts_correlated_across_bases() -> None:
    config = SmscConfig(dlr_delay=0.05, id_base=IdBase.HEX, receipt_id_base=IdBase.DECIMAL,
                        credentials={"capcast": "s3cret"})
    async with SmscSimulator(config) as sim, SmppClient([link(sim.port)]) as client:
        job = client.submit_bulk(text="Flood warning: move to higher ground", source="CAPCAST",
                                 recipients=numbers(300), receipt_timeout=5.0)
        outcomes = [o async for o in job]
    submits = [o for o in outcomes if isinstance(o, SubmitOutcome)]
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert len(submits) == 300 and {o.status for o in submits} == {OutcomeStatus.ACCEPTED}
    assert len(receipts) == 300
    by_reference = {o.reference: o for o in submits}
    for receipt in receipts:
        assert receipt.reference is not None  # matched although the base differs
        submit = by_reference[receipt.reference]
        assert int(receipt.message_id) == int(submit.message_ids[0], 16)
        assert receipt.recipient == submit.destination
    assert sorted(p.destination_addr for p in sim.submitted()) == numbers(300)


async def test_window_is_never_exceeded() -> None:
    sim = SmscSimulator(SmscConfig(response_delay=0.3, dlr_delay=None))
    await sim.start()
    async with SmppClient([link(sim.port, window=5)]) as client:
        job = client.submit_bulk(text="w", source="CAPCAST", recipients=numbers(12),
                                 registered_delivery=False)
        await asyncio.sleep(0.15)
        assert sim.stats().submitted == 5  # the window, no more, before any response
        assert client.stats()[0].outstanding == 5
        assert (await job.wait())["accepted"] == 12
    await sim.stop()


async def test_throttling_is_retried_with_backoff_and_nothing_is_lost() -> None:
    config = SmscConfig(dlr_delay=None, throttle_rate=0.3, seed=7)
    async with SmscSimulator(config) as sim, SmppClient([link(sim.port)]) as client:
        summary = await client.submit_bulk(text="t", source="CAPCAST", recipients=numbers(200),
                                           registered_delivery=False).wait()
        stats = client.stats()[0]
    assert summary["accepted"] == 200
    assert stats.throttled == sim.stats().throttled > 0
    accepted = Counter(p.destination_addr for p in sim.submitted())
    assert set(accepted) == set(numbers(200))


async def test_client_rate_limit_keeps_under_the_smscs() -> None:
    sim = SmscSimulator(SmscConfig(dlr_delay=None, tps=100))
    await sim.start()
    async with SmppClient([link(sim.port, tps=80)]) as client:
        started = asyncio.get_running_loop().time()
        summary = await client.submit_bulk(text="r", source="CAPCAST", recipients=numbers(60),
                                           registered_delivery=False).wait()
        elapsed = asyncio.get_running_loop().time() - started
    await sim.stop()
    assert summary["accepted"] == 60
    assert sim.stats().throttled == 0
    assert elapsed > 0.6  # 60 at 80/s, after a burst of at most 4


async def test_reconnects_after_the_smsc_drops_the_link_without_duplicates() -> None:
    sim = SmscSimulator(SmscConfig(dlr_delay=None, response_delay=0.02))
    await sim.start()
    async with SmppClient([link(sim.port, window=10)]) as client:
        job = client.submit_bulk(text="d", source="CAPCAST", recipients=numbers(400),
                                 registered_delivery=False)
        while sim.stats().submitted < 100:
            await asyncio.sleep(0.01)
        assert sim.drop_connections() == 1
        summary = await job.wait()
        stats = client.stats()[0]
    await sim.stop()
    assert stats.reconnects >= 1
    assert summary["accepted"] + summary["unconfirmed"] == 400
    assert 0 < summary["unconfirmed"] <= 10  # at most a window in flight when it dropped
    # What was in flight is reported, not resent: no recipient was submitted twice.
    counts = Counter(p.destination_addr for p in sim.submitted())
    assert max(counts.values()) == 1
    assert len(counts) >= summary["accepted"]


async def test_nothing_is_submitted_after_expiry() -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with SmscSimulator(SmscConfig(dlr_delay=None)) as sim:
        async with SmppClient([link(sim.port)]) as client:
            outcome = await client.send(SmsMessage(reference="old", source="CAPCAST",
                                                   destination="4915100000001", text="late",
                                                   expires_at=past))
            assert outcome.status is OutcomeStatus.EXPIRED
            # A message that expires while the SMSC keeps throttling it is not retried.
            sim.configure(throttle_rate=1.0)
            soon = datetime.now(UTC) + timedelta(seconds=0.3)
            outcome = await client.send(SmsMessage(reference="soon", source="CAPCAST",
                                                   destination="4915100000002", text="x",
                                                   expires_at=soon))
            assert outcome.status is OutcomeStatus.EXPIRED
            with pytest.raises(Expired):
                await client.broadcast(areas=["c1"], text="late", expires_at=past)
        attempts = sim.records("submit_sm")
        assert attempts  # the throttled tries of the second message
        assert all(isinstance(r.pdu, codec.SubmitSm) and r.pdu.destination_addr == "4915100000002"
                   and r.at <= soon for r in attempts)
        assert sim.stats().accepted == 0
        # The expiry also travels as validity_period.
        sim.configure(throttle_rate=0.0)
        async with SmppClient([link(sim.port)]) as client:
            later = datetime.now(UTC) + timedelta(hours=1)
            await client.send(SmsMessage(reference="v", source="CAPCAST",
                                         destination="4915100000003", text="v",
                                         expires_at=later))
        pdu = sim.submitted()[-1]
        assert pdu.validity_period == codec.smpp_time(later.timestamp())


async def test_broadcast_query_cancel_and_graceful_unbind() -> None:
    async with SmscSimulator(SmscConfig()) as sim:
        async with SmppClient([link(sim.port, interface_version=0x50)]) as client:
            result = await client.broadcast(areas=["262-01-1-1", "262-01-1-2"],
                                            text="Эвакуация", repetitions=5, interval=120,
                                            content_type=codec.BroadcastContentType(
                                                network_type=1, content_type=4370))
            query = await client.query_broadcast(result.message_id)
            assert query.message_state == codec.MessageState.ENROUTE
            await client.cancel_broadcast(result.message_id)
            assert (await client.query_broadcast(result.message_id)).message_state == \
                codec.MessageState.DELETED
        commands = [r.pdu.command for r in sim.records()]
        assert commands[-1] == "unbind"
        (broadcast,) = [r.pdu for r in sim.records("broadcast_sm")]
        assert isinstance(broadcast, codec.BroadcastSm)
        assert broadcast.rep_num == 5 and broadcast.data_coding == 0x08
        assert broadcast.message_payload == "Эвакуация".encode("utf-16-be")
        lines = io.StringIO()
        assert sim.dump(lines) == len(sim.records())
        first = json.loads(lines.getvalue().splitlines()[0])
        assert first["command"] == "bind_transceiver" and first["password"] == "***"


async def test_wrong_password_keeps_retrying_without_binding(
        caplog: pytest.LogCaptureFixture) -> None:
    async with SmscSimulator(SmscConfig(credentials={"capcast": "right"})) as sim:
        client = SmppClient([link(sim.port)])
        with caplog.at_level(logging.WARNING, logger="gateways.smpp.client"):
            await client.start(wait_bound=None)
            await asyncio.sleep(0.3)
        assert client.stats()[0].bound is False
        assert sim.stats().bind_failures >= 2  # reconnect and rebind with backoff
        await client.close()
    assert any("ESME_RINVPASWD" in r.getMessage() for r in caplog.records)
    assert InvalidPassword.code == 0x0E


async def _evil_smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An SMSC that answers the bind, then sends everything a bad peer can send."""
    try:
        await _misbehave(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readexactly(4)
    bind = codec.decode(head + await reader.readexactly(int.from_bytes(head, "big") - 4))
    writer.write(codec.encode(codec.BindTransceiverResp(sequence=bind.sequence, system_id="x")))
    # A receipt for a message id nobody submitted, an unknown command, then garbage
    # with an impossible command_length.
    writer.write(codec.encode(codec.DeliverSm(
        sequence=70, source_addr="49", esm_class=0x04,
        short_message=b"id:deadbeef stat:DELIVRD")))
    writer.write(bytes.fromhex("00000010" "00000777" "00000000" "00000047"))
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write(bytes.fromhex("00000003") + b"garbage")
    await writer.drain()
    await reader.read()  # until the client, having seen the garbage, hangs up


async def test_bad_input_from_the_peer_is_logged_and_survived(
        caplog: pytest.LogCaptureFixture) -> None:
    server = await asyncio.start_server(_evil_smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen: list[object] = []
    with caplog.at_level(logging.INFO):
        client = SmppClient([link(port, reconnect_initial=5.0)], on_outcome=seen.append)
        await client.start(wait_bound=5)
        while client.stats()[0].connected:  # until the garbage made it drop the link
            await asyncio.sleep(0.02)
        await client.close(drain_timeout=0.1, unbind_timeout=0.1)
    server.close()
    await server.wait_closed()
    actions = {r.__dict__.get("action") for r in caplog.records}
    assert "smpp_receipt_unknown" in actions
    assert "smpp_protocol_violation" in actions
    assert client.stats()[0].errors >= 2  # the unknown command and the broken framing
    assert [o for o in seen if isinstance(o, Receipt)] == [
        Receipt(reference=None, message_id="deadbeef", state=codec.MessageState.DELIVERED,
                recipient="49", link=client.stats()[0].name)]


async def test_several_links_share_the_work_and_receipts_cross_links() -> None:
    async with SmscSimulator(SmscConfig(dlr_delay=0.02)) as sim:
        links = [link(sim.port, bind_mode=BindMode.TRANSMITTER, name="tx1"),
                 link(sim.port, bind_mode=BindMode.TRANSMITTER, name="tx2"),
                 link(sim.port, bind_mode=BindMode.RECEIVER, name="rx")]
        async with SmppClient(links) as client:
            while sim.bound_connections < 3:
                await asyncio.sleep(0.01)
            job = client.submit_bulk(text="m", source="CAPCAST", recipients=numbers(400),
                                     receipt_timeout=5.0)
            outcomes = [o async for o in job]
            stats = {s.name: s for s in client.stats()}
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert job.summary()["accepted"] == 400
    assert stats["tx1"].submitted > 0 and stats["tx2"].submitted > 0
    assert stats["tx1"].submitted + stats["tx2"].submitted == 400
    assert stats["rx"].submitted == 0 and stats["rx"].receipts == 400
    assert len(receipts) == 400 and all(r.reference is not None for r in receipts)
    assert {r.link for r in receipts} == {"rx"}


async def test_message_queue_full_is_handled_like_throttling() -> None:
    config = SmscConfig(dlr_delay=None, error_rate=0.25, error_status=0x14, seed=3)
    async with SmscSimulator(config) as sim, SmppClient([link(sim.port)]) as client:
        summary = await client.submit_bulk(text="q", source="CAPCAST", recipients=numbers(80),
                                           registered_delivery=False).wait()
        assert client.stats()[0].throttled == sim.stats().errors > 0
    assert summary["accepted"] == 80


async def test_final_errors_reject_without_retry() -> None:
    config = SmscConfig(dlr_delay=None, error_rate=1.0, error_status=0x0B)
    async with SmscSimulator(config) as sim, SmppClient([link(sim.port)]) as client:
        outcome = await client.send(SmsMessage(reference="r", source="CAPCAST",
                                               destination="4915100000009", text="x"))
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.command_status == 0x0B and "ESME_RINVDSTADR" in (outcome.error or "")
    assert sim.stats().submitted == 1


async def _black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers the bind, then never answers anything again (a hung SMSC)."""
    try:
        head = await reader.readexactly(4)
        bind = codec.decode(head + await reader.readexactly(int.from_bytes(head, "big") - 4))
        writer.write(codec.encode(codec.BindTransceiverResp(sequence=bind.sequence)))
        await writer.drain()
        while await reader.read(4096):
            pass
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def test_response_timeout_and_dead_link_detection() -> None:
    server = await asyncio.start_server(_black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = link(port, response_timeout=0.3, enquire_link_interval=0.1, reconnect_initial=0.05)
    async with SmppClient([config]) as client:
        outcome = await client.send(SmsMessage(reference="lost", source="CAPCAST",
                                               destination="4915100000010", text="x"))
        assert outcome.status is OutcomeStatus.UNCONFIRMED
        assert "timeout" in (outcome.error or "")
        while client.stats()[0].reconnects < 1:  # no enquire_link_resp: the link is dead
            await asyncio.sleep(0.02)
        await client.close(drain_timeout=0.1, unbind_timeout=0.1)
    server.close()
    await server.wait_closed()


async def test_bulk_memory_stays_flat() -> None:
    async def peak(n: int) -> int:
        sim = SmscSimulator(SmscConfig(dlr_delay=None, record_limit=0))
        await sim.start()
        async with SmppClient([link(sim.port)], max_queued=512) as client:
            tracemalloc.start()
            job = client.submit_bulk(text="f", source="CAPCAST",
                                     recipients=(f"4915{i:09d}" for i in range(n)),
                                     registered_delivery=False, max_backlog=1024)
            async for _ in job:
                pass
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert job.summary()["accepted"] == n
        await sim.stop()
        return top

    small, large = await peak(3000), await peak(12000)
    assert large < small * 1.5  # four times the recipients, about the same memory


async def test_persistent_throttling_backs_off_exponentially_then_gives_up() -> None:
    config = SmscConfig(dlr_delay=None, throttle_rate=1.0)
    async with SmscSimulator(config) as sim:
        client = SmppClient([link(sim.port, throttle_backoff_initial=0.02)], max_attempts=4)
        async with client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            outcome = await client.send(SmsMessage(reference="t", source="CAPCAST",
                                                   destination="4915100000011", text="x"))
            elapsed = loop.time() - started
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.command_status == 0x58 and "gave up" in (outcome.error or "")
    assert sim.stats().throttled == 4 == outcome.attempts
    assert elapsed >= 0.02 + 0.04 + 0.08  # each pause twice the last


async def test_link_recovers_after_a_stall_that_left_an_enquire_link_unanswered() -> None:
    # The enquire_link outstanding when the stalled link was declared dead must not make
    # every later connection "dead" at its first keepalive check (the link never came back).
    async with SmscSimulator(SmscConfig(port=0)) as sim:
        link = LinkConfig(host="127.0.0.1", port=sim.port, system_id="x", password="y",
                          enquire_link_interval=0.3, response_timeout=0.3,
                          reconnect_initial=0.05, reconnect_max=0.2)
        client = SmppClient([link])
        await client.start(wait_bound=5.0)
        try:
            sim.configure(response_delay=1.0)  # enquire_link_resp comes too late: dead link
            await asyncio.sleep(1.2)
            sim.configure(response_delay=0.0)  # recovered
            await asyncio.sleep(0.5)
            binds_after_recovery = sim.stats().binds
            await asyncio.sleep(2.0)
            assert sim.stats().binds == binds_after_recovery, "the link keeps dying"
            assert sim.bound_connections == 1
            outcome = await client.send(SmsMessage(reference="r1", source="CAPCAST",
                                                   destination="+4917012345", text="ok"))
            assert outcome.status is OutcomeStatus.ACCEPTED
        finally:
            await client.close()


async def test_cancelled_bulk_sends_nothing_more_than_what_was_in_flight() -> None:
    async with SmscSimulator(SmscConfig(port=0, tps=400, dlr_delay=None)) as sim:
        client = SmppClient([link(sim.port, window=8, tps=300.0)])
        await client.start(wait_bound=5.0)
        try:
            bulk = client.submit_bulk(text="cancel me", source="CAPCAST",
                                      recipients=[f"+4917{n:07d}" for n in range(3000)],
                                      registered_delivery=False)
            seen = 0
            async for _ in bulk:
                seen += 1
                if seen == 100:
                    break
            dropped = client.cancel_bulk(bulk)
            at_cancel = sim.stats().submitted
            await asyncio.sleep(1.0)
            after = sim.stats().submitted
            # Only the window in flight at the cancel may still arrive.
            assert after - at_cancel <= 8, (at_cancel, after)
            assert dropped > 0 and after + dropped <= 3000
        finally:
            await client.close()
