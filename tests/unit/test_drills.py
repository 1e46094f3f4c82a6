"""Drill requests and the CAP messages drills and cancels are made of (no I/O)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cap.model import Area, MsgType, Status
from cap.serialize import serialize
from cap.validate import validate
from dispatcher.config import AuthoritySettings
from dispatcher.drills import (
    DRILL_EVENT,
    DrillRequest,
    DrillRequestError,
    build_cancel_alert,
    build_drill_alert,
    channel_event_codes,
)
from gateways.channels import TEST_CHANNELS, AuthorityChannels, is_test_channel

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SENT = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def star(lon: float, lat: float, radius: float, radii: list[float],
         jitter: list[float]) -> list[list[float]]:
    """A closed star-shaped ring around (lon, lat): always a simple polygon."""
    n = len(radii)
    ring = []
    for i, (r, j) in enumerate(zip(radii, jitter, strict=True)):
        angle = 2 * math.pi * (i + 0.4 * j) / n
        ring.append([lon + radius * r * math.cos(angle), lat + radius * r * math.sin(angle)])
    ring.append(ring[0])
    return ring


@st.composite
def polygons(draw: st.DrawFn) -> list[list[list[float]]]:
    lon = draw(st.floats(-170, 170))
    lat = draw(st.floats(-80, 80))
    radius = draw(st.floats(0.01, 2.0))
    n = draw(st.integers(6, 14))
    radii = draw(st.lists(st.floats(0.6, 1.0), min_size=n, max_size=n))
    jitter = draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n))
    rings = [star(lon, lat, radius, radii, jitter)]
    if draw(st.booleans()):
        # A hole well inside: CAP cannot carry it, so the drill area is cut around it.
        rings.append(star(lon, lat, radius * 0.3, [1.0] * 6, [0.0] * 6)[::-1])
    return rings


@st.composite
def geometries(draw: st.DrawFn) -> dict[str, Any]:
    parts = draw(st.lists(polygons(), min_size=1, max_size=3))
    if len(parts) == 1 and draw(st.booleans()):
        return {"type": "Polygon", "coordinates": parts[0]}
    return {"type": "MultiPolygon", "coordinates": parts}


# Characters XML carries (no controls, surrogates or non-characters).
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1,
                max_size=400).filter(lambda t: bool(t.strip()))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"text": draw(texts), "area": draw(geometries())}
    if draw(st.booleans()):
        data["headline"] = draw(texts.filter(lambda t: len(t.strip()) <= 160))
    if draw(st.booleans()):
        data["language"] = draw(st.sampled_from(["en", "de", "de-DE", "fr-CA", "sv"]))
    if draw(st.booleans()):
        data["expires_minutes"] = draw(st.integers(1, 1440))
    if draw(st.booleans()):
        data["channel"] = draw(st.sampled_from(sorted(TEST_CHANNELS)))
    if draw(st.booleans()):
        data["wait_seconds"] = draw(st.floats(0, 120))
    return data


def lonlat_union(area: Area) -> shapely.Geometry:
    return shapely.union_all([shapely.Polygon(p.lonlat) for p in area.polygons])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_drill_alert_is_valid_cap_and_always_exercise(data: dict[str, Any]) -> None:
    request = DrillRequest.from_json(data)
    assert request.area is not None
    area = Area(area_desc="Drill area", polygons=request.area)
    alert = build_drill_alert(request, sender="drills@example.gov", sent=SENT, area=area)
    raw = serialize(alert)
    report = validate(raw)
    assert report.valid, report.errors
    [parsed] = report.alerts
    assert parsed.alert is not None
    assert parsed.alert.status is Status.EXERCISE and parsed.alert.status is not Status.ACTUAL
    assert parsed.alert.msg_type is MsgType.ALERT
    assert b"<status>Exercise</status>" in raw and b"Actual" not in raw
    [info] = parsed.alert.infos
    assert info.event == DRILL_EVENT
    assert info.description == data["text"].strip()
    assert info.expires == SENT.replace(microsecond=0) + timedelta(
        minutes=data.get("expires_minutes", 30))
    assert parsed.alert.sent == SENT.replace(microsecond=0)
    # The CAP polygons (lat,lon, closed, no holes) cover exactly the requested area.
    for polygon in info.areas[0].polygons:
        assert polygon.points[0] == polygon.points[-1]
    geojson = data["area"]
    parts = ([geojson["coordinates"]] if geojson["type"] == "Polygon"
             else geojson["coordinates"])
    wanted = shapely.union_all([shapely.Polygon(rings[0], rings[1:]) for rings in parts])
    got = lonlat_union(info.areas[0])
    assert got.symmetric_difference(wanted).area <= 1e-9 * max(wanted.area, 1e-12) + 1e-12


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["area", "preset", "text", "headline", "language",
                                        "operators", "channel", "expires_minutes",
                                        "authority", "wait_seconds", "extra"]),
                       json_values, max_size=6))
def test_from_json_accepts_or_names_the_field(data: dict[str, Any]) -> None:
    try:
        request = DrillRequest.from_json(data)
    except DrillRequestError as exc:
        assert exc.field in set(data) | {"area", "text"}
        assert str(exc).startswith(f"{exc.field}: ")
        return
    assert (request.area is None) != (request.preset is None)
    assert request.text.strip()
    assert "extra" not in data


@given(st.integers(0, 0xFFFF))
def test_a_drill_channel_is_never_a_public_one(channel: int) -> None:
    data = {"text": "x", "preset": "jurisdiction", "channel": channel}
    public = 4352 <= channel <= 4399 and not is_test_channel(channel)
    if public:
        with pytest.raises(DrillRequestError) as caught:
            DrillRequest.from_json(data)
        assert caught.value.field == "channel"
    else:
        assert DrillRequest.from_json(data).channel == channel


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"text": "x"}, "area", "required"),
    ({"preset": "jurisdiction"}, "text", "required"),
    ({"text": "x", "preset": "jurisdiction", "area": {"type": "Polygon"}}, "preset", "both"),
    ({"text": "x", "preset": "jurisdiction", "colour": "red"}, "colour", "unknown"),
    ({"text": "x", "preset": "NUTS3"}, "preset", "VALUENAME=VALUE"),
    ({"text": "x", "preset": "jurisdiction", "expires_minutes": 1441}, "expires_minutes",
     "1..1440"),
    ({"text": "x", "preset": "jurisdiction", "wait_seconds": 121}, "wait_seconds", "0..120"),
    ({"text": "x", "preset": "jurisdiction", "language": "english please"}, "language",
     "language tag"),
    ({"text": "x", "preset": "jurisdiction", "operators": []}, "operators", "non-empty"),
    ({"text": "x", "preset": "jurisdiction", "operators": ["A", "A"]}, "operators", "twice"),
    ({"text": "a\x00b", "preset": "jurisdiction"}, "text", "U+0000"),
    ({"text": "x", "preset": "jurisdiction", "channel": 4370}, "channel", "public"),
    ({"text": "x", "area": {"type": "Feature", "geometry": {}}}, "area", "Feature"),
    ({"text": "x", "area": {"type": "Polygon", "coordinates": [[[50.1, 7.0], [50.2, 7.0],
                                                                 [50.2, 95.0], [50.1, 7.0]]]}},
     "area", "longitude first"),
    ({"text": "x", "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}},
     "area", "at least 4"),
])
def test_invalid_requests_name_their_field(data: dict[str, Any], field: str,
                                           words: str) -> None:
    with pytest.raises(DrillRequestError) as caught:
        DrillRequest.from_json(data)
    assert caught.value.field == field
    assert words in caught.value.message


def test_geocode_preset_is_parsed() -> None:
    request = DrillRequest.from_json({"text": "x", "preset": "NUTS3=DEA11"})
    assert request.geocode == ("NUTS3", "DEA11")
    assert DrillRequest.from_json({"text": "x", "preset": "jurisdiction"}).geocode is None


def drill_base(authority: AuthoritySettings, **extra: Any) -> tuple[DrillRequest, Any]:
    request = DrillRequest.from_json({"text": "x", "preset": "jurisdiction", **extra})
    base = build_drill_alert(request, sender=authority.sender, sent=SENT,
                             area=Area(area_desc="somewhere"))
    return request, base


@pytest.mark.parametrize(("channel", "code"), [(None, None), (4381, None), (4380, "RMT"),
                                               (4398, "RWT")])
def test_channel_is_selected_through_event_codes(channel: int | None,
                                                 code: str | None) -> None:
    authority = AuthoritySettings(sender="a@example.gov", name="A")
    extra = {"channel": channel} if channel is not None else {}
    request, base = drill_base(authority, **extra)
    codes, chosen = channel_event_codes(request, base, authority)
    assert chosen == (channel or 4381)
    assert [c.value for c in codes] == ([code] if code else [])


def test_channel_nobody_can_select_is_refused() -> None:
    authority = AuthoritySettings(sender="a@example.gov", name="A")
    request, base = drill_base(authority, channel=4355)  # ETWS test: no CAP mapping leads there
    with pytest.raises(DrillRequestError) as caught:
        channel_event_codes(request, base, authority)
    assert caught.value.field == "channel" and "4355" in caught.value.message


def test_authority_own_test_channel_through_its_event_code_mapping() -> None:
    channels = AuthorityChannels(by_event_code={"DRILL50": 50}, test_channels=frozenset({50}))
    authority = AuthoritySettings(sender="a@example.gov", name="A", channels=channels)
    request, base = drill_base(authority, channel=50)
    codes, chosen = channel_event_codes(request, base, authority)
    assert chosen == 50 and [c.value for c in codes] == ["DRILL50"]
    other = AuthoritySettings(sender="a@example.gov", name="A")
    with pytest.raises(DrillRequestError, match="not a test channel"):
        channel_event_codes(request, base, other)


def test_ipaws_authority_gets_one_same_code() -> None:
    authority = AuthoritySettings(sender="a@example.gov", name="A", profile="ipaws")
    request, base = drill_base(authority, channel=4398)
    codes, chosen = channel_event_codes(request, base, authority)
    assert chosen == 4398 and [(c.value_name, c.value) for c in codes] == [("SAME", "RWT")]


def test_cancel_alert_references_the_original() -> None:
    raw = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
    [report] = validate(raw).alerts
    original = report.alert
    assert original is not None
    sent = datetime(2015, 7, 22, 10, 0, 30, 999, tzinfo=UTC)
    cancel = build_cancel_alert(original, sent=sent, note="sent in error")
    checked = validate(serialize(cancel))
    assert checked.valid, checked.errors
    [parsed] = checked.alerts
    assert parsed.alert is not None
    assert parsed.alert.msg_type is MsgType.CANCEL
    assert parsed.alert.status is original.status and parsed.alert.sender == original.sender
    assert parsed.alert.identifier != original.identifier
    assert parsed.alert.sent == sent.replace(microsecond=0)
    [ref] = parsed.alert.references
    assert (ref.sender, ref.identifier, ref.sent) == original.key
    assert [i.event for i in parsed.alert.infos] == [i.event for i in original.infos]
    assert all(i.description == "sent in error" for i in parsed.alert.infos)
