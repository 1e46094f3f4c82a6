"""Ingest: from the bytes of a CAP document to an accepted alert with its jobs (or a refusal).

:class:`Ingest` runs the steps of issue 5 in order, each timed:

1. the raw bytes are stored first (:meth:`Store.insert_raw_alert`), whatever follows;
2. validation with the sender's CAP profile (``oasis`` for an unknown sender);
3. authorization: the token's authority must be the alert's sender, the
   status must be allowed, the signature present when required, and the area
   inside the jurisdiction (refused, or clipped to it with a warning flag);
4. idempotency on (sender, identifier, sent) through :meth:`Store.record_validation`:
   a repeat answers with the first alert's id, the same key with other content is a conflict;
5. the plan (:func:`dispatcher.planner.plan`, with the history of the referenced
   alerts for an Update or Cancel) written with the alert's acceptance in one
   transaction (:meth:`Store.accept_alert_with_jobs`, the outbox).

The result (:class:`IngestResult`) carries the HTTP status the API answers with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from cap.findings import Finding
from cap.model import Alert, Area, MsgType, Polygon, Status
from cap.signature import SignatureStatus, TrustStore
from cap.validate import validate
from cap.xml import DEFAULT_MAX_BYTES
from dispatcher.planner import (
    AlertHistory,
    OperatorPlanInput,
    Plan,
    PlanError,
    PlannedJob,
    PlanOptions,
    PriorAlert,
    TargetingPolicy,
    plan,
)
from dispatcher.store import (
    AcceptResult,
    AlertReference,
    AlertState,
    JobKind,
    NewJob,
    Outcome,
    Refusal,
    Store,
)
from gateways.channels import SerialNumber
from geo.areas import alert_geometry
from geo.geocodes import GeocodeRegistry

__all__ = ["AuthorityPolicy", "Ingest", "IngestOutcome", "IngestResult", "JurisdictionPolicy"]

#: Degrees of slack when checking that an area lies inside a jurisdiction (about 10 m):
#: authorities draw areas along the same borders with other simplifications.
JURISDICTION_TOLERANCE_DEG = 1e-4

logger = logging.getLogger(__name__)


class JurisdictionPolicy(Enum):
    """What to do with an alert whose area leaves the authority's jurisdiction."""

    REJECT = "reject"
    CLIP = "clip"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorityPolicy:
    """What one alerting authority (a CAP ``sender``) may publish."""

    sender: str
    #: CAP profile its alerts are validated with (``oasis``, ``ipaws``, ``cap-cp``, ``cap-au``).
    profile: str = "oasis"
    allowed_statuses: frozenset[Status] = frozenset({Status.ACTUAL})
    #: Lon/lat (EPSG:4326) shapely geometry; None: anywhere.
    jurisdiction: BaseGeometry | None = None
    on_outside: JurisdictionPolicy = JurisdictionPolicy.REJECT
    signature_required: bool = False
    trust_store: TrustStore | None = None


