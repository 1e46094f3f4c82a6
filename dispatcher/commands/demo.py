"""``capcast demo``: the whole service on one machine, end to end, with nothing to install.

It starts an embedded PostgreSQL, an SMSC simulator and a CBC simulator on
loopback, writes a sample inventory of three operators (Alpha: cell broadcast
over ECBE REST, Bravo: cell broadcast over SMPP ``broadcast_sm``, Charlie:
location-based SMS to subscribers it reports present), a configuration and a
secrets file into the demo folder, and starts the service (HTTP API and
workers). It then POSTs a real CAP alert from ``examples/cap`` (re-dated to
now, with a fresh identifier, so it is live) with an authority's bearer token,
waits until every job has finished and prints what was targeted and sent per
operator. Without ``--once`` the service keeps running with its URL and
tokens printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import secrets
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError
from dispatcher.simulated import OPERATORS, SimulatedSetup, sample_inventories, write_secrets

if TYPE_CHECKING:
    from cap.model import Alert
    from dispatcher.service import Service

#: The example alert the demo sends (OASIS CAP 1.2 Appendix A.2, a NWS thunderstorm warning).
DEFAULT_EXAMPLE = "oasis-severe-thunderstorm.xml"
#: Degrees around the alert's area covered by the sample inventory (a small country's size).
MARGIN_DEG = 2.0


def register(commands: Commands) -> None:
    """Add ``capcast demo``."""
    demo = commands.command(
        "demo", "run the whole service on this machine with simulators and a real CAP alert",
        description="Start an embedded PostgreSQL, an SMSC and a CBC simulator, a sample "
                    "inventory of three operators and the service; send a real CAP alert "
                    "from examples/cap through the HTTP API and print what was targeted and "
                    "sent per operator. Then keep serving (Ctrl-C stops), or with --once exit: "
                    "0 only if every job completed.")
    demo.add_argument("--once", action="store_true",
                      help="exit after the alert's jobs have finished")
    demo.add_argument("--json", action="store_true",
                      help="print the summary as one JSON object (with --once)")
    demo.add_argument("--data-dir", metavar="DIR",
                      help="demo folder: database, inventory, config (default: the user data "
                           "folder's demo/)")
    demo.add_argument("--alert", metavar="FILE",
                      help=f"the CAP alert to send (default: examples/cap/{DEFAULT_EXAMPLE})")
    demo.add_argument("--cells", type=int, default=30_000, metavar="N",
                      help="cells in the sample inventory (default 30000)")
    demo.add_argument("--subscribers", type=int, default=2_000, metavar="N",
                      help="subscribers Charlie reports present (default 2000)")
    demo.add_argument("--port", type=int, metavar="PORT",
                      help="HTTP port (default 8080; with --once any free port)")
    demo.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                      help="how long to wait for the jobs (default 120)")
    demo.set_defaults(handler=_cmd_demo)


def _examples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "cap"


def _default_dir() -> Path:
    from dispatcher.config import default_data_dir

    return Path(os.environ.get("CAPCAST_DATA_DIR") or default_data_dir()) / "demo"


def live_copy(alert: Alert, now: datetime) -> Alert:
    """``alert`` re-dated to ``now`` (an hour of validity) with an identifier unique to now."""
    shift = now - alert.sent

    def moved(value: datetime | None) -> datetime | None:
        return value + shift if value is not None else None

    infos = tuple(dataclasses.replace(
        info, effective=moved(info.effective), onset=moved(info.onset),
        expires=now + timedelta(hours=1)) for info in alert.infos)
    return dataclasses.replace(
        alert, identifier=f"{alert.identifier}.demo-{now.strftime('%Y%m%dT%H%M%S%f')}",
        sent=now.replace(microsecond=0), infos=infos)


def demo_setup(sender: str, port: int) -> SimulatedSetup:
    """The demo's configuration: drills allowed everywhere, a manager and an admin token."""
    return SimulatedSetup(
        written_by="`capcast demo`", sender=sender, authority_name=f"Demo authority ({sender})",
        statuses=("Actual", "Exercise", "Test"), authority_token="demo_authority",
        smpp_secret="demo_smpp", http_port=port, alpha_languages=("en", "es"),
        sms_throughput=2000.0, exercises=True,
        tokens=(("demo-manager", "manager", "demo_manager"),
                ("demo-admin", "admin", "demo_admin")))


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.cells < 300:
        raise UsageError("--cells must be at least 300")
    if args.subscribers < 0:
        raise UsageError("--subscribers must not be negative")
    if args.json and not args.once:
        raise UsageError("--json needs --once")
    from cap.errors import CapcastError
    from cap.parse import parse_alert

    alert_path = Path(args.alert) if args.alert else _examples_dir() / DEFAULT_EXAMPLE
    try:
        alert = parse_alert(alert_path.read_bytes())
    except OSError as exc:
        print(f"capcast demo: cannot read the alert {alert_path}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_INVALID
    except CapcastError as exc:
        print(f"capcast demo: {alert_path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    folder = Path(args.data_dir) if args.data_dir else _default_dir()
    port = args.port if args.port is not None else (0 if args.once else 8080)
    from dispatcher.commands.serve import run_until_signalled

    # SIGINT and SIGTERM set ``stop``: the service, the simulators and the embedded
    # PostgreSQL are stopped in order instead of the process dying with them running.
    return run_until_signalled(lambda stop: _demo(args, out, alert=alert, alert_path=alert_path,
                                                  folder=folder, port=port, stop=stop))


async def _demo(args: argparse.Namespace, out: TextIO, *, alert: Alert, alert_path: Path,
                folder: Path, port: int, stop: asyncio.Event) -> int:
    import shapely
    from aiohttp import web

    from cap.errors import CapcastError
    from dispatcher.app import create_app, open_service
    from dispatcher.commands.serve import startup_failed
    from dispatcher.config import load_settings
    from gateways.cbc.ecbe import Dialect
    from gateways.simulators.cbc import CbcSimulator
    from gateways.simulators.smsc import SmscConfig, SmscSimulator
    from geo.areas import alert_geometry

    def say(text: str) -> None:
        if not args.json:
            print(text, file=out, flush=True)

    area = alert_geometry(alert).geometry
    if area.is_empty:
        print(f"capcast demo: {alert_path}: the alert has no polygon or circle to target "
              "(geocodes need boundary data the demo does not configure)", file=sys.stderr)
        return EXIT_INVALID
    lon0, lat0, lon1, lat1 = shapely.bounds(area).tolist()
    bbox = (lon0 - MARGIN_DEG, lat0 - MARGIN_DEG, lon1 + MARGIN_DEG, lat1 + MARGIN_DEG)
    say(f"capcast demo in {folder}")
    say(f"- sample inventory: {args.cells} cells of {', '.join(OPERATORS)} over "
        f"lon {bbox[0]:.1f}..{bbox[2]:.1f}, lat {bbox[1]:.1f}..{bbox[3]:.1f}")
    inventories, _ = await asyncio.to_thread(sample_inventories, folder / "cells", args.cells,
                                             bbox=bbox)

    tokens = {name: secrets.token_urlsafe(24)
              for name in ("demo_authority", "demo_manager", "demo_admin")}
    secrets_file = folder / "demo-secrets.toml"
    write_secrets(secrets_file, smpp_secret="demo_smpp", smpp_password="demo",
                  tokens=tokens)

    smsc = SmscSimulator(SmscConfig(port=0, dlr_delay=0.2))
    cbc = CbcSimulator(dialect=Dialect.CAPCAST)
    await smsc.start()
    await cbc.start()
    try:
        config_file = folder / "demo.toml"
        config_file.write_text(demo_setup(alert.sender, port).config(
            folder, inventories=inventories, smsc_port=smsc.port, cbc_url=cbc.base_url),
            encoding="utf-8")
        say(f"- simulators: SMSC smpp://127.0.0.1:{smsc.port}, CBC {cbc.base_url}")
        settings = load_settings(config_file, secrets_path=secrets_file)
        try:
            async with open_service(settings) as service:
                await _report_presence(service, args.subscribers)
                app = create_app(service, workers=2, feeds=False)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, "127.0.0.1", port)
                    await site.start()
                    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
                    say(f"- service: {url} (database {service.database_display})")
                    summary = await _send_and_wait(service, url, alert, tokens["demo_authority"],
                                                   smsc, cbc, timeout=args.timeout)
                    summary["alert_file"] = str(alert_path)
                    summary["url"] = url
                    if args.json:
                        out.write(json.dumps(summary, indent=2) + "\n")
                    else:
                        _print_summary(summary, out)
                    if args.once:
                        return EXIT_OK if summary["all_jobs_completed"] else EXIT_INVALID
                    say(f"\nThe service keeps running at {url} (Ctrl-C stops).")
                    say(f"  API:      {url}/api/v1/openapi.json")
                    say(f"  tokens:   authority {tokens['demo_authority']}")
                    say(f"            manager   {tokens['demo_manager']}")
                    say(f"            admin     {tokens['demo_admin']}")
                    say(f"  try:      curl -H 'Authorization: Bearer {tokens['demo_admin']}' "
                        f"{url}/api/v1/alerts")
                    await stop.wait()
                    say("capcast demo stopped")
                    return EXIT_OK
                finally:
                    await runner.cleanup()
        except (CapcastError, OSError) as exc:
            return startup_failed(exc)
    finally:
        await cbc.stop()
        await smsc.stop()


async def _report_presence(service: Service, count: int) -> None:
    """Charlie reports ``count`` subscribers spread over its cells (as its network would)."""
    from dispatcher.store import PresenceEntry

    charlie = next((op for op in service.operators if op.name == "Charlie"), None)
    if charlie is None or count == 0 or len(charlie.index) == 0:
        return
    rng = random.Random(7)
    cells = charlie.index.cell_ids
    now = service.clock()
    entries = [PresenceEntry(msisdn=f"+99900{n:07d}", cell_id=str(cells[rng.randrange(len(cells))]),
                             reported_at=now) for n in range(count)]
    await service.store.upsert_presence("Charlie", entries)


async def _send_and_wait(service: Service, url: str, alert: Alert, token: str, smsc: Any,
                         cbc: Any, *, timeout: float) -> dict[str, Any]:
    import aiohttp

    from cap.serialize import serialize
    from dispatcher.store import JobState, SubmissionStatus

    live = live_copy(alert, service.clock())
    raw = serialize(live)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/api/v1/alerts", data=raw,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/cap+xml"}) as response:
        answer = await response.json()
        post_ms = (time.perf_counter() - t0) * 1000.0
        status = response.status
    summary: dict[str, Any] = {
        "alert": {"sender": live.sender, "identifier": live.identifier,
                  "event": live.infos[0].event if live.infos else None,
                  "http_status": status},
        "post_ms": round(post_ms, 1),
    }
    alert_id = answer.get("id") if isinstance(answer, dict) else None
    if status not in (200, 201) or alert_id is None:
        summary.update(all_jobs_completed=False, error=answer, operators={})
        return summary
    summary["alert"]["id"] = alert_id
    deadline = time.monotonic() + timeout
    while True:
        detail = await service.store.get_alert_detail(alert_id)
        if detail.jobs and all(job.state.finished for job in detail.jobs):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    # Let the last receipts arrive (the simulator answers them after 0.2 s).
    await asyncio.sleep(0.5)
    detail = await service.store.get_alert_detail(alert_id)
    plan = detail.alert.plan or {}
    cells = {t["operator"]: t["cells"] for t in plan.get("targeting", [])}
    by_job = {job.id: job for job in detail.jobs}
    operators: dict[str, dict[str, Any]] = {}
    for op in service.operators:
        jobs = [job for job in detail.jobs if job.operator == op.name]
        subs = [s for s in detail.submissions if s.job_id in by_job
                and by_job[s.job_id].operator == op.name]
        counted = Counter(s.status for s in subs)
        operators[op.name] = {
            "gateways": sorted({f"{job.gateway} ({job.kind.value})" for job in jobs}),
            "cells": cells.get(op.name, 0),
            "jobs": len(jobs),
            "jobs_completed": sum(job.state is JobState.SUCCEEDED for job in jobs),
            "submitted": len(subs),
            "acknowledged": counted[SubmissionStatus.ACKNOWLEDGED],
            "failed": counted[SubmissionStatus.FAILED] + counted[SubmissionStatus.REJECTED],
            "receipts": sum(1 for r in detail.receipts if r.operator == op.name),
        }
    first = [r.at for r in smsc.records() if r.pdu.command in ("broadcast_sm", "submit_sm")]
    first += [r.time for r in cbc.received()]
    first_pdu = min(first, default=None)
    summary["operators"] = operators
    summary["jobs"] = dict(Counter(job.state.value for job in detail.jobs))
    summary["all_jobs_completed"] = bool(detail.jobs) and all(
        job.state is JobState.SUCCEEDED for job in detail.jobs)
    summary["ingest_to_first_pdu_ms"] = (round((first_pdu - started).total_seconds() * 1000, 1)
                                         if first_pdu is not None else None)
    summary["ingest_timings_ms"] = answer.get("timings_ms", {})
    summary["pdus_at_simulators"] = {
        "smsc": dict(Counter(r.pdu.command for r in smsc.records()
                             if r.pdu.command in ("broadcast_sm", "submit_sm",
                                                  "cancel_broadcast_sm"))),
        "cbc": dict(Counter(r.operation.value for r in cbc.received() if r.operation)),
    }
    return summary


