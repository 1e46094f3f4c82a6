"""The CBC client against the ECBE simulator over loopback, in both dialects."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateways.cbc import (
    CbcClient,
    CbcIllegalState,
    CbcMessage,
    CbcMessageActive,
    CbcNotImplemented,
    CbcRequestRefused,
    CbcTimeout,
    CbcUnknownMessage,
    CbcUnreachable,
    Confirmation,
    Dialect,
    EcbeOptions,
    Operation,
    ReplaceIncomplete,
    ScopeNotSupported,
    parse_cell_id,
    payload_for_text,
    repetition_units,
)
from gateways.errors import ConnectionLost
from gateways.simulators.cbc import CbcSimulator, Fault, FaultKind, MessageState, Outcome

CELLS = ("262-01-4711-12", "262-01-4711-13", "nr:262-01-68719476735")

SimFactory = Callable[..., Awaitable[CbcSimulator]]


@pytest.fixture
async def simulator() -> AsyncIterator[SimFactory]:
    started: list[CbcSimulator] = []

    async def start(**kwargs: Any) -> CbcSimulator:
        sim = CbcSimulator(**kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., CbcClient]]:
    made: list[CbcClient] = []

    def make(sim: CbcSimulator | str, dialect: Dialect | None = None,
             **kwargs: Any) -> CbcClient:
        url = sim if isinstance(sim, str) else sim.base_url
        chosen = dialect or (sim.dialect if isinstance(sim, CbcSimulator) else Dialect.OSMO_CBC)
        kwargs.setdefault("retry_delay", 0.05)
        kwargs.setdefault("timeout", 10.0)
        client = CbcClient(url, options=EcbeOptions(dialect=chosen, cbe_name="capcast-it"),
                           operator="Telco", **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def alert(serial: int = 0x4010, *, message_id: int = 4370, text: str = "Flood warning",
          cells: tuple[str, ...] | None = None) -> CbcMessage:
    return CbcMessage(message_id=message_id, serial_number=serial,
                      payload=payload_for_text(text, language="en"),
                      repetition_period=repetition_units(60), num_broadcasts=0,
                      cells=None if cells is None else tuple(map(parse_cell_id, cells)))


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_create_replace_delete(simulator: SimFactory, clients: Callable[..., CbcClient],
                                     dialect: Dialect) -> None:
    sim = await simulator(dialect=dialect)
    client = clients(sim)
    cells = CELLS if dialect is Dialect.CAPCAST else None

    created = await client.create(alert(cells=cells))
    assert (created.confirmation, created.attempts, created.retried) == \
        (Confirmation.ACCEPTED, 1, False)
    assert created.endpoint == f"{sim.base_url}/api/ecbe/v1"
    held = sim.messages[4370]
    assert held.state is MessageState.ACTIVE and held.cbe_name == "capcast-it"
    assert held.message == alert(cells=cells)

    replaced = await client.replace(alert(0x4011, text="Flood warning, update", cells=cells))
    assert replaced.operation is Operation.REPLACE and replaced.replaced_active is True
    assert sim.messages[4370].message.serial_number == 0x4011
    steps = [(r.method, r.outcome) for r in sim.records[1:]]
    if dialect is Dialect.CAPCAST:
        assert steps == [("PUT", Outcome.REPLACED)]
    else:  # osmo-cbc has no replace: delete, then create
        assert steps == [("DELETE", Outcome.DELETED), ("POST", Outcome.CREATED)]
    assert replaced.attempts == len(steps)

    deleted = await client.delete(4370)
    assert deleted.confirmation is Confirmation.ACCEPTED and deleted.serial_number is None
    assert not sim.messages
    with pytest.raises(CbcUnknownMessage) as caught:
        await client.delete(4370)
    assert caught.value.status == 404 and "Unknown message ID" in str(caught.value)


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_replace_of_a_message_no_longer_active_creates_it(
        simulator: SimFactory, clients: Callable[..., CbcClient], dialect: Dialect) -> None:
    sim = await simulator(dialect=dialect)
    result = await clients(sim).replace(alert(0x4012))
    assert result.replaced_active is False and result.confirmation is Confirmation.ACCEPTED
    assert sim.messages[4370].message.serial_number == 0x4012
    assert len(sim.received(outcome=Outcome.CREATED)) == 1


async def test_second_alert_on_the_same_channel_conflicts(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=0.2)
    first, second = clients(sim), clients(sim)
    results = await asyncio.gather(first.create(alert(0x4010)),
                                   second.create(alert(0x4020, text="Another alert")),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], CbcMessageActive)
    assert errors[0].status == 409 and errors[0].message_id == 4370
    assert "4370 (presidential)" in str(errors[0]) and sim.base_url in str(errors[0])
    assert len(sim.received(outcome=Outcome.CREATED)) == 1


async def test_osmo_dialect_refuses_cell_lists_before_sending(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC)
    client = clients(sim)
    with pytest.raises(ScopeNotSupported, match="whole network"):
        await client.create(alert(cells=CELLS))
    with pytest.raises(ScopeNotSupported):
        await client.replace(alert(cells=CELLS))
    assert sim.records == []


async def test_a_real_osmo_cbc_refuses_a_cell_list_with_400(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC)
    client = clients(sim, Dialect.CAPCAST)  # misconfigured: the CBC is an osmo-cbc
    with pytest.raises(CbcRequestRefused) as caught:
        await client.create(alert(cells=CELLS))
    assert caught.value.status == 400
    assert caught.value.reason == "CBCMSG only 'scope_plmn' supported"
    assert caught.value.link == f"{sim.base_url}/api/ecbe/v1"
    assert not sim.messages


@pytest.mark.parametrize(("headers", "body", "status", "text"), [
    ({}, b"{}", 400, "REST: No JSON Body"),
    ({"Content-Type": "application/json"}, b"{}", 400, "CBCMSG 'cbe_name' is mandatory"),
    ({"Content-Type": "application/json"},
     json.dumps({"cbe_name": "x", "repetition_period": 1}).encode(), 400,
     "CBCMSG 'scope' is mandatory"),
    ({"Content-Type": "application/json"}, b"[1", 400, "REST: No JSON Body"),
])
async def test_simulator_answers_bad_bodies_as_osmo_cbc(
        simulator: SimFactory, headers: dict[str, str], body: bytes, status: int,
        text: str) -> None:
    sim = await simulator()
    async with aiohttp.ClientSession() as session, \
            session.post(f"{sim.base_url}/api/ecbe/v1/message", data=body,
                         headers=headers) as response:
        assert (response.status, await response.text()) == (status, text)
    assert sim.records[0].response == text and sim.records[0].outcome is Outcome.REFUSED


async def test_simulator_has_no_read_endpoint(simulator: SimFactory) -> None:
    sim = await simulator()
    async with aiohttp.ClientSession() as session:
        for path in ("/api/ecbe/v1/message/4370", "/api/ecbe/v1/message", "/"):
            async with session.get(sim.base_url + path) as response:
                assert response.status == 404
        async with session.delete(f"{sim.base_url}/api/ecbe/v1/message/70000") as response:
            assert response.status == 400
    assert [r.status for r in sim.records] == [404, 404, 404, 400]


async def test_slow_create_retried_after_a_timeout_is_not_duplicated(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    # osmo-cbc answers a create after ~15 s; here 1 s against a 0.3 s timeout.
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=1.0)
    client = clients(sim, timeout=0.3, retries=2)
    result = await client.create(alert())
    assert result.confirmation is Confirmation.EARLIER_ATTEMPT
    assert result.retried and result.attempts == 2
    creates = sim.received(operation=Operation.CREATE)
    assert [r.status for r in creates] == [200, 409]
    assert len(sim.received(outcome=Outcome.CREATED)) == 1
    await asyncio.sleep(0.8)
    assert sim.messages[4370].state is MessageState.ACTIVE


async def test_slow_create_without_retries_reports_an_unknown_outcome(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=0.6)
    client = clients(sim, timeout=0.2, retries=0)
    with pytest.raises(CbcTimeout) as caught:
        await client.create(alert())
    assert "outcome is unknown" in str(caught.value) and sim.base_url in str(caught.value)
    # It did land, once: a later create of the same id conflicts, it is not repeated.
    assert len(sim.received(outcome=Outcome.CREATED)) == 1
    with pytest.raises(CbcMessageActive):
        await clients(sim).create(alert())


async def test_a_real_osmo_cbc_delay_fits_the_default_timeout(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=0.5)
    client = CbcClient(sim.base_url, options=EcbeOptions(dialect=Dialect.OSMO_CBC))
    try:
        result = await client.create(alert())
    finally:
        await client.close()
    assert result.confirmation is Confirmation.ACCEPTED and result.elapsed >= 0.5


async def test_slow_delete_retried_ends_as_deleted_once(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=0.0, delete_delay=0.6)
    client = clients(sim, timeout=0.2, retries=6, retry_delay=0.1)
    await client.create(alert())
    result = await client.delete(4370)
    assert result.confirmation is Confirmation.EARLIER_ATTEMPT and result.retried
    statuses = [r.status for r in sim.received(operation=Operation.DELETE)]
    # The first delete (answer lost), 500 "Illegal FSM event" while it is pending,
    # then 404: gone.
    assert statuses[0] == 200 and statuses[-1] == 404 and set(statuses[1:-1]) <= {500}
    assert len(sim.received(outcome=Outcome.DELETED)) == 1


async def test_lost_answer_to_a_create_is_not_duplicated(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC)
    sim.inject(Fault(kind=FaultKind.DROP, operation=Operation.CREATE))
    result = await clients(sim).create(alert())
    assert result.confirmation is Confirmation.EARLIER_ATTEMPT and result.attempts == 2
    assert len(sim.received(outcome=Outcome.CREATED)) == 1
    assert sim.records[0].fault == "drop"


async def test_lost_answer_to_a_delete_is_not_taken_for_an_unknown_message(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    # aiohttp by itself would resend the DELETE at once and report the resulting 404.
    sim = await simulator(dialect=Dialect.OSMO_CBC)
    client = clients(sim)
    await client.create(alert())
    sim.inject(Fault(kind=FaultKind.DROP, operation=Operation.DELETE))
    result = await client.delete(4370)
    assert result.confirmation is Confirmation.EARLIER_ATTEMPT and result.attempts == 2
    assert [r.status for r in sim.received(operation=Operation.DELETE)] == [200, 404]
    assert not sim.messages


async def test_lost_answer_to_a_capcast_replace_is_not_repeated(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.CAPCAST)
    client = clients(sim)
    await client.create(alert(cells=CELLS))
    sim.inject(Fault(kind=FaultKind.DROP, operation=Operation.REPLACE))
    result = await client.replace(alert(0x4011, cells=CELLS[:1]))
    assert result.confirmation is Confirmation.ACCEPTED and result.attempts == 2
    assert [r.outcome for r in sim.received(operation=Operation.REPLACE)] == \
        [Outcome.REPLACED, Outcome.UNCHANGED]
    assert [c.text for c in sim.messages[4370].message.cells or ()] == [CELLS[0]]


async def test_injected_500_is_retried_and_501_is_reported(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator()
    client = clients(sim)
    sim.inject(Fault(kind=FaultKind.STATUS, status=500, body="Illegal FSM event"))
    result = await client.create(alert())
    assert result.confirmation is Confirmation.ACCEPTED and result.attempts == 2
    assert len(sim.received(outcome=Outcome.CREATED)) == 1
    sim.inject(Fault(kind=FaultKind.STATUS, status=501, body="Not Implemented"))
    with pytest.raises(CbcNotImplemented):
        await client.delete(4370)
    for _ in range(3):
        sim.inject(Fault(kind=FaultKind.STATUS, status=500, body="Illegal FSM event"))
    with pytest.raises(CbcIllegalState) as caught:
        await clients(sim, retries=2).delete(4370)
    assert caught.value.body == "Illegal FSM event"
    assert 4370 in sim.messages


async def test_operations_on_one_message_id_are_serialized(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, create_delay=0.3)
    client = clients(sim, retries=0)
    created, deleted = await asyncio.gather(client.create(alert()), client.delete(4370))
    # Without serialization the delete would reach the CBC during the pending create
    # and get 500 "Illegal FSM event".
    assert created.confirmation is deleted.confirmation is Confirmation.ACCEPTED
    assert [(r.method, r.status) for r in sim.records] == [("POST", 200), ("DELETE", 200)]


async def test_osmo_replace_that_cannot_create_says_the_channel_is_silent(
        simulator: SimFactory, clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC)
    client = clients(sim)
    await client.create(alert())
    sim.inject(Fault(kind=FaultKind.STATUS, operation=Operation.CREATE, status=400,
                     body="CBCMSG 'cbe_name' is mandatory"))
    with pytest.raises(ReplaceIncomplete) as caught:
        await client.replace(alert(0x4011))
    assert isinstance(caught.value.cause, CbcRequestRefused)
    assert "silent" in str(caught.value) and not sim.messages
    retried = await client.replace(alert(0x4011))  # safe: nothing to delete, then create
    assert retried.replaced_active is False
    assert sim.messages[4370].message.serial_number == 0x4011


async def test_connection_refused_names_the_endpoint(
        clients: Callable[..., CbcClient]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = clients(f"http://127.0.0.1:{port}", retries=1)
    with pytest.raises(CbcUnreachable) as caught:
        await client.create(alert())
    assert isinstance(caught.value, ConnectionLost)
    assert f"http://127.0.0.1:{port}/api/ecbe/v1" in str(caught.value)
    assert "operator Telco" in str(caught.value)
    assert caught.value.link == f"http://127.0.0.1:{port}/api/ecbe/v1"


async def test_record_file_holds_every_request(simulator: SimFactory,
                                               clients: Callable[..., CbcClient],
                                               tmp_path: Path) -> None:
    record = tmp_path / "cbc.jsonl"
    sim = await simulator(dialect=Dialect.CAPCAST, record_path=record)
    client = clients(sim)
    await client.create(alert(cells=CELLS))
    with pytest.raises(CbcMessageActive):
        await client.create(alert(cells=CELLS))
    await client.delete(4370)
    await sim.stop()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(x["method"], x["status"], x["outcome"]) for x in lines] == [
        ("POST", 200, "created"), ("POST", 409, "refused"), ("DELETE", 200, "deleted")]
    assert lines[0]["document"]["scope"] == {"scope_cell_list": {"cells": list(CELLS)}}
    assert [r.to_json() for r in sim.records] == lines


async def test_random_faults_never_duplicate(simulator: SimFactory,
                                             clients: Callable[..., CbcClient]) -> None:
    sim = await simulator(dialect=Dialect.OSMO_CBC, error_rate=0.5, seed=7)
    client = clients(sim, retries=8, retry_delay=0.01)
    for message_id in range(4370, 4390):
        await client.create(alert(message_id=message_id))
    assert sorted(sim.messages) == list(range(4370, 4390))
    assert len(sim.received(outcome=Outcome.CREATED)) == 20
    assert any(r.fault for r in sim.records)


async def test_sim_cbc_command(clients: Callable[..., CbcClient], tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "capcast"), "sim", "cbc", "--port", "0",
        "--dialect", "capcast", "--record", str(record),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("CBC simulator (capcast dialect) listening on http://127.0.0.1:")
        url = line.split()[-1].removesuffix("/api/ecbe/v1")
        result = await clients(url, Dialect.CAPCAST).create(alert(cells=CELLS))
        assert result.confirmation is Confirmation.ACCEPTED
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "stopped after 1 request(s): created 1" in out.decode()
    assert json.loads(record.read_text())["outcome"] == "created"
