"""parse(serialize(alert)) == alert, over generated alerts and the real corpus."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cap.errors import CapError
from cap.model import (
    Alert,
    Area,
    Category,
    Certainty,
    Circle,
    Info,
    MsgType,
    Polygon,
    Reference,
    Resource,
    ResponseType,
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from cap.parse import format_datetime, parse_alert
from cap.serialize import alert_from_json, alert_to_json, format_number, serialize

# Text that survives XML: no control characters or surrogates, and no
# surrounding whitespace (CAP readers strip it).
_chars = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                       blacklist_characters="\ufffe\uffff")
text = st.text(_chars, min_size=1, max_size=30).map(str.strip).filter(bool)
token = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z"),
                              blacklist_characters=",<&\"\ufffe\uffff"),
                min_size=1, max_size=20)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)).map(
        lambda d: d.replace(microsecond=0)),
    offsets)
lat = st.floats(-90, 90, allow_nan=False)
lon = st.floats(-180, 180, allow_nan=False)
feet = st.floats(-1e6, 1e6, allow_nan=False)


def _ring(points: list[tuple[float, float]]) -> Polygon:
    return Polygon(points=(*points, points[0]))


polygons = st.lists(st.tuples(lat, lon), min_size=3, max_size=8).map(_ring)
circles = st.builds(Circle, lat=lat, lon=lon, radius_km=st.floats(0, 20000, allow_nan=False))
pairs = st.builds(ValuePair, value_name=text, value=st.one_of(st.just(""), text))


@st.composite
def areas(draw: st.DrawFn) -> Area:
    altitude = draw(st.none() | feet)
    ceiling = None
    if altitude is not None and draw(st.booleans()):
        ceiling = altitude + draw(st.floats(0, 1e5, allow_nan=False))
    return Area(area_desc=draw(text), polygons=tuple(draw(st.lists(polygons, max_size=2))),
                circles=tuple(draw(st.lists(circles, max_size=2))),
                geocodes=tuple(draw(st.lists(pairs, max_size=3))),
                altitude=altitude, ceiling=ceiling)


resources = st.builds(
    Resource, resource_desc=text,
    mime_type=st.sampled_from(["image/png", "application/pdf", "audio/mpeg",
                               "text/html; charset=utf-8"]),
    size=st.none() | st.integers(0, 2**40), uri=st.none() | st.just("https://example.org/r"),
    deref_uri=st.none() | st.just("aGVsbG8="),
    digest=st.none() | st.just("a9993e364706816aba3e25717850c26c9cd0d89d"))


@st.composite
def infos(draw: st.DrawFn) -> Info:
    effective = draw(st.none() | moments)
    onset = draw(st.none() | moments)
    expires = draw(st.none() | moments)
    if expires is not None:
        floor = max([t for t in (effective, onset) if t is not None], default=None)
        if floor is not None and expires <= floor:
            expires = floor + timedelta(hours=1)
    optional = st.none() | text
    return Info(
        language=draw(st.sampled_from(["en-US", "fr-CA", "es-419", "de", "zh-TW"])),
        categories=tuple(draw(st.lists(st.sampled_from(Category), min_size=1, max_size=3))),
        event=draw(text), response_types=tuple(draw(st.lists(st.sampled_from(ResponseType),
                                                             max_size=2))),
        urgency=draw(st.sampled_from(Urgency)), severity=draw(st.sampled_from(Severity)),
        certainty=draw(st.sampled_from(Certainty)), audience=draw(optional),
        event_codes=tuple(draw(st.lists(pairs, max_size=2))), effective=effective, onset=onset,
        expires=expires, sender_name=draw(optional), headline=draw(optional),
        description=draw(optional), instruction=draw(optional),
        web=draw(st.none() | st.just("https://example.org/alerts/1")), contact=draw(optional),
        parameters=tuple(draw(st.lists(pairs, max_size=3))),
        resources=tuple(draw(st.lists(resources, max_size=2))),
        areas=tuple(draw(st.lists(areas(), max_size=2))))


@st.composite
def alerts(draw: st.DrawFn) -> Alert:
    scope = draw(st.sampled_from(Scope))
    msg_type = draw(st.sampled_from(MsgType))
    sent = draw(moments)
    identifier = draw(token)
    sender = draw(token)
    references: tuple[Reference, ...] = ()
    if msg_type in (MsgType.UPDATE, MsgType.CANCEL) or draw(st.booleans()):
        references = tuple(Reference(sender=draw(token), identifier=f"{identifier}-earlier{i}",
                                     sent=sent - timedelta(minutes=i + 1))
                           for i in range(draw(st.integers(1, 3))))
    addresses = tuple(draw(st.lists(text, min_size=scope is Scope.PRIVATE, max_size=3)))
    if scope is Scope.PUBLIC:
        addresses = ()
    return Alert(
        identifier=identifier, sender=sender, sent=sent, status=draw(st.sampled_from(Status)),
        msg_type=msg_type, source=draw(st.none() | text), scope=scope,
        restriction=draw(text) if scope is Scope.RESTRICTED else draw(st.none() | text),
        addresses=addresses,
        codes=tuple(draw(st.lists(text, max_size=2))), note=draw(st.none() | text),
        references=references, incidents=tuple(draw(st.lists(token, max_size=2))),
        infos=tuple(draw(st.lists(infos(), min_size=1, max_size=2))))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alerts())
def test_parse_serialize_round_trip(alert: Alert) -> None:
    assert parse_alert(serialize(alert)) == alert


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alerts())
def test_json_round_trip(alert: Alert) -> None:
    assert alert_from_json(json.loads(json.dumps(alert_to_json(alert)))) == alert


@given(st.floats(-1e300, 1e300, allow_nan=False))
def test_numbers_are_written_exactly_without_exponents(value: float) -> None:
    written = format_number(value)
    assert "e" not in written.lower()
    assert float(written) == value


def test_utc_is_written_as_minus_zero() -> None:
    assert format_datetime(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == \
        "2024-01-02T03:04:05-00:00"
    assert b"<sent>2003-06-17T14:57:00-07:00</sent>" in serialize(parse_alert(
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier>'
        b"<sender>b</sender><sent>2003-06-17T14:57:00-07:00</sent><status>Actual</status>"
        b"<msgType>Alert</msgType><scope>Public</scope></alert>"))


def test_naive_datetimes_are_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Reference(sender="a", identifier="b", sent=datetime(2024, 1, 1))


def _corpus_alerts(corpus: Path) -> list[tuple[str, Alert]]:
    out = []
    for path in sorted(corpus.rglob("*")):
        if not path.is_file() or path.suffix in (".tsv", ".txt", ".json", ".geojson"):
            continue
        try:
            out.append((str(path.relative_to(corpus)),
                        parse_alert(path.read_bytes(), max_bytes=4 << 20)))
        except CapError:
            continue
    return out


def test_every_readable_corpus_alert_round_trips(corpus: Path) -> None:
    readable = _corpus_alerts(corpus)
    assert len(readable) > 60
    for name, alert in readable:
        unsigned = dataclasses.replace(alert, signed=False)
        assert parse_alert(serialize(unsigned), max_bytes=4 << 20) == unsigned, name
        assert alert_from_json(alert_to_json(unsigned)) == unsigned, name
