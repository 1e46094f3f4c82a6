"""The emergency managers' console (``/console``) in a real browser against a real service.

Everything runs in this process and on loopback: the HTTP API
(:func:`dispatcher.api.create_api_app`) over a :class:`~dispatcher.service.Service`
built by hand on the test's own PostgreSQL database (as in ``test_api.py``), a
:class:`~dispatcher.worker.Worker` sending operator Alpha's jobs to the CBC
simulator (operator Beta has no gateway on the worker, so its jobs fail, visibly),
and Debian's Chromium driven headless by playwright. What the page shows is
checked against what the API answers.

Chromium comes from Debian (``ops/browser.sh``), never from playwright's own
download. Without it the browser tests fail under CI and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from dispatcher.api import create_api_app
from dispatcher.config import Settings, hash_token, load_settings
from dispatcher.pipeline import AuthorityPolicy, Ingest
from dispatcher.planner import (
    GatewayKind,
    GatewayPlanInput,
    OperatorPlanInput,
    StatusPolicy,
    TargetingPolicy,
)
from dispatcher.queue import Queue
from dispatcher.service import Service
from dispatcher.store import Store
from dispatcher.worker import CbcRestPort, Worker
from gateways.cbc.client import CbcClient
from gateways.cbc.ecbe import Dialect, EcbeOptions
from gateways.simulators.cbc import CbcSimulator
from geo.index import CellIndex
from geo.synth import synthesize

if TYPE_CHECKING:
    from playwright.async_api import Page

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus"
DWD = (CORPUS / "dwd" / "Z_CAP_C_EDZW_20150722094400_PVW_161.xml").read_bytes()
IDENTIFIER = b"2.49.0.1.276.DWD.PVW.1437558240606.161"
SENDER = "CAP@dwd.de"
AHRWEILER_BOX = (6.6, 50.2, 7.6, 50.8)

CHROMIUM = Path("/usr/bin/chromium")
#: How this machine's Chromium runs headless as root without reaching for the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path("/tmp/console.png")
#: Milliseconds to wait for what the page shows (it refreshes every 2 s).
WAIT_MS = 15_000

TOKENS = {
    "dwd_ingest": "tok-console-dwd-5e1f",      # authority CAP@dwd.de
    "duty": "tok-console-manager-77aa",        # manager bound to CAP@dwd.de
}
SECRETS = {"dwd_ingest": "dwd_ingest", "duty": "duty_manager"}

CONFIG = """
data_dir = "{data_dir}"

[http]
port = 0

[[authorities]]
sender = "CAP@dwd.de"
name = "Deutscher Wetterdienst"
statuses = ["Actual", "Exercise"]
tokens = ["dwd_ingest"]

[[operators]]
name = "Alpha"
plmn = "001-01"

[operators.exercise]
gateways = ["cbc"]

[[operators.gateways]]
name = "cbc"
kind = "cbc-rest"
url = "{cbc_url}"
dialect = "capcast"

[[operators]]
name = "Beta"
plmn = "001-02"

[[operators.gateways]]
name = "cbc"
kind = "cbc-rest"
url = "http://127.0.0.1:9"
dialect = "capcast"

[[tokens]]
name = "duty"
role = "manager"
secret = "duty_manager"
authority = "CAP@dwd.de"
"""


def _iso(moment: datetime) -> bytes:
    return moment.isoformat(timespec="seconds").encode()


def live_alert(number: int) -> bytes:
    """The DWD sample alert, sent an hour ago and valid for a day (the queue runs on now)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return (DWD.replace(b"<sent>2015-07-22T09:24:00+00:00</sent>",
                        b"<sent>" + _iso(now - timedelta(hours=1)) + b"</sent>")
            .replace(b"2015-07-22T17:00:00+00:00", _iso(now + timedelta(days=1)))
            .replace(IDENTIFIER, IDENTIFIER[:-3] + str(number).encode()))


def _gateways() -> tuple[GatewayPlanInput, ...]:
    return (GatewayPlanInput(name="cbc", kind=GatewayKind.CBC_REST, dialect=Dialect.CAPCAST),)


@cache
def operators() -> tuple[OperatorPlanInput, ...]:
    alpha_cells = synthesize(300, seed=3, bbox=AHRWEILER_BOX, operators=("Alpha",))
    beta_cells = synthesize(300, seed=4, bbox=AHRWEILER_BOX,
                            operators=("Alpha", "Beta")).by_operator()["Beta"]
    alpha = OperatorPlanInput(
        name="Alpha", plmn="001-01", index=CellIndex.from_inventory(alpha_cells),
        languages=("de",), gateways=_gateways(),
        # Exercises (drills) may go through its gateway to any of its cells.
        exercise=StatusPolicy(gateways=frozenset({"cbc"}),
                              cells=frozenset(str(c) for c in alpha_cells.cell_ids)))
    beta = OperatorPlanInput(name="Beta", plmn="001-02",
                             index=CellIndex.from_inventory(beta_cells), languages=("de",),
                             gateways=_gateways())
    return alpha, beta


