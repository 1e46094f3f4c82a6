"""capcast's SMPP client against a real peer it did not write: an SMSC built on node-smpp 0.5.1.

The peer is tests/peers/node-smpp/server.js; its packages come from the
committed package-lock.json (``ops/node-peers.sh`` runs ``npm ci``). The test
starts ``node server.js`` on a free loopback port, reads the JSON lines it
prints about every PDU, and steers it (throttle, drop) on its standard input.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateways.smpp import codec
from gateways.smpp.client import (
    LinkConfig,
    OutcomeStatus,
    Receipt,
    SmppClient,
    SmsMessage,
    SubmitOutcome,
)
from gateways.smpp.errors import BroadcastQueryFailed

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT / "tests" / "peers" / "node-smpp"

# CI must test against this peer: there a missing node is a failure, elsewhere a skip.
pytestmark = pytest.mark.skipif(
    (shutil.which("node") is None or shutil.which("npm") is None) and not os.environ.get("CI"),
    reason="node and npm are needed for the node-smpp peer")


class NodeSmsc:
    """The node-smpp SMSC in a child process."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        acknowledged = len(self.of("ok"))
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        if line != "drop":
            while len(self.of("ok")) == acknowledged:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        await self._reader


@pytest.fixture
async def node_smsc() -> AsyncIterator[NodeSmsc]:
    if not (PEER / "node_modules" / "smpp").is_dir():
        subprocess.run(["bash", str(ROOT / "ops" / "node-peers.sh")], check=True, timeout=300)
    process = await asyncio.create_subprocess_exec(
        "node", "server.js", "--port", "0", "--system-id", "capcast", "--receipt-delay", "20",
        cwd=PEER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={"SMSC_PASSWORD": "s3cret", "PATH": str(Path(shutil.which("node") or "").parent)})
    assert process.stdout is not None
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    assert first["event"] == "listening"
    smsc = NodeSmsc(process, first["port"])
    yield smsc
    await smsc.stop()


def link(port: int, **overrides: Any) -> LinkConfig:
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "system_id": "capcast",
                               "password": "s3cret", "system_type": "CBC",
                               "reconnect_initial": 0.05, "reconnect_max": 0.2}
    options.update(overrides)
    return LinkConfig(**options)


async def test_bind_windowed_submit_and_receipts(node_smsc: NodeSmsc) -> None:
    async with SmppClient([link(node_smsc.port, window=8)]) as client:
        job = client.submit_bulk(text="Hochwasserwarnung: höher gelegene Orte aufsuchen",
                                 source="CAPCAST", recipients=[f"4915{i:07d}" for i in range(120)],
                                 receipt_timeout=10.0)
        outcomes = [o async for o in job]
    (bind,) = node_smsc.of("bind")
    assert (bind["command"], bind["system_id"], bind["system_type"], bind["ok"]) == \
        ("bind_transceiver", "capcast", "CBC", True)
    submits = [o for o in outcomes if isinstance(o, SubmitOutcome)]
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert Counter(o.status for o in submits) == {OutcomeStatus.ACCEPTED: 120}
    seen = node_smsc.of("submit_sm")
    assert sorted(e["destination_addr"] for e in seen) == [f"4915{i:07d}" for i in range(120)]
    assert {e["short_message"] for e in seen} == {
        "Hochwasserwarnung: höher gelegene Orte aufsuchen"}  # node-smpp decoded our GSM-7
    # node-smpp answers in hex and writes receipts in decimal: all correlate.
    assert len(receipts) == 120
    ids = {o.message_ids[0]: o.reference for o in submits}
    for receipt in receipts:
        assert receipt.reference == ids[format(int(receipt.message_id), "x")]
        assert receipt.state is codec.MessageState.DELIVERED
    assert node_smsc.of("unbind")  # graceful unbind on close
    assert all(e["status"] == 0 for e in node_smsc.of("deliver_sm_resp"))


async def test_wrong_password_is_refused(node_smsc: NodeSmsc) -> None:
    client = SmppClient([link(node_smsc.port, password="wrong")])
    await client.start(wait_bound=None)
    while not node_smsc.of("bind"):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert client.stats()[0].bound is False
    await client.close()
    assert node_smsc.of("bind")[0]["ok"] is False


async def test_broadcast_sm_query_and_cancel(node_smsc: NodeSmsc) -> None:
    async with SmppClient([link(node_smsc.port, interface_version=0x50)]) as client:
        result = await client.broadcast(
            areas=["262-01-1234-5678", "262-01-1234-5679"], text="Evacuate the valley now",
            content_type=codec.BroadcastContentType(network_type=1, content_type=4370),
            repetitions=300, interval=60)
        query = await client.query_broadcast(result.message_id)
        await client.cancel_broadcast(result.message_id)
        with pytest.raises(BroadcastQueryFailed):
            await client.query_broadcast("no-such-broadcast")
    (seen,) = node_smsc.of("broadcast_sm")
    assert seen["message_id"] == result.message_id
    assert seen["areas"] == [{"format": 0, "data": "262-01-1234-5678"},
                             {"format": 0, "data": "262-01-1234-5679"}]
    assert seen["content_type"] == {"network": 1, "content_type": 4370}
    assert seen["rep_num"] == 300  # node-smpp reads broadcast_rep_num as two octets
    assert seen["frequency_interval"] == {"unit": 8, "interval": 60}
    assert seen["message_payload"] == "Evacuate the valley now"
    assert query.message_state == codec.MessageState.ENROUTE
    assert [a.name for a in query.areas] == ["262-01-1234-5678", "262-01-1234-5679"]
    assert query.area_success == 100
    assert node_smsc.of("cancel_broadcast_sm")[0]["known"] is True


async def test_throttling_responses_are_retried(node_smsc: NodeSmsc) -> None:
    async with SmppClient([link(node_smsc.port, throttle_backoff_initial=0.02)]) as client:
        await node_smsc.command("throttle 5")
        summary = await client.submit_bulk(text="t", source="CAPCAST",
                                           recipients=[f"4916{i:07d}" for i in range(30)],
                                           registered_delivery=False).wait()
        stats = client.stats()[0]
    assert summary["accepted"] == 30
    assert stats.throttled == 5 == len([e for e in node_smsc.of("submit_sm")
                                        if e.get("status") == 0x58])
    accepted = [e["destination_addr"] for e in node_smsc.of("submit_sm") if "message_id" in e]
    assert sorted(accepted) == [f"4916{i:07d}" for i in range(30)]  # each exactly once


async def test_dropped_connection_reconnects(node_smsc: NodeSmsc) -> None:
    async with SmppClient([link(node_smsc.port, window=4)]) as client:
        await node_smsc.command("drop-after 10")
        summary = await client.submit_bulk(text="d", source="CAPCAST",
                                           recipients=[f"4917{i:07d}" for i in range(60)],
                                           registered_delivery=False).wait()
        assert client.stats()[0].reconnects >= 1
        outcome = await client.send(SmsMessage(reference="after", source="CAPCAST",
                                               destination="4917999999", text="still here",
                                               registered_delivery=False))
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert node_smsc.of("dropped")
    assert len(node_smsc.of("bind")) >= 2  # rebound after the drop
    assert summary["accepted"] + summary["unconfirmed"] == 60
    assert summary["unconfirmed"] <= 4  # at most the window was in flight
    accepted = Counter(e["destination_addr"] for e in node_smsc.of("submit_sm"))
    assert max(accepted.values()) == 1  # nothing resent: no duplicates
