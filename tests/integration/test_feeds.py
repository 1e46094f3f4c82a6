"""The feed poller against a real HTTP server on loopback and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from cap.model import Status
from dispatcher.config import FeedSettings
from dispatcher.feeds import FeedPoller
from dispatcher.pipeline import AuthorityPolicy, Ingest
from dispatcher.planner import TargetingPolicy
from dispatcher.store import AlertState, Store

DWD = Path(__file__).resolve().parents[1] / "corpus" / "dwd"
SENDER = "CAP@dwd.de"
CAP = {
    "161": (DWD / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes(),
    "0": (DWD / "Z_CAP_C_EDZW_20151031140412_PVW_0.xml").read_bytes(),
    "1": (DWD / "Z_CAP_C_EDZW_20151031140412_PVW_1.xml").read_bytes(),
    "4": (DWD / "Z_CAP_C_EDZW_20170223134450_PVW_4.xml").read_bytes(),
}
IDENTIFIER_161 = "2.49.0.1.276.DWD.PVW.1437558240606.161"
# A Cancel of alert 161, sent 26 minutes after it.
CANCEL_161 = (CAP["161"].replace(b"PVW.1437558240606.161", b"PVW.1437558240606.999")
              .replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                       b"<sent>2015-07-22T09:50:00+00:00</sent>")
              .replace(b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType>")
              .replace(b"<scope>Public</scope>",
                       b"<scope>Public</scope><references>CAP@dwd.de,"
                       + IDENTIFIER_161.encode() + b",2015-07-22T09:24:00+00:00</references>"))


@dataclass
class Resource:
    """What the test server answers at one path."""

    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    #: Answer 500 this many times first.
    fail: int = 0
    #: Seconds to wait before answering.
    delay: float = 0.0
    content_type: str = "application/xml"


@dataclass
class FeedServer:
    """A loopback HTTP server with conditional GET, counting what it is asked."""

    resources: dict[str, Resource] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    #: Per path, the conditional headers of each request (If-None-Match, If-Modified-Since).
    conditions: dict[str, list[tuple[str | None, str | None]]] = field(default_factory=dict)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.hits[path] += 1
        self.conditions.setdefault(path, []).append(
            (request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")))
        resource = self.resources.get(path)
        if resource is None:
            return web.Response(status=404, text="not here")
        if resource.fail > 0:
            resource.fail -= 1
            return web.Response(status=500, text="broken")
        if resource.delay:
            await asyncio.sleep(resource.delay)
        headers = {}
        if resource.etag is not None:
            headers["ETag"] = resource.etag
        if resource.last_modified is not None:
            headers["Last-Modified"] = resource.last_modified
        if resource.etag is not None and request.headers.get("If-None-Match") == resource.etag:
            return web.Response(status=304, headers=headers)
        if (resource.etag is None and resource.last_modified is not None
                and request.headers.get("If-Modified-Since") == resource.last_modified):
            return web.Response(status=304, headers=headers)
        return web.Response(body=resource.body, headers=headers,
                            content_type=resource.content_type)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    feeds = FeedServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", feeds.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
    host, port = sockets[0].getsockname()[:2]
    feeds.base_url = f"http://{host}:{port}"
    try:
        yield feeds
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def ingest(store: Store) -> Ingest:
    policy = AuthorityPolicy(sender=SENDER, allowed_statuses=frozenset({Status.ACTUAL}))
    # No operators: every alert is accepted with nothing to send; feeds are what is tested.
    return Ingest(store=store, authorities={SENDER: policy}, operators=[],
                  targeting=TargetingPolicy(), clock=lambda: datetime.now(UTC))


def poller(store: Store, session: aiohttp.ClientSession, *feeds: FeedSettings,
           **options: float) -> FeedPoller:
    return FeedPoller(feeds=feeds, ingest=ingest(store), store=store, session=session,
                      clock=lambda: datetime.now(UTC), rng=random.Random(7), **options)


def atom(server: FeedServer, links: list[str], *, embedded: list[bytes] = ()) -> bytes:
    """An Atom index linking ``links`` (paths on the server) and embedding ``embedded``."""
    entries = []
    for n, path in enumerate(links):
        entries.append(f"<entry><id>urn:test:link:{n}</id><title>Alert {n}</title>"
                       f"<updated>2024-01-01T00:00:00Z</updated>"
                       f'<link rel="alternate" type="application/cap+xml" '
                       f'href="{server.url(path)}"/></entry>')
    for n, document in enumerate(embedded):
        alert = document.decode().split("?>", 1)[-1]
        entries.append(f"<entry><id>urn:test:fat:{n}</id><title>Fat {n}</title>"
                       f"<updated>2024-01-01T00:00:00Z</updated><summary>s</summary>"
                       f'<content type="application/cap+xml">{alert}</content></entry>')
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:test:feed</id>'
            "<title>Test warnings</title><updated>2024-01-01T00:00:00Z</updated>"
            "<author><name>test</name></author>" + "".join(entries) + "</feed>").encode()


def feed(server: FeedServer, path: str, **options: float) -> FeedSettings:
    return FeedSettings(url=server.url(path), authority=SENDER, **options)


async def alerts_with(store: Store, identifier: str) -> list[AlertState]:
    return [a.state for a in await store.list_alerts() if a.identifier == identifier]


async def test_index_is_polled_conditionally_and_documents_fetched_once(
        server: FeedServer, session: aiohttp.ClientSession, store: Store) -> None:
    for name, body in CAP.items():
        server.resources[f"/cap/{name}.xml"] = Resource(body=body)
    server.resources["/index.atom"] = Resource(
        body=atom(server, ["/cap/161.xml", "/cap/0.xml"]), etag='"v1"',
        last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    index = feed(server, "/index.atom")
    first = poller(store, session, index)

    report = await first.poll_once(index)
    assert report.errors == ()
    assert (report.fetched, report.submitted, report.accepted) == (3, 2, 2)
    stored = await store.list_alerts()
    assert {a.source for a in stored} == {f"feed:{index.url}"}
    assert {a.state for a in stored} == {AlertState.ACCEPTED}

    again = await first.poll_once(index)
    assert (again.not_modified, again.fetched, again.submitted) == (1, 0, 0)
    assert server.conditions["/index.atom"][-1] == ('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")

    # The index changes: only the new document is fetched.
    server.resources["/index.atom"] = Resource(
        body=atom(server, ["/cap/1.xml", "/cap/161.xml", "/cap/0.xml"]), etag='"v2"')
    changed = await first.poll_once(index)
    assert (changed.fetched, changed.submitted, changed.accepted) == (2, 1, 1)
    assert server.hits["/cap/161.xml"] == server.hits["/cap/0.xml"] == 1

    # A restarted poller remembers the validators and the fetched documents (the store).
    restarted = poller(store, session, index)
    assert (await restarted.poll_once(index)).not_modified == 1
    assert server.conditions["/index.atom"][-1][0] == '"v2"'
    server.resources["/index.atom"].etag = '"v3"'
    after = await restarted.poll_once(index)
    assert (after.fetched, after.submitted, after.errors) == (1, 0, ())
    assert sum(server.hits[f"/cap/{n}.xml"] for n in CAP) == 3
    assert len(await store.list_alerts()) == 3


async def test_last_modified_alone_gives_a_conditional_get(
        server: FeedServer, session: aiohttp.ClientSession, store: Store) -> None:
    server.resources["/bare.xml"] = Resource(body=CAP["4"],
                                             last_modified="Tue, 02 Jan 2024 10:00:00 GMT")
    bare = feed(server, "/bare.xml")
    polls = poller(store, session, bare)
    first = await polls.poll_once(bare)
    assert (first.fetched, first.accepted) == (1, 1)
    second = await polls.poll_once(bare)
    assert second.not_modified == 1
    assert server.conditions["/bare.xml"][-1] == (None, "Tue, 02 Jan 2024 10:00:00 GMT")

    # Without validators the document comes again, and is recognised by its key.
    server.resources["/bare.xml"].last_modified = None
    unconditional = feed(server, "/bare.xml", conditional=False)
    third = await polls.poll_once(unconditional)
    assert (third.fetched, third.submitted, third.skipped) == (1, 0, 1)
    assert server.conditions["/bare.xml"][-1] == (None, None)
    assert len(await store.list_alerts()) == 1


async def test_failing_feed_backs_off_then_recovers(
        server: FeedServer, session: aiohttp.ClientSession, store: Store,
        caplog: pytest.LogCaptureFixture) -> None:
    server.resources["/cap/4.xml"] = Resource(body=CAP["4"])
    server.resources["/flaky.atom"] = Resource(body=atom(server, ["/cap/4.xml"]), fail=3)
    flaky = feed(server, "/flaky.atom", interval=0.05)
    polls = poller(store, session, flaky, backoff_base=0.05, backoff_cap=0.3)
    caplog.set_level(logging.WARNING, logger="dispatcher.feeds")

    report = await polls.poll_once(flaky)
    assert not report.ok and "HTTP 500" in report.errors[0] and flaky.url in report.errors[0]
    assert 0.04 <= polls.next_delay(flaky) <= 0.06
    await polls.poll_once(flaky)
    assert 0.08 <= polls.next_delay(flaky) <= 0.12  # doubled, with jitter
    assert any(flaky.url in r.getMessage() and "HTTP 500" in r.getMessage()
               for r in caplog.records)

    stop = asyncio.Event()
    loop = asyncio.create_task(polls.run(stop))
    try:
        async with asyncio.timeout(10):
            while not await alerts_with(store, "2.49.0.1.276.DWD.PVW.1487857490473.4"):
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
    assert server.hits["/flaky.atom"] >= 4  # three failures, then the index
    assert polls.next_delay(flaky) == flaky.interval  # recovered: back to the interval


async def test_errors_are_reported_and_do_not_keep_validators(
        server: FeedServer, session: aiohttp.ClientSession, store: Store) -> None:
    server.resources["/garbage.atom"] = Resource(body=b"<feed><unclosed></feed>")
    server.resources["/slow.atom"] = Resource(body=atom(server, []), delay=0.5)
    server.resources["/cap/0.xml"] = Resource(body=CAP["0"])
    server.resources["/broken.xml"] = Resource(body=b"", fail=1)
    server.resources["/partly.atom"] = Resource(
        body=atom(server, ["/cap/0.xml", "/broken.xml"]), etag='"p1"')
    garbage = feed(server, "/garbage.atom")
    slow = feed(server, "/slow.atom", timeout=0.1)
    partly = feed(server, "/partly.atom")
    polls = poller(store, session, garbage, slow, partly)

    bad = await polls.poll_once(garbage)
    assert "not a CAP feed or document" in bad.errors[0]
    timed_out = await polls.poll_once(slow)
    assert "timed out" in timed_out.errors[0] and slow.url in timed_out.errors[0]

    # One linked document fails: the rest is submitted, but the index validators are
    # not kept, so the next poll fetches the index again and only the failed document.
    first = await polls.poll_once(partly)
    assert first.accepted == 1 and any("/broken.xml: HTTP 500" in e for e in first.errors)
    server.resources["/broken.xml"] = Resource(body=CAP["1"])
    second = await polls.poll_once(partly)
    assert server.conditions["/partly.atom"][-1] == (None, None)
    assert (second.fetched, second.accepted, second.errors) == (2, 1, ())
    assert server.hits["/cap/0.xml"] == 1
    assert (await polls.poll_once(partly)).not_modified == 1


async def test_same_alert_in_two_feeds_is_submitted_once(
        server: FeedServer, session: aiohttp.ClientSession, store: Store) -> None:
    for name, body in CAP.items():
        server.resources[f"/cap/{name}.xml"] = Resource(body=body)
        server.resources[f"/mirror/{name}.xml"] = Resource(body=body)
    server.resources["/a.atom"] = Resource(body=atom(server, ["/cap/161.xml"]))
    server.resources["/b.atom"] = Resource(body=atom(server, ["/cap/161.xml",
                                                              "/mirror/161.xml"]))
    server.resources["/fat.atom"] = Resource(body=atom(server, [], embedded=[CAP["161"]]))
    a, b, fat = (feed(server, p) for p in ("/a.atom", "/b.atom", "/fat.atom"))
    polls = poller(store, session, a, b, fat)

    assert (await polls.poll_once(a)).accepted == 1
    second = await polls.poll_once(b)
    # The shared URL is not fetched again; the mirror is fetched once and recognised.
    assert (second.fetched, second.submitted, second.skipped) == (2, 0, 1)
    third = await polls.poll_once(fat)
    assert (third.submitted, third.skipped) == (0, 1)
    assert server.hits["/cap/161.xml"] == 1
    assert await alerts_with(store, IDENTIFIER_161) == [AlertState.ACCEPTED]

    # Two feeds polled at the same moment: still one fetch of the shared URL, one alert.
    server.resources["/a.atom"] = Resource(body=atom(server, ["/cap/0.xml"]))
    server.resources["/b.atom"] = Resource(body=atom(server, ["/cap/0.xml", "/mirror/0.xml"]))
    reports = await asyncio.gather(polls.poll_once(a), polls.poll_once(b))
    assert sum(r.accepted for r in reports) == 1
    assert sum(r.submitted for r in reports) == 1
    assert server.hits["/cap/0.xml"] == 1
    assert await alerts_with(store, "2.49.0.1.276.DWD.PVW.1446300252136.0") == [
        AlertState.ACCEPTED]


async def test_fat_feed_submits_oldest_first(
        server: FeedServer, session: aiohttp.ClientSession, store: Store) -> None:
    # The Cancel is listed first (feeds put the newest on top): submitted first, it would
    # find nothing to cancel and the alert it cancels would then go out.
    server.resources["/fat.atom"] = Resource(
        body=atom(server, [], embedded=[CANCEL_161, CAP["161"]]))
    fat = feed(server, "/fat.atom")
    report = await poller(store, session, fat).poll_once(fat)
    assert (report.submitted, report.accepted, report.errors) == (2, 2, ())
    [original] = [a for a in await store.list_alerts() if a.identifier == IDENTIFIER_161]
    [cancel] = [a for a in await store.list_alerts() if a.msg_type == "Cancel"]
    assert original.state is AlertState.CANCELLED and original.stopped_by == cancel.id
    assert "references-unknown" not in cancel.flags
    assert original.id < cancel.id