def load(tmp_path: Path, cbc_url: str) -> Settings:
    config = tmp_path / "capcast.toml"
    config.write_text(CONFIG.format(data_dir=tmp_path / "data", cbc_url=cbc_url))
    secrets = tmp_path / "secrets.toml"
    lines = ["[secrets]"] + [f'{SECRETS[name]} = "{hash_token(token)}"'
                             for name, token in TOKENS.items()]
    secrets.write_text("\n".join(lines) + "\n")
    secrets.chmod(0o600)
    return load_settings(config, env={}, secrets_path=secrets)


@dataclass
class Console:
    """The running service: its base URL and an HTTP session for the API."""

    base: str
    http: aiohttp.ClientSession

    async def api(self, method: str, path: str, token: str = "duty", *,
                  status: int | None = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {TOKENS[token]}", **kwargs.pop("headers", {})}
        async with self.http.request(method, f"{self.base}{path}", headers=headers,
                                     **kwargs) as response:
            body = await response.json(content_type=None)
            if status is not None:
                assert response.status == status, (method, path, response.status, body)
            return body


@pytest.fixture
async def console(tmp_path: Path, store: Store, queue: Queue) -> AsyncIterator[Console]:
    """The API served on loopback, a worker sending Alpha's jobs to the CBC simulator."""
    async with AsyncExitStack() as stack:
        # A delay per CBC request, so that the page sees jobs running before they finish.
        simulator = await stack.enter_async_context(
            CbcSimulator(dialect=Dialect.CAPCAST, create_delay=0.6))
        settings = load(tmp_path, simulator.base_url)
        clock = lambda: datetime.now(UTC)  # noqa: E731
        ingest = Ingest(store=store,
                        authorities={a.sender: AuthorityPolicy(
                            sender=a.sender, profile=a.profile,
                            allowed_statuses=frozenset(a.statuses))
                            for a in settings.authorities},
                        operators=list(operators()), targeting=TargetingPolicy(),
                        clock=clock, max_bytes=settings.http.max_body_bytes)
        cbc = await stack.enter_async_context(CbcClient(
            simulator.base_url, options=EcbeOptions(dialect=Dialect.CAPCAST), timeout=5.0,
            connect_timeout=2.0, retries=0, operator="Alpha"))
        ports = {("Alpha", "cbc"): CbcRestPort(cbc)}
        service = Service(settings=settings, store=store, queue=queue, ingest=ingest,
                          clock=clock, gateways=ports,
                          database_display="test-db")
        server = TestServer(create_api_app(service), host="127.0.0.1")
        await server.start_server()
        stack.push_async_callback(server.close)
        worker = Worker(queue=queue, gateways=ports, worker_id="console-worker",
                        lease_seconds=10.0, poll_interval=0.5)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))

        async def stop_worker() -> None:
            stop.set()
            await asyncio.wait_for(running, 10)

        stack.push_async_callback(stop_worker)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Console(base=str(server.make_url("")).rstrip("/"), http=http)


def _need_browser() -> None:
    """Skip (fail under CI) when Debian's chromium or the playwright package is missing."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"Debian's chromium ({CHROMIUM}) is missing: run bash ops/browser.sh")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing: pip install playwright")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("; ".join(problems))  # CI must run the console's browser tests
        pytest.skip("; ".join(problems))


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A page of headless Debian Chromium; any script error in it fails the test."""
    _need_browser()
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM),
                                               args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 1000})
            context.set_default_timeout(WAIT_MS)
            opened = await context.new_page()
            opened.on("pageerror", lambda exc: errors.append(str(exc)))
            yield opened
        finally:
            await browser.close()
    assert errors == [], errors


async def sign_in(page: Page, console: Console, token: str) -> None:
    await page.goto(f"{console.base}/console")
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_role("button", name="Use token").click()


def api_error_shown(page: Page, key: str) -> Any:
    return page.locator(f'#error-list li[data-key="{key}"]')


# -- the files ------------------------------------------------------------------------------


