"""The feed poller: CAP alerts from Atom/RSS indexes, fat feeds and bare CAP documents.

Each enabled :class:`~dispatcher.config.FeedSettings` is polled every
``interval`` seconds by :meth:`FeedPoller.run` (one task per feed, so a slow
feed never delays another). A poll (:meth:`FeedPoller.poll_once`):

1. GETs the feed URL, conditionally: the ``ETag`` and ``Last-Modified`` of the
   last *complete* poll go back as ``If-None-Match`` / ``If-Modified-Since``
   (remembered in the store, table ``feed_state``, so a restart does not refetch
   everything). A 304 ends the poll.
2. Reads what came back (with :mod:`cap.xml`'s safety limits): an Atom or RSS
   index whose entries link to CAP documents, a fat feed whose entries embed
   the alerts, an EDXL-DE distribution, or one bare CAP document.
3. Fetches each linked CAP document not fetched before (the ``feed_documents``
   table and an in-memory cache, shared by every feed: a URL in two feeds is
   fetched once) and hands every alert to
   :meth:`Ingest.submit(raw, source="feed:<url>", token_authority=feed.authority)
   <dispatcher.pipeline.Ingest.submit>`, oldest ``sent`` first (an Update or
   Cancel after the alert it references). An alert whose (sender, identifier,
   sent) was already submitted, from this feed or another, or is in the store,
   is not submitted again: ingest would answer "repeat" anyway.

Only when every document of a changed feed was handled are its validators
kept; otherwise the next poll fetches the feed again (and skips what was
handled). Errors (a 5xx or other non-2xx answer, a timeout, a refused
connection, bytes that are not XML or not CAP, a database outage) are logged
with the feed URL and the reason, and the feed's next poll backs off
exponentially with jitter up to a cap; the loop itself never dies of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import xmltodict
from yarl import URL

from cap.containers import XML_NS, EmbeddedAlert, parse_iso_loose, text_of
from cap.edxl import read_distribution
from cap.errors import CapcastError, NotCap, XmlRefused
from cap.feeds import read_feed
from cap.parse import root_kind
from cap.xml import DEFAULT_MAX_BYTES, parse_xml
from dispatcher.config import FeedSettings
from dispatcher.errors import StoreError
from dispatcher.pipeline import Ingest, IngestOutcome, IngestResult
from dispatcher.queue import RetryPolicy
from dispatcher.store import Store

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_CAP",
    "DEFAULT_MAX_FEED_BYTES",
    "FeedPoller",
    "PollReport",
    "alert_bytes",
    "alert_key",
]

logger = logging.getLogger(__name__)

#: Feeds (indexes) may be larger than one CAP document: national indexes reach megabytes.
DEFAULT_MAX_FEED_BYTES = 16 << 20
#: Seconds before the first retry of a failing feed (never more than its interval).
DEFAULT_BACKOFF_BASE = 2.0
#: The longest wait between polls of a failing feed (never less than its interval).
DEFAULT_BACKOFF_CAP = 600.0
#: Linked CAP documents fetched at once by one poll.
DEFAULT_FETCH_CONCURRENCY = 4
#: At most this many new documents per poll; the rest come with the next one.
DEFAULT_MAX_DOCUMENTS = 500
#: URLs and alert keys remembered in memory (the store remembers URLs for good).
DEFAULT_SEEN_LIMIT = 50_000

_ACCEPT = ("application/atom+xml, application/rss+xml, application/cap+xml, "
           "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1")

#: (sender, identifier, sent) of an alert; ``sent`` a datetime when it could be read.
AlertKey = tuple[str, str, datetime | str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    """What one poll of one feed did.

    ``fetched`` counts 200 answers (the feed and its linked documents),
    ``not_modified`` 304 answers; ``submitted`` the documents handed to
    ingest, of which ``accepted`` became new alerts, ``repeats`` were known
    and ``refused`` were refused (or conflicted); ``skipped`` the alerts not
    submitted because their key was submitted before (same alert in another
    feed or another link). ``errors`` names every failure with its URL.
    """

    feed: str
    polled_at: datetime
    fetched: int = 0
    not_modified: int = 0
    submitted: int = 0
    accepted: int = 0
    repeats: int = 0
    refused: int = 0
    skipped: int = 0
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"feed": self.feed, "polled_at": self.polled_at.isoformat(),
                "fetched": self.fetched, "not_modified": self.not_modified,
                "submitted": self.submitted, "accepted": self.accepted,
                "repeats": self.repeats, "refused": self.refused, "skipped": self.skipped,
                "errors": list(self.errors)}


@dataclass(slots=True)
class _Tally:
    """The counts of a poll while it runs."""

    fetched: int = 0
    not_modified: int = 0
    submitted: int = 0
    accepted: int = 0
    repeats: int = 0
    refused: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def report(self, feed: str, polled_at: datetime) -> PollReport:
        return PollReport(feed=feed, polled_at=polled_at, fetched=self.fetched,
                          not_modified=self.not_modified, submitted=self.submitted,
                          accepted=self.accepted, repeats=self.repeats, refused=self.refused,
                          skipped=self.skipped, errors=tuple(self.errors))


@dataclass(slots=True)
class _FeedState:
    """What is remembered of one feed (mirrored in the ``feed_state`` table)."""

    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    last_error: str | None = None


class _FetchError(CapcastError):
    """A GET that did not give a usable answer; ``reason`` says why, for the log."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class _Document:
    """One alert to submit: its bytes, its key (when readable) and the URL it came from."""

    raw: bytes
    key: AlertKey | None
    #: The linked document's URL; None for an alert embedded in the feed.
    url: str | None


