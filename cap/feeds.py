"""Reading Atom (RFC 4287) and RSS 2.0 CAP feeds (sans-IO).

A CAP feed is either an *index* ("thin" feed) whose entries link to CAP
documents, or a *fat* feed whose entries embed the ``<alert>`` itself.
:func:`read_feed` walks a tree from :func:`cap.xml.parse_xml` once and returns
a :class:`Feed` (entries, the CAP URLs each points to, the alerts each
embeds) and every feed rule broken, as :class:`~cap.findings.Finding`\\ s with
paths like ``feed/entry[2]/id`` (indexes 0-based). Embedded alerts are read
separately with :func:`cap.parse.read_alert`.

Which links are CAP links
-------------------------
Atom, per entry, first match wins:

1. links (any ``rel`` but ``self``/``edit``) and ``<content src>`` whose
   ``type`` is ``application/cap+xml`` or ``application/common-alerting-
   protocol+xml``;
2. otherwise links with ``rel`` alternate (the default), related or
   enclosure, and ``<content src>``, that are untyped (NWS and MeteoAlarm
   indexes), have an XML type other than (X)HTML (Krisinformation labels its
   CAP ``application/atom+xml``), or end in ``.cap``/``.xml`` and are not
   image, audio, video or HTML.

The entry ``<id>`` is never used, even when it is the CAP URL (NWS): Google's
cap-library reports an entry with only an id as missing its CAP link
(``no_link.atom``), and an id is a name, not a locator.

RSS, per item: 1. ``<enclosure>`` or ``atom:link`` with a CAP media type;
2. otherwise ``<link>``, XML or ``.cap``/``.xml`` enclosures, and
``atom:link``\\ s as in Atom tier 2; 3. otherwise a ``<guid>`` that is a
permalink (``isPermaLink`` not ``false``) and an http(s) URL.

Relative Atom references are resolved against ``xml:base``. Only absolute
http(s) URLs become CAP links; others are reported and dropped, so a feed
can never make capcast open ``file:`` or other local URLs.

Rules and codes
---------------
Google cap-library ReasonTypes are in brackets.

======================================  =======  ================================================
code                                    level    rule
======================================  =======  ================================================
atom-id-required                        error    feed has a non-empty <id> [ATOM_ID_IS_REQUIRED]
atom-title-required                     error    feed <title> [ATOM_TITLE_IS_REQUIRED]
atom-updated-required                   error    feed <updated> [ATOM_UPDATED_IS_REQUIRED]
atom-entry-id-required                  error    entry <id> [ATOM_ENTRY_ID_IS_REQUIRED]
atom-entry-title-required               error    entry <title> [ATOM_ENTRY_TITLE_IS_REQUIRED]
atom-entry-updated-required             error    entry <updated> [ATOM_ENTRY_UPDATED_IS_REQUIRED]
atom-entry-missing-cap-link             error    entry embeds CAP or links to it
                                                 [ATOM_ENTRY_MISSING_CAP_LINK]
atom-entry-duplicate-id                 error    two entries share id and updated
                                                 [ATOM_ENTRY_NON_UNIQUE_IDS]
atom-entry-id-repeated                  warning  same id, different updated (RFC 4287 allows it)
atom-unknown-element                    error    Atom-namespace element not allowed here [OTHER]
atom-duplicate-element                  error    a single-valued Atom element repeats
atom-feed-misplaced-alert               error    CAP outside any <entry> (ignored by readers)
atom-invalid-date                       error    updated/published not RFC 3339 with T and Z
atom-id-not-iri                         warning  <id> is not an absolute IRI
atom-link-href-required                 error    <link> has an href
atom-duplicate-alternate-link           error    two rel=alternate links, same type and hreflang
atom-category-term-required             error    <category> has a term
atom-person-name-required               error    <author>/<contributor> has a <name>
atom-author-missing                     warning  no author on the entry, its source or the feed
atom-text-type-invalid                  error    text construct type is text, html or xhtml
atom-text-has-elements                  error    text/html content holds child elements
atom-xhtml-div-required                 error    type="xhtml" holds one xhtml:div
atom-content-type-invalid               error    <content type> is text/html/xhtml or a MIME type
atom-content-src-not-empty              error    <content src> is empty
atom-entry-summary-required             error    <summary> when content has src or is base64
atom-entry-no-alternate-link            warning  entry without <content> has a rel=alternate link
atom-entry-ambiguous-cap-link           warning  several untyped links could be the CAP document
atom-content-escaped-cap                warning  CAP embedded as escaped text, not as XML
atom-link-not-http                      warning  a would-be CAP link is not an absolute http(s) URL
rss-version-missing                     error    <rss version="2.0">
rss-version-unsupported                 warning  version other than 2.0
rss-channel-required                    error    exactly one <channel>
rss-channel-title-required              error    channel <title> (non-empty)
rss-channel-link-required               error    channel <link> (non-empty)
rss-channel-description-required        error    channel <description>
rss-unknown-element                     error    un-namespaced element RSS 2.0 does not define
rss-duplicate-element                   error    a single-valued RSS element repeats
rss-misplaced-alert                     error    CAP outside any <item>
rss-item-title-or-description-required  error    [RSS_ITEM_TITLE_OR_DESCRIPTION_IS_REQUIRED]
rss-item-missing-cap-link               error    item embeds CAP or links to it
                                                 [RSS_ITEM_MISSING_CAP_LINK]
rss-invalid-date                        error    pubDate/lastBuildDate in RFC 822 form
rss-enclosure-attribute-required        error    <enclosure> has url, length and type
rss-pubdate-recommended                 warning  channel <pubDate> [RSS_PUBDATE_IS_RECOMMENDED]
rss-item-guid-recommended               warning  item <guid> [RSS_ITEM_GUID_IS_RECOMMENDED]
rss-guid-not-permalink                  warning  guid not a URL but isPermaLink is not "false"
rss-content-escaped-cap                 warning  CAP embedded as escaped text in <description>
rss-link-not-http                       warning  a would-be CAP link is not an http(s) URL
======================================  =======  ================================================

An EDXL-DE distribution inside an entry is read with :mod:`cap.edxl` (its
``edxl-*`` findings are included) and its alerts become the entry's
embedded alerts.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from cap.containers import (
    CAP_MEDIA_TYPES,
    CAP_NAMESPACES,
    XML_NS,
    EmbeddedAlert,
    alert_from_document,
    all_text,
    attr,
    child_path,
    find_alerts,
    has_elements,
    iter_children,
    looks_like_cap_markup,
    media_type,
    parse_iso_loose,
    parse_rfc3339,
    text_of,
)
from cap.edxl import EDXL_DE_NS, read_distribution_element
from cap.errors import NotCap
from cap.findings import Finding, Findings
from cap.xml import DEFAULT_MAX_BYTES, XmlTree, parse_xml

__all__ = ["ATOM_NS", "EmbeddedAlert", "Feed", "FeedEntry", "parse_feed", "parse_rfc822",
           "read_feed"]

ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"

FEED_CHILDREN = ("author", "category", "contributor", "generator", "icon", "id", "link", "logo",
                 "rights", "subtitle", "title", "updated", "entry")
FEED_SINGLE = frozenset({"generator", "icon", "id", "logo", "rights", "subtitle", "title",
                         "updated"})
ENTRY_CHILDREN = ("author", "category", "content", "contributor", "id", "link", "published",
                  "rights", "source", "summary", "title", "updated")
ENTRY_SINGLE = frozenset({"content", "id", "published", "rights", "source", "summary", "title",
                          "updated"})
PERSON_CHILDREN = ("name", "uri", "email")
RSS_CHILDREN = ("channel",)
CHANNEL_CHILDREN = ("title", "link", "description", "language", "copyright", "managingEditor",
                    "webMaster", "pubDate", "lastBuildDate", "category", "generator", "docs",
                    "cloud", "ttl", "image", "rating", "textInput", "skipHours", "skipDays",
                    "item")
CHANNEL_SINGLE = frozenset(CHANNEL_CHILDREN) - {"category", "item"}
ITEM_CHILDREN = ("title", "link", "description", "author", "category", "comments", "enclosure",
                 "guid", "pubDate", "source")
ITEM_SINGLE = frozenset(ITEM_CHILDREN) - {"category", "enclosure"}
_ALWAYS_INDEXED = frozenset({"entry", "item", "link"})

_IANA_REL = "http://www.iana.org/assignments/relation/"
_FETCH_RELS = frozenset({"alternate", "related", "enclosure"})
_NOT_CAP_RELS = frozenset({"self", "edit", "edit-media"})
_MEDIA_PREFIXES = ("image/", "audio/", "video/")
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_MIME = re.compile(r"[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*")
_HTTP = ("http://", "https://")

_RFC822 = re.compile(
    r"(?:(?P<wday>[A-Za-z]{3}),\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3})\s+"
    r"(?P<year>\d{4}|\d{2})\s+(?P<hour>\d\d):(?P<minute>\d\d)(?::(?P<second>\d\d))?\s+"
    r"(?P<zone>[+-]\d{4}|[A-Za-z]{1,3})")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZONES = {"ut": 0, "gmt": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7,
          "mdt": -6, "pst": -8, "pdt": -7}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntry:
    """One Atom ``<entry>`` or RSS ``<item>``.

    ``id`` is the Atom id or the RSS guid; ``updated`` the Atom updated or
    the RSS pubDate; ``cap_links`` the http(s) URLs of the CAP documents the
    entry points to (see the module docstring for the rules); ``embedded``
    the CAP alerts it carries inline.
    """

    id: str | None
    title: str | None
    updated: datetime | None
    cap_links: tuple[str, ...] = ()
    summary: str | None = None
    embedded: tuple[EmbeddedAlert, ...] = ()

    def __post_init__(self) -> None:
        if self.updated is not None and self.updated.utcoffset() is None:
            raise ValueError("FeedEntry.updated must be timezone-aware")


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """An Atom or RSS feed of CAP alerts.

    ``kind`` is ``"atom"`` or ``"rss"``. For RSS, ``id`` is the channel
    ``<link>`` (RSS has no feed id) and ``updated`` the channel
    ``lastBuildDate``, else its ``pubDate``.
    """

    kind: str
    id: str | None
    title: str | None
    updated: datetime | None
    entries: tuple[FeedEntry, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("atom", "rss"):
            raise ValueError(f"kind must be 'atom' or 'rss', not {self.kind!r}")
        if self.updated is not None and self.updated.utcoffset() is None:
            raise ValueError("Feed.updated must be timezone-aware")


@dataclass(frozen=True, slots=True)
class _Link:
    """A link candidate: where it points and how it is labelled."""

    href: str
    rel: str
    type: str | None
    path: str


Groups = dict[str, list[tuple[str, Any]]]


def parse_rfc822(text: str) -> datetime:
    """Parse an RFC 822 date-time as RSS 2.0 uses it (``Fri, 04 Feb 2011 20:32:08 GMT``).

    Two- and four-digit years, optional seconds and weekday, numeric zones and
    UT/GMT/Z and the US zone names are accepted; the weekday, when given,
    must match the date. Raises ValueError otherwise.
    """
    match = _RFC822.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 822 date-time "
                         "(like 'Fri, 04 Feb 2011 20:32:08 GMT')")
    month_name = match["month"].lower()
    if month_name not in _MONTHS:
        raise ValueError(f"{match['month']!r} is not a month abbreviation")
    year = int(match["year"])
    if len(match["year"]) == 2:
        year += 2000 if year < 50 else 1900
    zone = match["zone"]
    if zone[0] in "+-":
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        offset = timedelta(minutes=-minutes if zone[0] == "-" else minutes)
    elif zone.lower() in _ZONES:
        offset = timedelta(hours=_ZONES[zone.lower()])
    else:
        raise ValueError(f"{zone!r} is not an RFC 822 time zone (use GMT or +hhmm)")
    value = datetime(year, _MONTHS.index(month_name) + 1, int(match["day"]), int(match["hour"]),
                     int(match["minute"]), int(match["second"] or 0),
                     tzinfo=timezone(offset) if offset else UTC)
    weekday = match["wday"]
    if weekday is not None:
        if weekday.lower() not in _WEEKDAYS:
            raise ValueError(f"{weekday!r} is not a weekday abbreviation")
        if _WEEKDAYS.index(weekday.lower()) != value.weekday():
            actual = _WEEKDAYS[value.weekday()].capitalize()
            raise ValueError(f"{value:%d %b %Y} is a {actual}, not a {weekday}")
    return value


def _lenient_rfc822(text: str) -> datetime | None:
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return value if value.utcoffset() is not None else None


def _local(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("[", 1)[0]


def _is_http(url: str) -> bool:
    return url.lower().startswith(_HTTP) and bool(urlsplit(url).netloc)


def _maybe_cap_type(mime: str | None, href: str) -> bool:
    """Tier-2 test: whether a link of this type at this URL could be a CAP document."""
    if mime is None:
        return True
    if "xml" in mime and "html" not in mime:
        return True
    if mime.startswith(_MEDIA_PREFIXES) or "html" in mime:
        return False
    return urlsplit(href).path.lower().endswith((".cap", ".xml"))


class _Reader:
    """What the Atom and RSS readers share: grouping children, links, embedded CAP."""

    prefix = ""
    ns = ""

    def __init__(self, findings: Findings) -> None:
        self.f = findings
        self._nested_links: list[str] = []

    def group(self, raw: Any, path: str, allowed: tuple[str, ...], single: frozenset[str],
              *, misplaced: bool = False) -> Groups:
        """Group the children in this format's namespace; report unknown and repeated ones.

        With ``misplaced``, CAP alerts among the foreign children (anywhere
        below them) are reported as misplaced: they sit outside any entry.
        """
        groups: Groups = {}
        for ns, name, index, value in iter_children(raw):
            if name in _ALWAYS_INDEXED and index is None:
                index = 0
            here = child_path(path, name, index)
            if ns != self.ns:
                if misplaced:
                    self._misplaced(ns, name, value, here)
                continue
            if name not in allowed:
                self.f.error(f"{self.prefix}-unknown-element", here,
                             f"<{name}> is not allowed in <{_local(path)}>",
                             f"allowed here: {', '.join(allowed)}; put extensions in their "
                             "own namespace")
                continue
            entries = groups.setdefault(name, [])
            if entries and name in single:
                if len(entries) == 1:
                    self.f.error(f"{self.prefix}-duplicate-element", here,
                                 f"<{name}> may occur only once in <{_local(path)}>")
                continue
            entries.append((here, value))
        return groups

    def _misplaced(self, ns: str, name: str, value: Any, path: str) -> None:
        where = "<feed>" if self.prefix == "atom" else "<rss>/<channel>"
        code = f"{self.prefix}-feed-misplaced-alert" if self.prefix == "atom" else \
            "rss-misplaced-alert"
        fix = "wrap it in an <entry>" if self.prefix == "atom" else "put it in an <item>"
        if name == "alert" and ns in CAP_NAMESPACES:
            self.f.error(code, path, f"a CAP <alert> sits directly in {where}, outside any "
                         "entry; feed readers ignore it as foreign markup", fix)
            return
        for alert in find_alerts(value, path):
            self.f.error(code, alert.path, f"a CAP <alert> sits in {where} outside any entry; "
                         "feed readers ignore it", fix)

    def text(self, groups: Groups, name: str, path: str,
             required_code: str | None = None) -> str | None:
        """Direct text of a single child element; report it missing or empty when required."""
        items = groups.get(name)
        if not items:
            if required_code:
                self.f.error(required_code, f"{path}/{name}",
                             f"<{_local(path)}> must have a non-empty <{name}>")
            return None
        here, value = items[0]
        text = text_of(value)
        if not text and required_code:
            self.f.error(required_code, here, f"<{name}> is empty")
        return text or None

    def embedded_in(self, raw: Any, path: str) -> list[EmbeddedAlert]:
        """CAP alerts anywhere below an entry, including inside EDXL-DE distributions."""
        return find_alerts(raw, path, nested=self._nested)

    def _nested(self, ns: str, name: str, value: Any, path: str) -> list[EmbeddedAlert] | None:
        if name == "EDXLDistribution" and ns == EDXL_DE_NS:
            distribution, findings = read_distribution_element(value, path=path)
            self.f.extend(findings)
            self._nested_links.extend(distribution.cap_links)
            return list(distribution.embedded)
        return None

    def escaped_alert(self, text: str, path: str) -> EmbeddedAlert | None:
        """An alert serialized as escaped text (``&lt;alert ...``), reported as a warning."""
        if not looks_like_cap_markup(text):
            return None
        code = f"{self.prefix}-content-escaped-cap"
        alert, problem = alert_from_document(text, path)
        if alert is None:
            self.f.warning(code, path, f"the text looks like an escaped CAP alert but {problem}")
            return None
        self.f.warning(code, path, "the CAP alert is embedded as escaped text rather than as "
                       "XML", "embed the <alert> element itself"
                       + (' with type="application/cap+xml"' if self.prefix == "atom" else ""))
        return alert

    def choose_links(self, tiers: list[list[_Link]]) -> list[str]:
        """The first non-empty tier of http(s) candidates, in document order, deduplicated."""
        for tier in tiers:
            usable: list[str] = []
            for link in tier:
                if _is_http(link.href):
                    usable.append(link.href)
                else:
                    self.f.warning(f"{self.prefix}-link-not-http", link.path,
                                   f"{link.href!r} is not an absolute http(s) URL; capcast will "
                                   "not fetch it", "link to the CAP document with an https URL")
            if usable:
                return list(dict.fromkeys(usable))
        return []


class _AtomReader(_Reader):
    """Walks an Atom ``<feed>``."""

    prefix = "atom"
    ns = ATOM_NS

    def feed(self, raw: Any) -> Feed:
        """Read the feed element, its metadata and entries."""
        path = "feed"
        groups = self.group(raw, path, FEED_CHILDREN, FEED_SINGLE, misplaced=True)
        base = _base(None, raw)
        feed_id = self.atom_id(groups, path, "atom-id-required")
        title = self.text_construct(groups, "title", path, "atom-title-required")
        updated = self.date(groups, "updated", path, "atom-updated-required")
        for name in ("subtitle", "rights"):
            self.text_construct(groups, name, path)
        self.common(groups, path, base)

        entries: list[FeedEntry] = []
        authored: list[tuple[str, bool]] = []
        seen: dict[str, tuple[str, datetime | None]] = {}
        for here, value in groups.get("entry", []):
            entry = self.entry(value, here, base)
            entries.append(entry)
            authored.append((here, _has_author(value)))
            if entry.id is None:
                continue
            if entry.id in seen:
                first, first_updated = seen[entry.id]
                if first_updated == entry.updated or entry.updated is None:
                    self.f.error("atom-entry-duplicate-id", f"{here}/id",
                                 f"entry id {entry.id!r} repeats {first} with the same "
                                 "<updated>; entries must have unique ids",
                                 "give each alert its own id")
                else:
                    self.f.warning("atom-entry-id-repeated", f"{here}/id",
                                   f"entry id {entry.id!r} repeats {first}; both are versions "
                                   "of one entry, only the latest is current")
            else:
                seen[entry.id] = (here, entry.updated)
        if not groups.get("author"):
            for here, has_author in authored:
                if not has_author:
                    self.f.warning("atom-author-missing", f"{here}/author",
                                   "neither the entry, its source nor the feed names an "
                                   "<author> (RFC 4287 4.1.1)",
                                   "add <author><name>...</name></author> to the feed")
        return Feed(kind="atom", id=feed_id, title=title, updated=updated,
                    entries=tuple(entries))

    def common(self, groups: Groups, path: str, base: str | None) -> list[_Link]:
        """Check persons, categories and links shared by feeds and entries; return the links."""
        for name in ("author", "contributor"):
            for here, value in groups.get(name, []):
                person = self.group(value, here, PERSON_CHILDREN, frozenset(PERSON_CHILDREN))
                if not self.text(person, "name", here):
                    self.f.error("atom-person-name-required", f"{here}/name",
                                 f"<{name}> must have a non-empty <name>")
        for here, value in groups.get("category", []):
            if not attr(value, "term"):
                self.f.error("atom-category-term-required", here,
                             "<category> must have a term attribute")
        links: list[_Link] = []
        alternates: dict[tuple[str | None, str | None], str] = {}
        for here, value in groups.get("link", []):
            href = attr(value, "href")
            if not href:
                self.f.error("atom-link-href-required", here, "<link> must have an href")
                continue
            rel = attr(value, "rel") or "alternate"
            rel = rel.removeprefix(_IANA_REL)
            mime = media_type(attr(value, "type"))
            if rel == "alternate":
                key = (mime, (attr(value, "hreflang") or "").lower() or None)
                if key in alternates:
                    self.f.error("atom-duplicate-alternate-link", here,
                                 f"a second rel=\"alternate\" link with type {key[0]!r} and "
                                 f"hreflang {key[1]!r} (first at {alternates[key]})",
                                 "give the links different types or hreflangs, or use "
                                 "rel=\"related\"")
                else:
                    alternates[key] = here
            links.append(_Link(_resolve(_base(base, value), href), rel, mime, here))
        return links

    def atom_id(self, groups: Groups, path: str, code: str) -> str | None:
        """The id of a feed or entry; warn when it is not an absolute IRI."""
        value = self.text(groups, "id", path, code)
        if value is not None and not _IRI.fullmatch(value):
            self.f.warning("atom-id-not-iri", f"{path}/id",
                           f"id {value!r} is not an absolute IRI (RFC 4287 4.2.6)",
                           "use a URL, a tag: URI or a urn:uuid:")
        return value

    def text_construct(self, groups: Groups, name: str, path: str,
                       required_code: str | None = None) -> str | None:
        """Check a text construct (title, subtitle, summary, rights) and return its text."""
        items = groups.get(name)
        if not items:
            if required_code:
                self.f.error(required_code, f"{path}/{name}",
                             f"<{_local(path)}> must have a non-empty <{name}>")
            return None
        here, value = items[0]
        kind = attr(value, "type") or "text"
        if kind not in ("text", "html", "xhtml"):
            self.f.error("atom-text-type-invalid", here,
                         f"<{name} type=\"{kind}\"> is not allowed; text constructs are text, "
                         "html or xhtml")
            text = all_text(value)
        elif kind == "xhtml":
            text = self.xhtml(value, here)
        else:
            if has_elements(value):
                self.f.error("atom-text-has-elements", here,
                             f"<{name} type=\"{kind}\"> contains child elements",
                             "escape the markup, or use type=\"xhtml\" with an xhtml:div")
            text = text_of(value)
        if not text and required_code:
            self.f.error(required_code, here, f"<{name}> is empty")
        return text or None

    def xhtml(self, value: Any, path: str) -> str:
        """Check that type="xhtml" content is a single xhtml:div; return its text."""
        children = list(iter_children(value))
        if len(children) != 1 or children[0][:2] != (XHTML_NS, "div") or text_of(value):
            self.f.error("atom-xhtml-div-required", path,
                         "type=\"xhtml\" content must be exactly one "
                         f"<div xmlns=\"{XHTML_NS}\">")
        return all_text(value)

    def date(self, groups: Groups, name: str, path: str,
             required_code: str | None = None) -> datetime | None:
        """Parse an Atom date construct, reporting anything not RFC 3339."""
        text = self.text(groups, name, path, required_code)
        if text is None:
            return None
        try:
            return parse_rfc3339(text)
        except ValueError:
            self.f.error("atom-invalid-date", f"{path}/{name}",
                         f"<{name}> {text!r} is not an RFC 3339 date-time",
                         "write it like 2024-07-13T11:47:04-06:00 or 2024-07-13T17:47:04Z "
                         "(uppercase T and Z)")
            return parse_iso_loose(text)

    def entry(self, raw: Any, path: str, base: str | None) -> FeedEntry:
        """Read one entry: metadata, CAP links, embedded alerts."""
        groups = self.group(raw, path, ENTRY_CHILDREN, ENTRY_SINGLE)
        base = _base(base, raw)
        entry_id = self.atom_id(groups, path, "atom-entry-id-required")
        title = self.text_construct(groups, "title", path, "atom-entry-title-required")
        updated = self.date(groups, "updated", path, "atom-entry-updated-required")
        self.date(groups, "published", path)
        summary = self.text_construct(groups, "summary", path)
        self.text_construct(groups, "rights", path)
        links = self.common(groups, path, base)

        self._nested_links = []
        embedded = self.embedded_in(raw, path)
        content = groups.get("content")
        if content:
            here, value = content[0]
            src, escaped = self.content(value, here, base, has_summary="summary" in groups)
            if src is not None:
                links.append(src)
            if escaped is not None:
                embedded.append(escaped)
        elif not any(link.rel == "alternate" for link in links):
            self.f.warning("atom-entry-no-alternate-link", f"{path}/link",
                           "an entry without <content> must have a rel=\"alternate\" link "
                           "(RFC 4287 4.1.2)", "add <link href=\"...\"/> to the entry")

        nested = [_Link(href, "alternate", "application/cap+xml", path)
                  for href in self._nested_links]
        cap_typed = [link for link in links
                     if link.type in CAP_MEDIA_TYPES and link.rel not in _NOT_CAP_RELS]
        guessed = [link for link in links
                   if link.rel in _FETCH_RELS and _maybe_cap_type(link.type, link.href)]
        if not cap_typed and len({link.href for link in guessed}) > 1:
            self.f.warning("atom-entry-ambiguous-cap-link", f"{path}/link",
                           f"{len(guessed)} links could each be the CAP document",
                           'mark the CAP link type="application/cap+xml"')
        cap_links = self.choose_links([nested + cap_typed, guessed])
        if not cap_links and not embedded:
            self.f.error("atom-entry-missing-cap-link", f"{path}/link",
                         "the entry neither embeds a CAP alert nor links to a CAP document",
                         '<link rel="alternate" type="application/cap+xml" href="https://..."/>'
                         ' or embed the <alert> in <content type="application/cap+xml">')
        return FeedEntry(id=entry_id, title=title, updated=updated, cap_links=tuple(cap_links),
                         summary=summary, embedded=tuple(embedded))

    def content(self, value: Any, path: str, base: str | None, *,
                has_summary: bool) -> tuple[_Link | None, EmbeddedAlert | None]:
        """Check <content>; return its src as a link and an escaped alert, if any."""
        kind = attr(value, "type")
        mime = media_type(kind)
        src = attr(value, "src")
        if src is not None:
            if text_of(value) or has_elements(value):
                self.f.error("atom-content-src-not-empty", path,
                             "<content src=...> must be empty; the content is at the src URL")
            if not has_summary:
                self.f.error("atom-entry-summary-required", path.rsplit("/", 1)[0] + "/summary",
                             "an entry whose <content> has a src must have a <summary>")
            return _Link(_resolve(_base(base, value), src), "alternate", mime, path), None
        if kind is None or kind in ("text", "html"):
            if has_elements(value):
                self.f.error("atom-text-has-elements", path,
                             f"<content type=\"{kind or 'text'}\"> contains child elements"
                             + ("" if kind else " (no type means text)"),
                             'label embedded CAP type="application/cap+xml"')
        elif kind == "xhtml":
            self.xhtml(value, path)
        elif not _MIME.fullmatch(kind.split(";", 1)[0].strip()):
            self.f.error("atom-content-type-invalid", path,
                         f"<content type=\"{kind}\"> is neither text, html, xhtml nor a MIME "
                         "type", 'use type="application/cap+xml" for CAP')
        elif (mime is not None and not mime.startswith("text/")
              and not mime.endswith(("/xml", "+xml")) and not has_summary):
            self.f.error("atom-entry-summary-required", path.rsplit("/", 1)[0] + "/summary",
                         f"an entry whose content is base64 ({kind}) must have a <summary>")
        text = text_of(value)
        escaped = None
        if text and not has_elements(value):
            escaped = self.escaped_alert(text, path)
        return None, escaped


class _RssReader(_Reader):
    """Walks an RSS 2.0 ``<rss>``."""

    prefix = "rss"
    ns = ""

    def rss(self, raw: Any) -> Feed:
        """Read the rss element and its channel."""
        path = "rss"
        version = attr(raw, "version")
        if version is None:
            self.f.error("rss-version-missing", path, "<rss> has no version attribute",
                         '<rss version="2.0">')
        elif version != "2.0":
            self.f.warning("rss-version-unsupported", path,
                           f"RSS version {version!r} is read with the RSS 2.0 rules")
        groups = self.group(raw, path, RSS_CHILDREN, frozenset(RSS_CHILDREN), misplaced=True)
        channels = groups.get("channel")
        if not channels:
            self.f.error("rss-channel-required", f"{path}/channel", "<rss> has no <channel>")
            return Feed(kind="rss", id=None, title=None, updated=None)
        return self.channel(channels[0][1], channels[0][0])

    def channel(self, raw: Any, path: str) -> Feed:
        """Read the channel's metadata and items."""
        groups = self.group(raw, path, CHANNEL_CHILDREN, CHANNEL_SINGLE, misplaced=True)
        title = self.text(groups, "title", path, "rss-channel-title-required")
        link = self.text(groups, "link", path, "rss-channel-link-required")
        if "description" not in groups:
            self.f.error("rss-channel-description-required", f"{path}/description",
                         "<channel> must have a <description>")
        published = self.date(groups, "pubDate", path)
        built = self.date(groups, "lastBuildDate", path)
        if "pubDate" not in groups:
            self.f.warning("rss-pubdate-recommended", f"{path}/pubDate",
                           "the channel has no <pubDate>")
        entries = tuple(self.item(value, here) for here, value in groups.get("item", []))
        return Feed(kind="rss", id=link, title=title, updated=built or published,
                    entries=entries)

    def date(self, groups: Groups, name: str, path: str) -> datetime | None:
        """Parse an RFC 822 date, reporting anything else (a lenient value is kept)."""
        text = self.text(groups, name, path)
        if text is None:
            return None
        try:
            return parse_rfc822(text)
        except ValueError as exc:
            self.f.error("rss-invalid-date", f"{path}/{name}", f"<{name}>: {exc}",
                         "write it like 'Fri, 04 Feb 2011 20:32:08 GMT'")
            return _lenient_rfc822(text)

    def item(self, raw: Any, path: str) -> FeedEntry:
        """Read one item: metadata, CAP links, embedded alerts."""
        groups = self.group(raw, path, ITEM_CHILDREN, ITEM_SINGLE)
        title = self.text(groups, "title", path)
        description = self.text(groups, "description", path)
        if title is None and description is None:
            self.f.error("rss-item-title-or-description-required", path,
                         "an item must have a non-empty <title> or <description>")
        updated = self.date(groups, "pubDate", path)

        cap_typed: list[_Link] = []
        guessed: list[_Link] = []
        link = self.text(groups, "link", path)
        if link is not None:
            guessed.append(_Link(link, "alternate", None, f"{path}/link"))
        for here, value in groups.get("enclosure", []):
            url, length, kind = attr(value, "url"), attr(value, "length"), attr(value, "type")
            missing = [n for n, v in (("url", url), ("length", length), ("type", kind)) if not v]
            if missing:
                self.f.error("rss-enclosure-attribute-required", here,
                             f"<enclosure> lacks {', '.join(missing)}",
                             '<enclosure url="..." length="..." type="application/cap+xml"/>')
            if url:
                mime = media_type(kind)
                candidate = _Link(url, "enclosure", mime, here)
                if mime in CAP_MEDIA_TYPES:
                    cap_typed.append(candidate)
                elif _maybe_cap_type(mime, url) and mime is not None:
                    guessed.append(candidate)
        for ns, name, index, value in iter_children(raw):
            href = attr(value, "href")
            if ns == ATOM_NS and name == "link" and href:
                rel = (attr(value, "rel") or "alternate").removeprefix(_IANA_REL)
                mime = media_type(attr(value, "type"))
                candidate = _Link(href, rel, mime, child_path(path, "atom:link", index))
                if mime in CAP_MEDIA_TYPES and rel not in _NOT_CAP_RELS:
                    cap_typed.append(candidate)
                elif rel in _FETCH_RELS and _maybe_cap_type(mime, href):
                    guessed.append(candidate)

        guid = self.text(groups, "guid", path)
        permalink: list[_Link] = []
        if guid is None:
            self.f.warning("rss-item-guid-recommended", f"{path}/guid", "the item has no <guid>")
        else:
            is_permalink = (attr(groups["guid"][0][1], "isPermaLink") or "true").lower() != "false"
            if is_permalink and _is_http(guid):
                permalink.append(_Link(guid, "alternate", None, f"{path}/guid"))
            elif is_permalink:
                self.f.warning("rss-guid-not-permalink", f"{path}/guid",
                               f"guid {guid!r} is not a URL, yet isPermaLink defaults to true",
                               'add isPermaLink="false"')

        self._nested_links = []
        embedded = self.embedded_in(raw, path)
        if description is not None and not has_elements(groups["description"][0][1]):
            escaped = self.escaped_alert(description, f"{path}/description")
            if escaped is not None:
                embedded.append(escaped)
        nested = [_Link(href, "alternate", "application/cap+xml", path)
                  for href in self._nested_links]
        cap_links = self.choose_links([nested + cap_typed, guessed, permalink])
        if not cap_links and not embedded:
            self.f.error("rss-item-missing-cap-link", f"{path}/link",
                         "the item neither embeds a CAP alert nor links to a CAP document",
                         "put the CAP document's URL in <link>")
        return FeedEntry(id=guid, title=title, updated=updated, cap_links=tuple(cap_links),
                         summary=description, embedded=tuple(embedded))