async def test_console_files_are_served_safely(console: Console) -> None:
    async with console.http.get(f"{console.base}/console") as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
        etag = response.headers["ETag"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # Scripts and styles come from capcast itself: no other host is named.
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == ["console/console.css",
                                                             "console/console.js",
                                                             "#alerts-heading"]
    async with console.http.get(f"{console.base}/console",
                                headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    for name, media in (("console.js", "text/javascript"), ("console.css", "text/css"),
                        ("index.html", "text/html")):
        async with console.http.get(f"{console.base}/console/{name}") as response:
            assert response.status == 200 and response.content_type == media, name
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with console.http.get(f"{console.base}/console/", allow_redirects=False) as response:
        assert response.status == 308 and response.headers["Location"] == "/console"
    for bad in ("nope.js", "api.py", "..%2Fapi.py", ".hidden.js", "console.js.map"):
        async with console.http.get(f"{console.base}/console/{bad}") as response:
            assert response.status == 404, bad
            body = await response.json()
            assert body["error"]["code"] == "not-found", (bad, body)


# -- in the browser -------------------------------------------------------------------------


async def test_an_unknown_token_shows_the_401_in_the_page(console: Console, page: Page) -> None:
    await sign_in(page, console, "not-a-known-token")
    answer = await console.http.get(f"{console.base}/api/v1/alerts",
                                    headers={"Authorization": "Bearer not-a-known-token"})
    expected = (await answer.json())["error"]
    assert answer.status == 401
    shown = api_error_shown(page, "list")
    await shown.wait_for()
    assert await shown.get_attribute("data-status") == "401"
    assert await shown.get_attribute("data-code") == expected["code"] == "invalid-token"
    text = await shown.inner_text()
    assert "HTTP 401 invalid-token" in text and expected["message"] in text
    assert await page.locator("#main").is_hidden()
    assert "refused" in await page.locator("#session-status").inner_text()
    # A refused token is not kept, and a token never goes into the address.
    assert await page.evaluate("sessionStorage.length") == 0
    assert "token" not in page.url


async def test_the_page_offers_only_what_the_token_may_do(console: Console,
                                                            page: Page) -> None:
    me = await console.api("GET", "/api/v1/me", "dwd_ingest", status=200)
    assert me["role"] == "authority" and me["may"]["drill"] is False
    await sign_in(page, console, TOKENS["dwd_ingest"])
    await page.locator("#list-empty").wait_for()
    await page.locator("#whoami").filter(has_text="(authority").wait_for()
    assert await page.locator("#drill-panel").is_hidden()
    # A manager is offered drills.
    await page.get_by_role("button", name="Forget token").click()
    await sign_in(page, console, TOKENS["duty"])
    # The list (which shows the page) and /me load independently: wait for both.
    await page.locator("#list-empty").wait_for()
    await page.locator("#whoami").filter(has_text="(manager").wait_for()
    assert await page.locator("#drill-panel").is_visible()


async def test_console_end_to_end(console: Console, page: Page) -> None:
    await sign_in(page, console, TOKENS["duty"])
    await page.locator("#list-empty").wait_for()
    assert await page.locator("#main").is_visible()
    assert await page.evaluate("sessionStorage.getItem('capcast.console.token')") == \
        TOKENS["duty"]
    assert TOKENS["duty"] not in page.url

    # -- an alert POSTed through the API appears in the list (auto-refresh) --
    posted = await console.api("POST", "/api/v1/alerts", "dwd_ingest", status=201,
                               data=live_alert(301),
                               headers={"Content-Type": "application/cap+xml"})
    alert_id = posted["id"]
    row = page.locator(f'#alert-table tr[data-alert-id="{alert_id}"]')
    await row.wait_for()
    [listed] = (await console.api("GET", "/api/v1/alerts"))["alerts"]
    assert listed["id"] == alert_id
    for field in ("status", "sender", "event"):
        cell = row.locator(f'td[data-field="{field}"]')
        assert (await cell.inner_text()).strip() == listed[field], field
    assert await row.locator('td[data-field="state"]').get_attribute("data-value") in (
        "planned", "dispatching", "done")

    # -- open it: the map has the area and one element per targeted cell --
    await row.get_by_role("button", name=re.compile(f"Open alert {alert_id}")).click()
    geo = await console.api("GET", f"/api/v1/alerts/{alert_id}/targeting.geojson")
    areas = [f for f in geo["features"] if f["properties"]["role"] == "alert-area"]
    targeted = [f for f in geo["features"]
                if f["properties"]["role"] == "cell" and f["properties"]["targeted"]]
    per_operator = Counter(f["properties"]["operator"] for f in targeted)
    assert set(per_operator) == {"Alpha", "Beta"} and len(areas) == 1
    cells = page.locator("#map path.cell.targeted")
    await page.wait_for_function(
        "n => document.querySelectorAll('#map path.cell.targeted').length === n",
        arg=len(targeted))
    assert await page.locator("#map path.area").count() == len(areas)
    assert len(await page.locator("#map path.area").get_attribute("d") or "") > 20
    shown_ids = await cells.evaluate_all("els => els.map(e => e.dataset.cellId)")
    assert sorted(shown_ids) == sorted(f["properties"]["cell_id"] for f in targeted)
    detail = await console.api("GET", f"/api/v1/alerts/{alert_id}")
    for operator, count in per_operator.items():
        legend = page.locator(f'#legend li[data-operator="{operator}"]')
        assert await legend.get_attribute("data-targeted") == str(count)
        assert f"{operator}: {count} targeted cells" in await legend.inner_text()
        # The plan targeted the same number of cells when the alert was accepted.
        assert detail["targeting"]["operators"][operator]["cells"] == count

    # -- its jobs update live until every one has finished; the page matches the API --
    summary = page.locator("#jobs-summary")
    await page.wait_for_function(
        "() => document.getElementById('jobs-summary').dataset.allFinished === 'true'",
        timeout=30_000)
    detail = await console.api("GET", f"/api/v1/alerts/{alert_id}")
    jobs = detail["jobs"]
    assert {(j["operator"], j["state"]) for j in jobs} == {("Alpha", "succeeded"),
                                                           ("Beta", "failed")}
    assert await summary.get_attribute("data-total") == str(len(jobs))
    for job in jobs:
        job_row = page.locator(f'#jobs tr[data-job-id="{job["id"]}"]')
        subs = [s for s in detail["submissions"] if s["job_id"] == job["id"]]
        expected = {"state": job["state"], "operator": job["operator"],
                    "cells": str(job["cells"]), "submitted": str(len(subs)),
                    "acknowledged": str(sum(s["status"] == "acknowledged" for s in subs)),
                    "failed": str(sum(s["status"] in ("failed", "rejected") for s in subs))}
        for field, value in expected.items():
            text = (await job_row.locator(f'td[data-field="{field}"]').inner_text()).strip()
            assert text == value, (job["operator"], field, text, value)
        error_row = page.locator(f'#jobs tr[data-error-of="{job["id"]}"]')
        if job["last_error"]:
            assert (await error_row.inner_text()).strip() == \
                f"Job {job['id']}, last error: {job['last_error']}"
        else:
            assert await error_row.count() == 0
    alpha_job = next(j for j in jobs if j["operator"] == "Alpha")
    assert int(await page.locator(f'#jobs tr[data-job-id="{alpha_job["id"]}"] '
                                  'td[data-field="acknowledged"]').inner_text()) >= 1
    beta_error = next(j for j in jobs if j["operator"] == "Beta")["last_error"]
    assert "no gateway" in beta_error
    for hop in ("claim", "first_submission", "acknowledged", "total"):
        assert await page.locator(f'#timings dd[data-hop="{hop}"]').count() == 1, hop
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    # -- an error of the API is shown with its code and message --
    bad_drill = {"preset": "NUTS3=DEA11", "text": "Drill with a preset"}
    refused = await console.api("POST", "/api/v1/drills", status=422, json=bad_drill)
    await page.get_by_label("…or a preset instead of points").fill(bad_drill["preset"])
    await page.get_by_label("Message text").fill(bad_drill["text"])
    await page.get_by_role("button", name="Run drill").click()
    shown = api_error_shown(page, "drill")
    await shown.wait_for()
    text = await shown.inner_text()
    assert f"HTTP 422 {refused['error']['code']}" in text and refused["error"]["message"] in text
    # ...also next to the button, and the sticky list of errors is in sight.
    inline = await page.locator("#drill-error").inner_text()
    assert f"HTTP 422 {refused['error']['code']}: {refused['error']['message']}" in inline
    assert await page.locator("#errors").is_visible()
    assert await shown.evaluate("e => { const r = e.getBoundingClientRect(); "
                                "return r.top >= 0 && r.bottom <= window.innerHeight; }")
    await page.get_by_label("…or a preset instead of points").fill("")

    # -- a drill drawn on the map: the new Exercise alert is selected --
    await page.get_by_role("button", name="Draw on the map").click()
    box = await page.locator("#map").bounding_box()
    assert box is not None
    for fx, fy in ((0.4, 0.35), (0.6, 0.35), (0.6, 0.65), (0.4, 0.65)):
        await page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    typed = (await page.locator("#drill-points").input_value()).split("\n")
    points = [tuple(float(v) for v in line.split(",")) for line in typed]
    assert len(points) == 4
    assert all(AHRWEILER_BOX[0] < lon < AHRWEILER_BOX[2] and
               AHRWEILER_BOX[1] < lat < AHRWEILER_BOX[3] for lon, lat in points)
    await page.get_by_label("Message text").fill("This is a drill of the warning system.")
    await page.get_by_label("Alpha").check()
    # Record what the jobs' summary says as it changes: it must be seen to update live.
    await page.evaluate("""() => {
        const summary = document.getElementById('jobs-summary');
        window.seenFinished = [];
        new MutationObserver(() => window.seenFinished.push(summary.dataset.allFinished))
            .observe(summary, {attributes: true, attributeFilter: ['data-all-finished']});
    }""")
    await page.get_by_role("button", name="Run drill").click()
    detail_box = page.locator("#detail")
    await page.wait_for_function(
        "() => document.getElementById('detail').dataset.status === 'Exercise'")
    drill_id = int(await detail_box.get_attribute("data-alert-id") or 0)
    exercises = (await console.api("GET", "/api/v1/alerts?status=Exercise"))["alerts"]
    assert [a["id"] for a in exercises] == [drill_id]
    assert exercises[0]["event"] == "Drill" and exercises[0]["source"] == "drill:duty"
    assert f"Drill alert {drill_id} accepted" in await page.locator("#notice").inner_text()
    drill_row = page.locator(f'#alert-table tr[data-alert-id="{drill_id}"]')
    await drill_row.wait_for()
    assert await drill_row.get_attribute("aria-current") == "true"
    # The drawn area is the drill's area.
    drill_geo = await console.api("GET", f"/api/v1/alerts/{drill_id}/targeting.geojson")
    [drill_area] = [f for f in drill_geo["features"]
                    if f["properties"]["role"] == "alert-area"]
    ring = {(round(lon, 4), round(lat, 4))
            for lon, lat in drill_area["geometry"]["coordinates"][0]}
    assert ring == {(round(lon, 4), round(lat, 4)) for lon, lat in points}
    drill_targeted = [f for f in drill_geo["features"]
                      if f["properties"]["role"] == "cell" and f["properties"]["targeted"]]
    await page.wait_for_function(
        "n => document.querySelectorAll('#map path.cell.targeted').length === n",
        arg=len(drill_targeted))
    await page.wait_for_function(
        "() => document.getElementById('jobs-summary').dataset.allFinished === 'true'",
        timeout=30_000)
    seen = await page.evaluate("window.seenFinished")
    assert "false" in seen and seen[-1] == "true", seen
    drill_jobs = (await console.api("GET", f"/api/v1/alerts/{drill_id}"))["jobs"]
    assert drill_jobs and {j["operator"] for j in drill_jobs} == {"Alpha"}
    assert {j["state"] for j in drill_jobs} == {"succeeded"}
    # The drill form's answer carried the ingest steps' timings.
    assert await page.locator('#timings dd[data-hop="ingest_plan"]').count() == 1

    # -- cancel the first alert, with confirmation --
    await row.click()
    await page.wait_for_function(
        f"() => document.getElementById('detail').dataset.alertId === '{alert_id}' "
        "&& document.getElementById('detail').dataset.state !== undefined")
    await page.get_by_role("button", name="Cancel this alert…").click()
    dialog = page.locator("#cancel-dialog")
    assert await dialog.is_visible()
    await page.get_by_role("button", name="No, keep it").click()
    assert await dialog.is_hidden()
    assert (await console.api("GET", f"/api/v1/alerts/{alert_id}"))["state"] != "cancelled"
    await page.get_by_role("button", name="Cancel this alert…").click()
    await page.get_by_label("Note sent with the Cancel (optional)").fill("All clear")
    await page.get_by_role("button", name="Yes, cancel the alert").click()
    await page.wait_for_function(
        "() => document.getElementById('detail').dataset.state === 'cancelled'")
    cancelled = await console.api("GET", f"/api/v1/alerts/{alert_id}")
    assert cancelled["state"] == "cancelled" and cancelled["stopped_by"] is not None
    assert f"the Cancel is alert {cancelled['stopped_by']}" in \
        await page.locator("#notice").inner_text()
    assert await page.locator("#cancel-button").is_hidden()
    # The refused drill's error stays until dismissed (a later drill worked); no other error.
    assert await page.locator("#error-list li").count() == 1
    await shown.get_by_role("button", name=re.compile("Dismiss")).click()
    assert await page.locator("#error-list li").count() == 0
    assert await page.locator("#errors").is_hidden()

    # -- forgetting the token removes it and what was read with it --
    await page.get_by_role("button", name="Forget token").click()
    assert await page.locator("#main").is_hidden()
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.locator("#alert-table tbody tr").count() == 0