class _Seen:
    """A bounded set that forgets the oldest entries first (recently used ones stay)."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[Any, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, item: object) -> bool:
        if item in self._items:
            self._items.move_to_end(item)
            return True
        return False

    def add(self, item: object) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def discard(self, item: object) -> None:
        self._items.pop(item, None)


def alert_key(raw: Any, ns: str) -> AlertKey | None:
    """(sender, identifier, sent) of an ``<alert>`` element as :func:`cap.xml.parse_xml` built it.

    Read directly (no validation) so that even an invalid alert is deduplicated;
    ``sent`` is a datetime when it parses, else its text. None without all three.
    """
    if not isinstance(raw, dict):
        return None
    sender = text_of(raw.get(f"{ns}:sender")).strip()
    identifier = text_of(raw.get(f"{ns}:identifier")).strip()
    sent_text = text_of(raw.get(f"{ns}:sent")).strip()
    if not (sender and identifier and sent_text):
        return None
    sent = parse_iso_loose(sent_text)
    return (sender, identifier, sent if sent is not None else sent_text)


def _without_declarations(value: Any, namespaces: dict[str, str]) -> Any:
    """A copy of an xmltodict tree without ``@xmlns``, collecting the namespaces used."""
    if isinstance(value, list):
        return [_without_declarations(v, namespaces) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, child in value.items():
        if key == "@xmlns":
            continue  # declarations are written once, on the root, with our prefixes
        if not key.startswith("#"):
            ns, sep, _ = key.removeprefix("@").rpartition(":")
            if sep and ns and ns not in namespaces:
                namespaces[ns] = "xml" if ns == XML_NS else f"ns{len(namespaces)}"
        out[key] = _without_declarations(child, namespaces)
    return out


def alert_bytes(alert: EmbeddedAlert) -> bytes:
    """An embedded ``<alert>`` (from a fat feed or EDXL-DE) as a standalone XML document.

    Written from the parsed tree with the alert's CAP namespace as the default
    namespace and prefixes for any other (a signature's): ingest stores these
    bytes and validates them like any posted alert. An XML signature of an
    embedded alert is carried over but rarely verifies after the rewrite.
    """
    namespaces: dict[str, str] = {alert.ns: ""}
    content = _without_declarations(alert.raw, namespaces)
    if not isinstance(content, dict):
        content = {} if content is None else {"#text": content}
    declarations = {prefix: ns for ns, prefix in namespaces.items() if prefix != "xml"}
    document = {f"{alert.ns}:alert": {"@xmlns": declarations, **content}}
    text: str = xmltodict.unparse(document, namespaces=namespaces, namespace_separator=":",
                                  full_document=True, encoding="utf-8")
    return text.encode("utf-8")


def _sort_key(document: _Document) -> tuple[int, float]:
    # Oldest first: an Update or Cancel after the alert it references. Unknown times last.
    if document.key is None or not isinstance(document.key[2], datetime):
        return (1, 0.0)
    return (0, document.key[2].timestamp())


def _same_origin(a: str, b: str) -> bool:
    left, right = URL(a), URL(b)
    return (left.scheme, left.host, left.port) == (right.scheme, right.host, right.port)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FeedPoller:
    """Polls CAP feeds and hands their alerts to ingest (see the module docstring).

    ``session`` is an :class:`aiohttp.ClientSession` owned by the caller;
    ``clock`` returns an aware ``datetime`` (for the reports); ``rng`` jitters
    the backoff (``random.Random(seed)`` for repeatable delays). Backoff after
    ``n`` failures in a row: ``min(interval, backoff_base) * 2 ** (n - 1)``,
    at most ``max(interval, backoff_cap)``, spread by ``jitter`` either way.
    With ``persist`` off, validators and fetched URLs live in memory only.
    """

    def __init__(self, *, feeds: Sequence[FeedSettings], ingest: Ingest, store: Store,
                 session: aiohttp.ClientSession,
                 clock: Callable[[], datetime] = _utcnow, rng: random.Random | None = None,
                 backoff_base: float = DEFAULT_BACKOFF_BASE,
                 backoff_cap: float = DEFAULT_BACKOFF_CAP, jitter: float = 0.2,
                 max_feed_bytes: int = DEFAULT_MAX_FEED_BYTES,
                 max_document_bytes: int = DEFAULT_MAX_BYTES,
                 fetch_concurrency: int = DEFAULT_FETCH_CONCURRENCY,
                 max_documents: int = DEFAULT_MAX_DOCUMENTS,
                 seen_limit: int = DEFAULT_SEEN_LIMIT, persist: bool = True) -> None:
        """Collaborators are explicit; see the class docstring for the knobs."""
        if backoff_base <= 0 or backoff_cap < backoff_base:
            raise ValueError(f"need 0 < backoff_base <= backoff_cap, got {backoff_base}, "
                             f"{backoff_cap}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        if fetch_concurrency < 1 or max_documents < 1 or seen_limit < 1:
            raise ValueError("fetch_concurrency, max_documents and seen_limit must be >= 1")
        self.feeds = tuple(feeds)
        self._ingest = ingest
        self._store = store
        self._session = session
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._jitter = jitter
        self._max_feed_bytes = max_feed_bytes
        self._max_document_bytes = max_document_bytes
        self._fetch_slots = asyncio.Semaphore(fetch_concurrency)
        self._max_documents = max_documents
        self._persist = persist
        self._states: dict[str, _FeedState] = {}
        # Shared by every feed: a URL or an alert handled for one is handled for all.
        self._urls = _Seen(seen_limit)
        self._keys = _Seen(seen_limit)
        self._inflight_urls: set[str] = set()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every enabled feed on its own schedule until ``stop`` is set."""
        feeds = [f for f in self.feeds if f.enabled]
        if not feeds:
            await stop.wait()
            return
        await asyncio.gather(*(self._loop(feed, stop) for feed in feeds))

    async def _loop(self, feed: FeedSettings, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once(feed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug must not end polling for good: log it, back off, try again.
                state = self._states.setdefault(feed.url, _FeedState())
                state.failures += 1
                state.last_error = f"unexpected {type(exc).__name__}: {exc}"
                logger.exception("feed %s: poll failed unexpectedly", feed.url,
                                 extra={"action": "feed_error", "feed": feed.url})
            delay = self.next_delay(feed)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue

    def next_delay(self, feed: FeedSettings) -> float:
        """Seconds until the next poll of ``feed``: its interval, or the backoff after failures."""
        state = self._states.get(feed.url)
        if state is None or state.failures == 0:
            return feed.interval
        policy = RetryPolicy(base_delay=min(feed.interval, self._backoff_base), factor=2.0,
                             max_delay=max(feed.interval, self._backoff_cap),
                             jitter=self._jitter)
        return policy.delay(state.failures, self._rng)

    # -- one poll ------------------------------------------------------------------------

    async def poll_once(self, feed: FeedSettings) -> PollReport:
        """Poll ``feed`` once: fetch it (conditionally), submit what is new, remember state.

        Never raises for a feed's or a peer's trouble: failures are in the
        report's ``errors`` (and logged), and count towards the backoff.
        """
        polled_at = self._clock()
        tally = _Tally()
        state = await self._state(feed)
        headers = {"Accept": _ACCEPT}
        if feed.conditional:
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        if feed.authorization is not None:
            headers["Authorization"] = feed.authorization.value
        changed = False
        try:
            response = await self._get(feed.url, headers=headers, timeout=feed.timeout,
                                       limit=self._max_feed_bytes)
        except _FetchError as exc:
            tally.errors.append(str(exc))
        else:
            if response.status == 304:
                tally.not_modified += 1
            else:
                tally.fetched += 1
                if await self._process(feed, response.body, tally):
                    changed = True
                    state.etag = response.etag
                    state.last_modified = response.last_modified
        await self._finish(feed, state, tally, changed=changed)
        report = tally.report(feed.url, polled_at)
        # Each error was logged as a warning already; this is the poll's summary.
        level = logging.INFO if tally.submitted or tally.errors else logging.DEBUG
        logger.log(level, "feed %s polled: %d fetched, %d not modified, %d submitted "
                          "(%d accepted, %d repeats, %d refused), %d skipped, %d errors",
                   feed.url, tally.fetched, tally.not_modified, tally.submitted,
                   tally.accepted, tally.repeats, tally.refused, tally.skipped,
                   len(tally.errors), extra={"action": "feed_poll", **report.to_json()})
        return report

    async def _state(self, feed: FeedSettings) -> _FeedState:
        state = self._states.get(feed.url)
        if state is not None:
            return state
        state = _FeedState()
        if self._persist:
            try:
                row = await self._store.get_feed_state(feed.url)
            except StoreError as exc:
                # Without the remembered validators the feed is simply fetched in full.
                logger.warning("feed %s: cannot read its saved state: %s", feed.url, exc,
                               extra={"action": "feed_state", "feed": feed.url})
                return state
            if row is not None:
                state = _FeedState(etag=row["etag"], last_modified=row["last_modified"],
                                   failures=row["failures"], last_error=row["last_error"])
        self._states[feed.url] = state
        return state

    async def _finish(self, feed: FeedSettings, state: _FeedState, tally: _Tally, *,
                      changed: bool) -> None:
        if tally.errors:
            state.failures += 1
            state.last_error = "; ".join(tally.errors)[:2000]
            for error in tally.errors:
                logger.warning("feed %s: %s", feed.url, error,
                               extra={"action": "feed_error", "feed": feed.url,
                                      "reason": error, "failures": state.failures})
        else:
            state.failures = 0
            state.last_error = None
        if not self._persist:
            return
        try:
            await self._store.save_feed_state(feed.url, etag=state.etag,
                                              last_modified=state.last_modified,
                                              failures=state.failures,
                                              last_error=state.last_error, changed=changed)
        except StoreError as exc:
            logger.warning("feed %s: cannot save its state: %s", feed.url, exc,
                           extra={"action": "feed_state", "feed": feed.url})

    async def _get(self, url: str, *, headers: Mapping[str, str], timeout: float,
                   limit: int) -> _Response:
        """GET ``url``: a 200 (with the body) or a 304, else :class:`_FetchError`."""
        try:
            async with self._session.get(url, headers=dict(headers),
                                         timeout=aiohttp.ClientTimeout(total=timeout)
                                         ) as response:
                if response.status == 304:
                    return _Response(status=304, body=b"", etag=None, last_modified=None)
                if response.status != 200:
                    raise _FetchError(url, f"HTTP {response.status} {response.reason or ''}"
                                      .rstrip())
                if response.content_length is not None and response.content_length > limit:
                    raise _FetchError(url, f"{response.content_length:,} bytes is over the "
                                           f"limit of {limit:,}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise _FetchError(url, f"more than {limit:,} bytes (the limit)")
                    chunks.append(chunk)
                return _Response(status=200, body=b"".join(chunks),
                                 etag=response.headers.get("ETag"),
                                 last_modified=response.headers.get("Last-Modified"))
        except TimeoutError:
            raise _FetchError(url, f"timed out after {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise _FetchError(url, f"{type(exc).__name__}: {exc}") from None

    async def _process(self, feed: FeedSettings, body: bytes, tally: _Tally) -> bool:
        """Submit what ``body`` holds; True when every document in it was handled."""
        try:
            tree = parse_xml(body, max_bytes=self._max_feed_bytes)
            kind = root_kind(tree)
        except (XmlRefused, NotCap) as exc:
            tally.errors.append(f"{feed.url}: not a CAP feed or document: {exc}")
            return False
        if kind == "alert":
            document = _Document(raw=body, key=alert_key(tree.root, tree.root_ns),
                                 url=None)
            return await self._submit_all(feed, [document], tally)
        embedded: Iterable[EmbeddedAlert]
        if kind == "edxl":
            distribution, _ = read_distribution(tree)
            links: Sequence[str] = distribution.cap_links
            embedded = distribution.embedded
        else:
            # Feed-rule findings (a missing author...) do not stop us using what is there.
            parsed, _ = read_feed(tree)
            links = [link for entry in parsed.entries for link in entry.cap_links]
            embedded = [alert for entry in parsed.entries for alert in entry.embedded]
        documents = [_Document(raw=alert_bytes(a), key=alert_key(a.raw, a.ns), url=None)
                     for a in embedded]
        claimed: list[str] = []
        try:
            fetched, complete = await self._fetch_new(feed, links, tally, claimed)
            submitted = await self._submit_all(feed, documents + fetched, tally)
        finally:
            # Whatever happened, release the URLs this poll claimed (see _fetch_new).
            self._inflight_urls.difference_update(claimed)
        return complete and submitted

    async def _fetch_new(self, feed: FeedSettings, links: Sequence[str], tally: _Tally,
                         claimed: list[str]) -> tuple[list[_Document], bool]:
        """The linked documents not fetched before; False when some are left to fetch.

        The URLs fetched are added to ``claimed`` (and to the in-flight set, so
        that a feed polled meanwhile skips them); the caller releases them.
        """
        candidates = [url for url in dict.fromkeys(links)
                      if url not in self._urls and url not in self._inflight_urls]
        if candidates and self._persist:
            try:
                known = await self._store.known_feed_documents(candidates)
            except StoreError as exc:
                tally.errors.append(f"{feed.url}: cannot read the fetched documents: {exc}")
                return [], False
            for url in known:
                self._urls.add(url)
            # Checked again after the await: another poll may have claimed some meanwhile.
            candidates = [url for url in candidates if url not in known
                          and url not in self._urls and url not in self._inflight_urls]
        complete = len(candidates) <= self._max_documents
        candidates = candidates[:self._max_documents]
        # Claimed with no await since the check: a feed polled at the same time skips them.
        self._inflight_urls.update(candidates)
        claimed.extend(candidates)
        headers = {"Accept": _ACCEPT}

        async def fetch(url: str) -> _Document | None:
            link_headers = dict(headers)
            if feed.authorization is not None and _same_origin(url, feed.url):
                # The feed's credentials go to the feed's own server, never elsewhere.
                link_headers["Authorization"] = feed.authorization.value
            async with self._fetch_slots:
                try:
                    response = await self._get(url, headers=link_headers,
                                               timeout=feed.timeout,
                                               limit=self._max_document_bytes)
                except _FetchError as exc:
                    tally.errors.append(str(exc))
                    return None
            tally.fetched += 1
            return self._document(url, response.body)

        results = await asyncio.gather(*(fetch(url) for url in candidates))
        documents = [d for d in results if d is not None]
        return documents, complete and len(documents) == len(candidates)

    def _document(self, url: str, body: bytes) -> _Document:
        key: AlertKey | None = None
        try:
            tree = parse_xml(body, max_bytes=self._max_document_bytes)
            if root_kind(tree) == "alert":
                key = alert_key(tree.root, tree.root_ns)
        except (XmlRefused, NotCap):
            pass  # ingest stores it and says what is wrong with it
        return _Document(raw=body, key=key, url=url)

    async def _submit_all(self, feed: FeedSettings, documents: Sequence[_Document],
                          tally: _Tally) -> bool:
        """Submit ``documents`` oldest first; False when one could not be handed over."""
        complete = True
        for document in sorted(documents, key=_sort_key):
            handled = await self._submit(feed, document, tally)
            complete = complete and handled
        return complete

    async def _submit(self, feed: FeedSettings, document: _Document, tally: _Tally) -> bool:
        """Hand one document to ingest unless its alert was handed over before."""
        key = document.key
        if key is not None and key in self._keys:
            tally.skipped += 1
            await self._remember(feed, document, None)
            return True
        if key is not None:
            # Claimed with no await since the check: another feed's poll skips this alert.
            self._keys.add(key)
        try:
            if key is not None and isinstance(key[2], datetime):
                # After a restart the memory is empty, the store is not.
                stored = await self._store.find_by_key(key[0], key[1], key[2])
                if stored is not None:
                    tally.skipped += 1
                    await self._remember(feed, document, stored.id)
                    return True
            result = await self._ingest.submit(document.raw, source=self._source(feed),
                                               token_authority=feed.authority)
        except StoreError as exc:
            if key is not None:
                self._keys.discard(key)
            tally.errors.append(f"{document.url or feed.url}: could not be stored: {exc}")
            return False
        tally.submitted += 1
        self._count(feed, document, result, tally)
        await self._remember(feed, document, result.alert_id)
        return True

    @staticmethod
    def _source(feed: FeedSettings) -> str:
        name = getattr(feed, "name", None)
        return f"feed:{name or feed.url}"

    @staticmethod
    def _count(feed: FeedSettings, document: _Document, result: IngestResult,
               tally: _Tally) -> None:
        if result.outcome is IngestOutcome.ACCEPTED:
            tally.accepted += 1
        elif result.outcome is IngestOutcome.REPEAT:
            tally.repeats += 1
        else:
            tally.refused += 1
            reason = result.refusal.reason if result.refusal is not None else result.outcome.value
            logger.warning("feed %s: %s refused (HTTP %d): %s", feed.url,
                           document.url or "an embedded alert", result.http_status, reason,
                           extra={"action": "feed_refused", "feed": feed.url,
                                  "document": document.url, "alert_id": result.stored_id,
                                  "reason": reason})

    async def _remember(self, feed: FeedSettings, document: _Document,
                        alert_id: int | None) -> None:
        """Remember a linked document as handled (in memory, and in the store when it can)."""
        if document.url is None:
            return
        self._urls.add(document.url)
        if not self._persist:
            return
        try:
            await self._store.record_feed_document(document.url, feed_url=feed.url,
                                                   alert_id=alert_id)
        except StoreError as exc:
            # Handled all the same; after a restart it is fetched again and skipped by key.
            logger.warning("feed %s: cannot record %s as fetched: %s", feed.url, document.url,
                           exc, extra={"action": "feed_state", "feed": feed.url})