def _print_summary(summary: dict[str, Any], out: TextIO) -> None:
    alert = summary["alert"]
    out.write(f"\nAlert {alert.get('identifier')} ({alert.get('event')}) from "
              f"{alert.get('sender')}: HTTP {alert.get('http_status')}, id {alert.get('id')}\n")
    if "error" in summary:
        out.write(f"  refused: {json.dumps(summary['error'])}\n")
        return
    out.write(f"{'operator':<10} {'cells':>7} {'jobs':>5} {'submitted':>10} "
              f"{'acknowledged':>13} {'failed':>7} {'receipts':>9}  gateways\n")
    for name, row in summary["operators"].items():
        out.write(f"{name:<10} {row['cells']:>7} {row['jobs']:>5} {row['submitted']:>10} "
                  f"{row['acknowledged']:>13} {row['failed']:>7} {row['receipts']:>9}  "
                  f"{', '.join(row['gateways']) or '-'}\n")
    if any(row["receipts"] > row["acknowledged"] for row in summary["operators"].values()):
        out.write("(delivery receipts come per SMS segment: a 3-segment SMS has 3)\n")
    out.write(f"POST answered in {summary['post_ms']} ms; first PDU at a simulator "
              f"{summary['ingest_to_first_pdu_ms']} ms after the POST.\n")
    out.write(f"Jobs: {summary['jobs']}; every job completed: "
              f"{'yes' if summary['all_jobs_completed'] else 'NO'}\n")