def _base(base: str | None, raw: Any) -> str | None:
    """Apply an element's xml:base to the inherited base URI."""
    own = raw.get(f"@{XML_NS}:base") if isinstance(raw, dict) else None
    if not isinstance(own, str) or not own.strip():
        return base
    return urljoin(base, own.strip()) if base else own.strip()


def _resolve(base: str | None, href: str) -> str:
    return urljoin(base, href) if base else href


def _has_author(entry: Any) -> bool:
    if isinstance(entry, dict) and entry.get(f"{ATOM_NS}:author") is not None:
        return True
    source = entry.get(f"{ATOM_NS}:source") if isinstance(entry, dict) else None
    return isinstance(source, dict) and source.get(f"{ATOM_NS}:author") is not None


def read_feed(tree: XmlTree) -> tuple[Feed, list[Finding]]:
    """Read a parsed Atom or RSS 2.0 feed: the feed and the feed rules it breaks.

    Raises :class:`~cap.errors.NotCap` when the root is neither an Atom
    ``<feed>`` nor an ``<rss>``. Like :func:`cap.parse.read_alert`, the
    findings cover the feed only: not the document-level warnings in
    ``tree.warnings`` and not the embedded alerts (read each
    :class:`EmbeddedAlert` with :func:`cap.parse.read_alert`). EDXL-DE
    distributions inside entries are checked too (``edxl-*`` codes).
    """
    findings = Findings()
    if tree.root_name == "feed" and tree.root_ns == ATOM_NS:
        feed = _AtomReader(findings).feed(tree.root)
    elif tree.root_name == "rss" and tree.root_ns == "":
        feed = _RssReader(findings).rss(tree.root)
    else:
        qualified = f"{{{tree.root_ns}}}{tree.root_name}" if tree.root_ns else tree.root_name
        fix = (f"use the Atom namespace xmlns=\"{ATOM_NS}\"" if tree.root_name == "feed"
               else None)
        raise NotCap("not-cap-feed",
                     f"the root element is {qualified}, not an Atom <feed> or an RSS <rss>",
                     fix=fix)
    return feed, findings.items


def parse_feed(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Feed:
    """Parse Atom or RSS bytes into a :class:`Feed` (findings are dropped).

    Raises :class:`~cap.errors.XmlRefused` for unsafe or malformed XML and
    :class:`~cap.errors.NotCap` when the document is not a feed. Use
    :func:`read_feed` to see the findings.
    """
    feed, _ = read_feed(parse_xml(data, max_bytes=max_bytes))
    return feed