class IngestOutcome(Enum):
    """What became of a submitted document."""

    ACCEPTED = "accepted"
    REPEAT = "repeat"
    CONFLICT = "conflict"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """The answer to one submission (what the API turns into its response)."""

    outcome: IngestOutcome
    http_status: int
    #: The alert to answer with (the first alert's id for a repeat); every
    #: submission has a stored row, refused ones included (``stored_id``).
    alert_id: int
    stored_id: int
    jobs: int = 0
    refusal: Refusal | None = None
    #: Validation findings as ``{"code", "path", "message", "severity"}``.
    findings: tuple[Mapping[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    #: Milliseconds per step: store_raw, validate, authorize, idempotency, plan, commit.
    timings_ms: Mapping[str, float] = field(default_factory=dict)


def _finding(f: Finding) -> dict[str, str]:
    return {"code": f.code, "path": f.path, "message": f.message,
            "severity": "error" if f.is_error else "warning"}


def _plan_summary(the_plan: Plan) -> dict[str, Any]:
    """The plan as the alert keeps it: each job's cells counted, not listed again.

    The jobs table holds every job's full payload; repeating tens of thousands of
    cell ids in the alert row doubled what the commit writes and each read decodes.
    """
    data = the_plan.to_json()
    for job in data["jobs"]:
        job["cell_count"] = len(job.pop("cells"))
    return data


def _polygons(geometry: BaseGeometry) -> tuple[Polygon, ...]:
    """CAP polygons (lat, lon) of the exteriors of ``geometry``'s polygonal parts."""
    out = []
    for part in shapely.get_parts(geometry):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        out.append(Polygon(points=tuple((lat, lon) for lon, lat in part.exterior.coords)))
    return tuple(out)


class _Refused(Exception):
    """A refusal decided during authorization (internal control flow)."""

    def __init__(self, http_status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.refusal = Refusal(code=code, reason=reason)


class Ingest:
    """The ingest pipeline: store, validate, authorize, deduplicate, plan and commit."""

    def __init__(self, *, store: Store, authorities: Mapping[str, AuthorityPolicy],
                 operators: Sequence[OperatorPlanInput], targeting: TargetingPolicy,
                 clock: Callable[[], datetime], registry: GeocodeRegistry | None = None,
                 options: PlanOptions | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Collaborators are explicit; ``clock`` returns an aware ``datetime``."""
        self._store = store
        self._authorities = dict(authorities)
        self._operators = tuple(operators)
        self._targeting = targeting
        self._clock = clock
        self._registry = registry
        self._options = options
        self._max_bytes = max_bytes
        # Buffered and prepared once: the check runs on every submission.
        self._jurisdictions: dict[str, BaseGeometry] = {}
        for sender, policy in self._authorities.items():
            if policy.jurisdiction is not None:
                area = shapely.buffer(policy.jurisdiction, JURISDICTION_TOLERANCE_DEG)
                shapely.prepare(area)
                self._jurisdictions[sender] = area

    async def submit(self, raw: bytes, *, source: str, token_authority: str | None,
                     only_operators: Collection[str] | None = None) -> IngestResult:
        """Ingest one CAP document sent by ``token_authority`` (the bearer token's sender).

        ``token_authority`` None means no credentials: the alert is refused
        (401). A feed poller passes the authority its feed is configured for.
        ``only_operators`` limits the plan to these operators (a drill for some
        networks); None plans for every operator.
        """
        timings: dict[str, float] = {}

        @contextmanager
        def step(name: str) -> Iterator[None]:
            start = time.perf_counter()
            try:
                yield
            finally:
                timings[name] = round((time.perf_counter() - start) * 1000.0, 3)

        with step("store_raw"):
            stored = await self._store.insert_raw_alert(raw, source=source)

        with step("validate"):
            alert, findings, valid, signed, readable = self._validate(raw)
        finding_rows = tuple(_finding(f) for f in findings)

        refused: _Refused | None = None
        flags: list[str] = []
        # What the planner sees: the alert, or its area clipped to the jurisdiction.
        to_plan = alert
        with step("authorize"):
            # Without an alert there is nothing to authorize: record_validation refuses it.
            if alert is not None:
                try:
                    to_plan = self._authorize(alert, token_authority=token_authority,
                                              valid=valid, signed=signed, flags=flags)
                except _Refused as exc:
                    refused = exc

        with step("idempotency"):
            validation = await self._store.record_validation(
                stored.id, alert=alert, findings=findings,
                refusal=refused.refusal if refused is not None else None, flags=flags)

        def result(outcome: IngestOutcome, status: int, **kwargs: Any) -> IngestResult:
            return IngestResult(outcome=outcome, http_status=status,
                                alert_id=validation.alert_id, stored_id=stored.id,
                                findings=finding_rows, timings_ms=timings,
                                flags=validation.alert.flags, **kwargs)

        if validation.outcome is Outcome.REFUSED:
            if refused is not None:
                return result(IngestOutcome.REFUSED, refused.http_status,
                              refusal=refused.refusal)
            # Unreadable as CAP: a bad request; readable but breaking rules: unprocessable.
            status = 422 if readable else 400
            return result(IngestOutcome.REFUSED, status, refusal=validation.alert.refusal)
        if validation.outcome is Outcome.REPEAT:
            return result(IngestOutcome.REPEAT, 200)
        if validation.outcome is Outcome.CONFLICT:
            return result(IngestOutcome.CONFLICT, 409, refusal=validation.alert.refusal)

        assert alert is not None and to_plan is not None
        outcome = await self._plan_and_commit(validation.alert.id, alert, to_plan,
                                              validation.references, step,
                                              only_operators=only_operators)
        if isinstance(outcome, Refusal):
            return result(IngestOutcome.REFUSED, 500, refusal=outcome)
        return IngestResult(outcome=IngestOutcome.ACCEPTED, http_status=201,
                            alert_id=outcome.alert.id, stored_id=stored.id,
                            jobs=len(outcome.jobs), findings=finding_rows,
                            flags=outcome.alert.flags, timings_ms=timings)

    def replace_operators(self, operators: Sequence[OperatorPlanInput]) -> None:
        """Plan later alerts with these operators (e.g. after a new cell inventory).

        An alert being planned keeps the operators it started with.
        """
        self._operators = tuple(operators)

    def jurisdiction(self, sender: str) -> BaseGeometry | None:
        """The configured jurisdiction of ``sender`` (lon/lat), None when it has none."""
        policy = self._authorities.get(sender)
        return policy.jurisdiction if policy is not None else None

    @property
    def operators(self) -> tuple[OperatorPlanInput, ...]:
        """The operators alerts are planned for now."""
        return self._operators

    async def resume_stalled(self, *, older_than: timedelta = timedelta(seconds=60)) -> list[int]:
        """Plan and accept alerts left "validated" (a crash between validation and commit).

        Such an alert holds its key, so a retry by its sender is answered as
        a repeat: without this sweep it would never be sent. Returns the ids
        of the alerts resumed (accepted or refused with ``plan-failed``).
        """
        # received_at is stamped by the database, so compare with the wall clock, not the
        # (possibly simulated) planning clock.
        stalled = await self._store.list_alerts(states=[AlertState.VALIDATED],
                                                until=datetime.now(UTC) - older_than, limit=100)
        resumed = []
        for stored in stalled:
            raw = await self._store.get_raw(stored.id)
            alert, _, valid, _, _ = self._validate(raw)
            if alert is None or not valid:
                await self._store.refuse_alert(stored.id, Refusal(
                    code="plan-failed", reason="left unplanned and no longer valid on resume"))
                resumed.append(stored.id)
                continue
            flags: list[str] = []
            try:
                to_plan = self._authorize(alert, token_authority=alert.sender, valid=True,
                                          signed=True, flags=flags)
            except _Refused as exc:
                await self._store.refuse_alert(stored.id, exc.refusal)
                resumed.append(stored.id)
                continue
            detail = await self._store.get_alert_detail(stored.id)
            await self._plan_and_commit(stored.id, alert, to_plan, detail.references,
                                        lambda name: contextlib.nullcontext())
            logger.warning("alert %s was left unplanned; planned and accepted it now", stored.id,
                           extra={"action": "resume_stalled", "alert_id": stored.id})
            resumed.append(stored.id)
        return resumed

    async def _plan_and_commit(self, alert_id: int, alert: Alert, to_plan: Alert,
                               references: Sequence[AlertReference],
                               step: Callable[[str], AbstractContextManager[None]], *,
                               only_operators: Collection[str] | None = None
                               ) -> AcceptResult | Refusal:
        with step("plan"):
            referenced = [r.referenced_id for r in references if r.referenced_id is not None]
            history = None
            if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL) and alert.references:
                history = await self._history(referenced)
            now = self._clock()
            # A new chain must not reuse a message code another broadcast has on the air.
            codes = (await self._store.live_message_codes(now)
                     if alert.msg_type is not MsgType.CANCEL else frozenset())
            try:
                operators = (self._operators if only_operators is None else
                             tuple(op for op in self._operators if op.name in only_operators))
                the_plan = plan(to_plan, operators=operators, targeting=self._targeting,
                                now=now, history=history, registry=self._registry,
                                options=self._options, codes_in_use=codes)
                jobs = [self._new_job(job) for job in the_plan.jobs]
            except PlanError as exc:
                # Never leave a validated alert holding its key with no plan: refuse it.
                refusal = Refusal(code="plan-failed", reason=f"the alert could not be planned: "
                                                             f"{exc}")
                await self._store.refuse_alert(alert_id, refusal)
                return refusal
        plan_flags = ["references-unknown"] if the_plan.references_unknown else []
        with step("commit"):
            return await self._store.accept_alert_with_jobs(
                alert_id, jobs, plan=_plan_summary(the_plan), flags=plan_flags,
                stop_alerts=referenced if history is not None else ())

    # -- steps ---------------------------------------------------------------------------

    def _validate(self, raw: bytes) -> tuple[Alert | None, list[Finding], bool, bool, bool]:
        """The alert (None unless exactly one, valid), findings, validity, signature, readable.

        ``readable`` is False when the bytes are not XML or not CAP at all.
        """
        # The sender is inside the document: a first pass with the OASIS rules finds it,
        # a second one applies the sender's own profile when it has another.
        report = validate(raw, profile="oasis", max_bytes=self._max_bytes)
        alert = report.alerts[0].alert if len(report.alerts) == 1 else None
        if alert is not None:
            policy = self._authorities.get(alert.sender)
            if policy is not None and (policy.profile != "oasis"
                                       or policy.trust_store is not None):
                report = validate(raw, profile=policy.profile, trust_store=policy.trust_store,
                                  max_bytes=self._max_bytes)
                alert = report.alerts[0].alert if len(report.alerts) == 1 else None
        return (alert, report.all_findings, report.valid and alert is not None,
                report.signature is SignatureStatus.VALID, report.kind != "refused")

    def _authorize(self, alert: Alert, *, token_authority: str | None, valid: bool,
                   signed: bool, flags: list[str]) -> Alert:
        """The alert to plan (clipped if so configured), or raise :class:`_Refused`."""
        if token_authority is None:
            raise _Refused(401, "unauthenticated", "no bearer token")
        policy = self._authorities.get(alert.sender)
        if policy is None:
            raise _Refused(403, "unknown-authority",
                           f"unknown authority: {alert.sender!r} is not a configured sender")
        if token_authority != alert.sender:
            raise _Refused(403, "forbidden-sender",
                           f"token for {token_authority} cannot publish for {alert.sender}")
        if not valid:
            # Invalid content: record_validation refuses it with the findings (422).
            return alert
        if alert.status not in policy.allowed_statuses:
            allowed = ", ".join(sorted(s.value for s in policy.allowed_statuses))
            raise _Refused(403, "status-not-allowed",
                           f"{alert.sender} may not publish status {alert.status.value} "
                           f"(allowed: {allowed})")
        if policy.signature_required and not signed:
            raise _Refused(403, "signature-required",
                           f"{alert.sender} must sign its alerts with a valid signature")
        jurisdiction = self._jurisdictions.get(alert.sender)
        if jurisdiction is None or alert.msg_type is MsgType.CANCEL:
            return alert
        geometry = alert_geometry(alert, registry=self._registry,
                                  geocodes=self._targeting.geocodes).geometry
        if geometry.is_empty:
            # Nothing to check against (e.g. geocodes without boundaries): the
            # planner targets nothing either, so the alert cannot leave the jurisdiction.
            return alert
        if jurisdiction.covers(geometry):
            return alert
        if policy.on_outside is JurisdictionPolicy.REJECT:
            raise _Refused(403, "outside-jurisdiction",
                           f"the alert's area is not inside the jurisdiction of {alert.sender}")
        clipped = shapely.intersection(geometry, policy.jurisdiction)
        polygons = _polygons(clipped)
        if not polygons:
            raise _Refused(403, "outside-jurisdiction",
                           f"the alert's area lies wholly outside the jurisdiction of "
                           f"{alert.sender}")
        flags.append("area-clipped-to-jurisdiction")
        # The stored parsed form stays the authority's; only the plan uses the clipped
        # area (one area per info block; holes, which CAP cannot express, are dropped).
        infos = tuple(dataclasses.replace(info, areas=(Area(
            area_desc="; ".join(a.area_desc for a in info.areas) + " (clipped)",
            polygons=polygons),)) if info.areas else info for info in alert.infos)
        return dataclasses.replace(alert, infos=infos)

    async def _history(self, referenced: Sequence[int]) -> AlertHistory:
        """The referenced alerts with their stored jobs, for an Update or Cancel."""
        priors = []
        for alert_id in referenced:
            detail = await self._store.get_alert_detail(alert_id)
            stored = detail.alert
            if (stored.sender is None or stored.identifier is None or stored.sent is None
                    or stored.status is None or stored.msg_type is None):
                continue
            serial_json = (stored.plan or {}).get("serial_number")
            priors.append(PriorAlert(
                sender=stored.sender, identifier=stored.identifier, sent=stored.sent,
                status=Status(stored.status), msg_type=MsgType(stored.msg_type),
                serial_number=SerialNumber.from_json(serial_json) if serial_json else None,
                jobs=tuple(PlannedJob.from_json(job.payload) for job in detail.jobs)))
        return AlertHistory(alerts=tuple(priors))

    @staticmethod
    def _new_job(job: PlannedJob) -> NewJob:
        # Everything touching one broadcast (operator, gateway, message code) runs in
        # creation order: a replace or stop never overtakes the create it follows.
        lock_key = None
        if job.serial_number is not None:
            lock_key = f"{job.operator}:{job.gateway}:{job.serial_number.message_code}"
        return NewJob(operator=job.operator, gateway=job.gateway, kind=JobKind(job.kind.value),
                      payload=job.to_json(), expires_at=job.expires_at, lock_key=lock_key)
