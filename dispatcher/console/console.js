// capcast console: the emergency managers' page over the HTTP API (/api/v1).
//
// Plain modern JavaScript, no build step, no third-party code: everything is served by
// capcast itself. Every answer other than success is shown in the page with its HTTP
// status, its error code and its message (the managers' rule: never fail silently).
// Text from alerts (external CAP input) is only ever put into the page as text nodes,
// never as markup.

const TOKEN_KEY = "capcast.console.token";
const REFRESH_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
const MAP_W = 800;
const MAP_H = 560;
// Operators' colours (the alert area is red, drawing blue): distinct on white.
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f", "#ff7f0e", "#393b79"];
const UNSETTLED_ALERT = new Set(["received", "validated", "planned", "dispatching"]);
const CANCELLABLE = new Set(["accepted", "planned", "dispatching", "done"]);

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,            // GET /api/v1/me: the token's name, role and what it may do
  listTimer: null,
  listRun: 0,          // bumped to drop answers of superseded list requests
  alerts: [],
  selectedId: null,
  selectRun: 0,        // bumped on each selection: late answers of an older one are dropped
  detail: null,
  detailTimer: null,
  geo: null,
  view: null,          // the projection of the map now shown
  drawing: false,
  operatorColours: new Map(),
  drillTimings: new Map(),  // alert id -> ingest timings the drill answer reported
};

// -- errors --------------------------------------------------------------------------------

/** An answer other than success, or a failure to get one. */
class ConsoleError extends Error {
  constructor(status, code, message, request) {
    super(message);
    this.status = status;
    this.code = code;
    this.request = request;
  }
}

// key -> {what, error, count, last}. Errors of background refreshes (list, detail, map)
// go away when that refresh works again; those of actions (drill, cancel) stay until
// dismissed.
const errors = new Map();

/** Show `error` under `key` (one entry per key: a repeated failure counts up). */
function showError(key, what, error) {
  const err = error instanceof ConsoleError ? error
    : new ConsoleError(0, "console-error", String(error && error.message || error), "");
  const entry = errors.get(key);
  const same = entry && entry.error.code === err.code && entry.error.message === err.message;
  errors.set(key, {what, error: err, count: same ? entry.count + 1 : 1, last: new Date()});
  renderErrors();
}

/** Remove the entry of `key` (its source works again). */
function clearError(key) {
  if (errors.delete(key)) renderErrors();
}

function renderErrors() {
  const list = $("error-list");
  list.replaceChildren();
  for (const [key, entry] of errors) {
    const {error} = entry;
    const li = el("li", {"data-key": key, "data-code": error.code,
                         "data-status": String(error.status)});
    li.append(el("span", {class: "what"}, entry.what + ":"));
    const label = error.status ? `HTTP ${error.status} ${error.code}` : error.code;
    li.append(el("span", {class: "code"}, label));
    let message = error.message;
    if (error.request) message += ` (${error.request})`;
    li.append(el("span", {class: "message"}, message));
    const when = `at ${clock(entry.last)}` + (entry.count > 1 ? `, ${entry.count} times` : "");
    li.append(el("span", {class: "when"}, when));
    const dismiss = el("button", {type: "button", class: "secondary",
                                  "aria-label": `Dismiss the error: ${entry.what}`}, "Dismiss");
    dismiss.addEventListener("click", () => clearError(key));
    li.append(dismiss);
    list.append(li);
  }
  $("errors").hidden = errors.size === 0;
}

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
}

// A bug in this page is shown like any other error rather than lost in the browser's log.
window.addEventListener("error", (event) => {
  showError("page", "The console itself failed",
            new ConsoleError(0, "console-error", event.message || "unknown error", ""));
});
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  showError("page", "The console itself failed", reason instanceof ConsoleError ? reason
    : new ConsoleError(0, "console-error", String(reason && reason.message || reason), ""));
});

// -- the API ---------------------------------------------------------------------------------

/** The error's code and message from an error body (or an ingest result that was refused). */
function errorOf(data) {
  if (data && typeof data.error === "object" && data.error !== null) {
    return {code: String(data.error.code || "error"), message: String(data.error.message || "")};
  }
  const refusal = data && (data.refusal || (data.ingest && data.ingest.refusal));
  if (refusal) return {code: String(refusal.code), message: String(refusal.reason)};
  return {code: "error", message: JSON.stringify(data).slice(0, 300)};
}

/** Call the API (path relative to the page, e.g. "api/v1/alerts"); the JSON answer. */
async function api(method, path, body) {
  const request = `${method} /${path.split("?")[0]}`;
  if (!state.token) throw new ConsoleError(0, "no-token", "enter a bearer token first", request);
  const headers = {"Authorization": `Bearer ${state.token}`, "Accept": "application/json"};
  const init = {method, headers, cache: "no-store", credentials: "omit",
                referrerPolicy: "no-referrer"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ConsoleError(0, "network-error",
                           `the server could not be reached (${exc.message || exc})`, request);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ConsoleError(response.status, response.ok ? "bad-answer" : "http-error",
                             `${response.statusText || "the answer"} is not JSON: `
                             + text.slice(0, 200), request);
    }
  }
  if (!response.ok) {
    const {code, message} = errorOf(data);
    throw new ConsoleError(response.status, code, message, request);
  }
  return data;
}

// -- small DOM helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function pill(text, cls) {
  return el("span", {class: `pill ${cls}`}, text || "—");
}

/** A moment from the API (ISO 8601, microseconds allowed) as a Date, or null. */
function moment(text) {
  if (!text) return null;
  const trimmed = String(text).replace(/(\.\d{3})\d+/, "$1");
  const date = new Date(trimmed);
  return Number.isNaN(date.getTime()) ? null : date;
}

function utc(text) {
  const date = moment(text);
  if (!date) return "—";
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function clock(date) {
  return date.toLocaleTimeString([], {hour12: false});
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// -- token and session ---------------------------------------------------------------------

function startSession(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("session-status").textContent = "Checking the token…";
  clearError("list");
  stopTimers();
  refreshList(true);
  loadFormChoices();
  loadMe();
}

/** Who the token is: offer only the actions its role may take (the API checks anyway). */
async function loadMe() {
  state.me = null;
  const token = state.token;
  try {
    const me = await api("GET", "api/v1/me");
    if (state.token !== token) return;  // signed out or in again meanwhile
    state.me = me;
    $("whoami").textContent = `Signed in as ${me.name} (${me.role}`
      + (me.authority ? `, ${me.authority}` : "") + (me.operator ? `, ${me.operator}` : "")
      + ").";
  } catch (error) {
    if (refused(error)) return;
    $("whoami").textContent = "";  // unknown: every action stays offered
  }
  $("drill-panel").hidden = state.me !== null && !state.me.may.drill;
  if (state.detail) renderDetail(state.detail);
}

function endSession(message) {
  stopTimers();
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("session-status").textContent = message;
  $("main").hidden = true;
  // Nothing read with the old token stays on the page.
  state.me = null;
  $("whoami").textContent = "";
  state.selectRun += 1;
  state.selectedId = null;
  state.detail = null;
  state.geo = null;
  state.alerts = [];
  renderList();
  $("detail-body").hidden = true;
  $("detail-hint").hidden = false;
  $("detail-hint").textContent = "Choose an alert in the list to see its area, targeted "
    + "cells and jobs.";
  $("detail-heading").textContent = "No alert selected";
  $("jobs").tBodies[0].replaceChildren();
  $("jobs-summary").textContent = "—";
  $("timings").replaceChildren();
  renderMap();
}

function stopTimers() {
  clearTimeout(state.listTimer);
  clearTimeout(state.detailTimer);
  state.listTimer = null;
  state.detailTimer = null;
  state.listRun += 1;
}

/** A 401 ends the session: polling with a refused token would only repeat the error. */
function refused(error) {
  if (error instanceof ConsoleError && error.status === 401) {
    stopTimers();
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("session-status").textContent = "The token was refused: enter another one.";
    return true;
  }
  return false;
}

// -- the alert list ---------------------------------------------------------------------------

function listQuery() {
  const query = new URLSearchParams({limit: "50"});
  const status = $("filter-status").value;
  const stateFilter = $("filter-state").value;
  if (status) query.set("status", status);
  if (stateFilter) query.set("state", stateFilter);
  return query.toString();
}

async function refreshList(first = false) {
  clearTimeout(state.listTimer);
  const run = ++state.listRun;
  try {
    const data = await api("GET", `api/v1/alerts?${listQuery()}`);
    if (run !== state.listRun) return;
    clearError("list");
    if (first || $("main").hidden) {
      $("main").hidden = false;
      $("session-status").textContent = "Token accepted.";
    }
    state.alerts = data.alerts;
    renderList();
    $("list-status").textContent =
      `${plural(data.alerts.length, "alert")}, updated at ${clock(new Date())} `
      + "(every 2 s)" + (data.next_cursor ? "; older alerts not shown" : "");
    followSelected();
  } catch (error) {
    if (run !== state.listRun) return;
    showError("list", "Loading the alert list", error);
    $("list-status").textContent = `Refresh failed at ${clock(new Date())}; retrying.`;
    if (refused(error)) return;
  }
  if (run === state.listRun && state.token) {
    state.listTimer = setTimeout(() => refreshList(), REFRESH_MS);
  }
}

const rows = new Map();  // alert id -> <tr>

function renderList() {
  const body = $("alert-table").tBodies[0];
  const wanted = new Set(state.alerts.map((a) => a.id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  state.alerts.forEach((alert, position) => {
    let row = rows.get(alert.id);
    if (!row) {
      row = makeRow(alert.id);
      rows.set(alert.id, row);
    }
    fillRow(row, alert);
    // Insert only where the order changed: moving a row would take the focus from it.
    if (body.children[position] !== row) body.insertBefore(row, body.children[position] || null);
  });
  $("list-empty").hidden = state.alerts.length > 0;
}

function makeRow(id) {
  const row = el("tr", {"data-alert-id": String(id)});
  for (const field of ["id", "received", "status", "state", "sender", "event"]) {
    row.append(el("td", {"data-field": field, class: field}));
  }
  row.addEventListener("click", (event) => {
    if (!event.target.closest("button")) selectAlert(id);
  });
  return row;
}

function fillRow(row, alert) {
  const cells = Object.fromEntries([...row.cells].map((c) => [c.dataset.field, c]));
  cells.id.textContent = String(alert.id);
  // Date and time on two lines: the list shares the page's width with the map.
  const [day, time] = utc(alert.received_at).split(" ");
  cells.received.replaceChildren(el("time", {datetime: alert.received_at},
                                    el("span", {}, day), " ", el("span", {}, time || "")));
  cells.status.replaceChildren(pill(alert.status, `st-${alert.status}`));
  cells.status.dataset.value = alert.status || "";
  cells.state.replaceChildren(pill(alert.state, `s-${alert.state}`));
  cells.state.dataset.value = alert.state;
  // Senders are long addresses: let them break after the @ rather than anywhere.
  const [local, ...domain] = (alert.sender || "—").split("@");
  cells.sender.replaceChildren(local, ...(domain.length ? ["@", el("wbr"), domain.join("@")]
    : []));
  const label = alert.event || alert.headline || "(no event)";
  let button = cells.event.querySelector("button");
  if (!button) {
    button = el("button", {type: "button", class: "link"});
    button.addEventListener("click", () => selectAlert(alert.id, true));
    cells.event.replaceChildren(button);
  }
  button.textContent = alert.msg_type && alert.msg_type !== "Alert"
    ? `${label} (${alert.msg_type})` : label;
  button.setAttribute("aria-label", `Open alert ${alert.id}: ${label}`);
  cells.event.dataset.value = alert.event || "";
  row.setAttribute("aria-current", alert.id === state.selectedId ? "true" : "false");
}

/** Reload the detail when the list shows the selected alert in another state. */
function followSelected() {
  if (state.selectedId === null || !state.detail) return;
  const listed = state.alerts.find((a) => a.id === state.selectedId);
  if (listed && listed.state !== state.detail.state && state.detailTimer === null) {
    loadDetail(state.selectRun);
  }
}

// -- one alert -----------------------------------------------------------------------------------

async function selectAlert(id, focus = false) {
  state.selectedId = id;
  const run = ++state.selectRun;
  clearTimeout(state.detailTimer);
  state.detailTimer = null;
  state.detail = null;
  state.geo = null;
  for (const [rowId, row] of rows) {
    row.setAttribute("aria-current", rowId === id ? "true" : "false");
  }
  $("detail").dataset.alertId = String(id);
  $("detail-heading").textContent = `Alert ${id}`;
  $("detail-hint").textContent = "Loading…";
  $("detail-hint").hidden = false;
  clearError("detail");
  clearError("map");
  if (focus) $("detail-heading").focus();
  await Promise.all([loadDetail(run), loadGeo(run)]);
}

async function loadDetail(run) {
  const id = state.selectedId;
  clearTimeout(state.detailTimer);
  state.detailTimer = null;
  let settled = false;
  try {
    const detail = await api("GET", `api/v1/alerts/${id}`);
    if (run !== state.selectRun) return;
    clearError("detail");
    state.detail = detail;
    renderDetail(detail);
    const jobsDone = detail.jobs.every((job) => finishedJob(job.state));
    settled = jobsDone && !UNSETTLED_ALERT.has(detail.state);
  } catch (error) {
    if (run !== state.selectRun) return;
    showError("detail", `Loading alert ${id}`, error);
    if (refused(error)) return;
    if (error.status === 404 || error.status === 403) settled = true;
  }
  // Live until every job has finished; the list refresh reloads it on a later change.
  if (!settled && run === state.selectRun && state.token) {
    state.detailTimer = setTimeout(() => loadDetail(run), REFRESH_MS);
  }
}

function finishedJob(jobState) {
  return !["queued", "running"].includes(jobState);
}

function renderDetail(detail) {
  $("detail-hint").hidden = true;
  $("detail-body").hidden = false;
  const title = detail.event || detail.headline || detail.msg_type || "alert";
  $("detail-heading").textContent = `Alert ${detail.id}: ${title}`;
  const detailBox = $("detail");
  detailBox.dataset.state = detail.state;
  detailBox.dataset.status = detail.status || "";

  const meta = $("detail-meta");
  meta.replaceChildren();
  const item = (label, value, key) => {
    if (value === null || value === undefined || value === "") return;
    meta.append(el("dt", {}, label));
    meta.append(el("dd", {"data-field": key}, value));
  };
  item("State", pill(detail.state, `s-${detail.state}`), "state");
  item("Status", pill(detail.status, `st-${detail.status}`), "status");
  item("Type", detail.msg_type, "msg_type");
  item("Sender", detail.sender, "sender");
  item("Identifier", detail.identifier, "identifier");
  item("Headline", detail.headline, "headline");
  item("Sent", utc(detail.sent), "sent");
  item("Received", utc(detail.received_at), "received");
  item("Expires", detail.expires_at ? utc(detail.expires_at) : null, "expires");
  item("Source", detail.source, "source");
  item("Flags", detail.flags && detail.flags.length ? detail.flags.join(", ") : null, "flags");
  item("Stopped by", detail.stopped_by ? `alert ${detail.stopped_by}` : null, "stopped_by");
  item("Repeat of", detail.duplicate_of ? `alert ${detail.duplicate_of}` : null, "duplicate_of");
  const area = detail.targeting && detail.targeting.area_km2;
  item("Area", typeof area === "number" ? `${area.toLocaleString()} km²` : null, "area");

  const refusal = $("detail-refusal");
  if (detail.refusal) {
    refusal.replaceChildren(el("strong", {}, `Refused (${detail.refusal.code}): `),
                            detail.refusal.reason);
    refusal.hidden = false;
  } else {
    refusal.hidden = true;
  }
  $("cancel-button").hidden = !((state.me === null || state.me.may.cancel)
    && CANCELLABLE.has(detail.state)
    && !["Cancel", "Ack", "Error"].includes(detail.msg_type)
    && !["Draft", "System"].includes(detail.status));
  renderJobs(detail);
  renderTimings(detail);
}

function renderJobs(detail) {
  const bySubmission = new Map();
  for (const sub of detail.submissions) {
    const counts = bySubmission.get(sub.job_id) || {submitted: 0, acknowledged: 0, failed: 0};
    counts.submitted += 1;
    if (sub.status === "acknowledged") counts.acknowledged += 1;
    if (sub.status === "failed" || sub.status === "rejected") counts.failed += 1;
    bySubmission.set(sub.job_id, counts);
  }
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  const byState = new Map();
  for (const job of detail.jobs) {
    byState.set(job.state, (byState.get(job.state) || 0) + 1);
    const counts = bySubmission.get(job.id) || {submitted: 0, acknowledged: 0, failed: 0};
    const row = el("tr", {"data-job-id": String(job.id), "data-operator": job.operator});
    const cell = (field, value, cls) => row.append(el("td", {"data-field": field, class: cls},
                                                      value));
    cell("id", String(job.id));
    cell("operator", operatorSwatchLabel(job.operator));
    cell("gateway", el("span", {}, job.gateway,
                        el("span", {class: "muted small"}, ` ${job.kind}`)));
    cell("action", job.action || "—");
    row.lastChild.classList.add("action");
    cell("state", pill(job.state, `s-${job.state}`));
    row.lastChild.dataset.value = job.state;
    cell("cells", String(job.cells), "num");
    cell("submitted", String(counts.submitted), "num");
    cell("acknowledged", String(counts.acknowledged), "num");
    cell("failed", String(counts.failed), "num");
    cell("attempts", `${job.attempts}/${job.max_attempts}`, "num");
    body.append(row);
    if (job.last_error) {
      // A row of its own: an error message is long, and squeezed into a column unreadable.
      const error = el("tr", {class: "job-error", "data-error-of": String(job.id)});
      error.append(el("td", {colspan: String(row.cells.length), "data-field": "last_error"},
                      el("strong", {}, `Job ${job.id}, last error: `), job.last_error));
      body.append(error);
    }
  }
  const total = detail.jobs.length;
  const finished = detail.jobs.filter((job) => finishedJob(job.state)).length;
  const summary = $("jobs-summary");
  summary.dataset.total = String(total);
  summary.dataset.finished = String(finished);
  summary.dataset.allFinished = String(finished === total);
  const parts = [...byState].map(([name, n]) => `${n} ${name}`).join(", ");
  if (total === 0) {
    summary.textContent = detail.state === "accepted"
      ? "No jobs: nothing to send (no targeted cell, or a status that is never sent)."
      : "No jobs.";
  } else {
    summary.textContent = `${plural(total, "job")}: ${parts}. `
      + (finished === total ? "All finished." : `${finished} of ${total} finished; updating…`);
  }
  const progress = $("jobs-progress");
  progress.max = Math.max(total, 1);
  progress.value = total === 0 ? 1 : finished;
}

function operatorSwatchLabel(name) {
  const span = el("span", {class: "op"});
  const box = svg("svg", {width: 12, height: 12, "aria-hidden": "true"});
  box.append(svg("rect", {width: 12, height: 12, rx: 2, fill: colourOf(name)}));
  span.append(box, " ", name);
  return span;
}

/** Per-hop timings from the stored timestamps (the database's clock), as drills report them. */
function hops(detail) {
  const out = [];
  const ms = (a, b) => (a && b ? b.getTime() - a.getTime() : null);
  const min = (dates) => dates.length ? new Date(Math.min(...dates)) : null;
  const max = (dates) => dates.length ? new Date(Math.max(...dates)) : null;
  const received = moment(detail.received_at);
  const validated = moment(detail.validated_at);
  const accepted = moment(detail.accepted_at);
  const claimed = min(detail.jobs.map((j) => moment(j.started_at)).filter(Boolean));
  const sent = min(detail.submissions.map((s) => moment(s.sent_at)).filter(Boolean));
  const acked = max(detail.submissions.filter((s) => s.status === "acknowledged")
    .map((s) => moment(s.acked_at)).filter(Boolean));
  const finishedAt = detail.jobs.map((j) => moment(j.finished_at)).filter(Boolean);
  const allDone = detail.jobs.length > 0 && finishedAt.length === detail.jobs.length;
  out.push(["validate (received → validated)", "validate", ms(received, validated)]);
  out.push(["authorize, plan, commit (validated → accepted)", "accept", ms(validated, accepted)]);
  out.push(["claim (accepted → first job claimed)", "claim", ms(accepted, claimed)]);
  out.push(["first submission (claim → first request sent)", "first_submission",
            ms(claimed, sent)]);
  out.push(["acknowledged (first request → last acknowledgement)", "acknowledged",
            ms(sent, acked)]);
  out.push(["total (received → last job finished)", "total",
            allDone ? ms(received, max(finishedAt)) : null]);
  return out.filter(([, , value]) => value !== null);
}

function renderTimings(detail) {
  const list = $("timings");
  list.replaceChildren();
  const rowsOut = hops(detail);
  const ingest = state.drillTimings.get(detail.id);
  if (ingest) {
    for (const [name, value] of Object.entries(ingest)) {
      rowsOut.push([`ingest step: ${name}`, `ingest_${name}`, value]);
    }
  }
  for (const [label, key, value] of rowsOut) {
    list.append(el("dt", {}, label));
    list.append(el("dd", {"data-hop": key}, `${Number(value).toFixed(1)} ms`));
  }
  $("timings-none").hidden = rowsOut.length > 0;
}

// -- the map ----------------------------------------------------------------------------------

async function loadGeo(run) {
  const id = state.selectedId;
  $("map-desc").textContent = `Alert ${id}: loading the map…`;
  try {
    const geo = await api("GET", `api/v1/alerts/${id}/targeting.geojson`);
    if (run !== state.selectRun) return;
    clearError("map");
    state.geo = geo;
    state.view = fitView(geo);
    renderMap();
  } catch (error) {
    if (run !== state.selectRun) return;
    showError("map", `Loading the map of alert ${id}`, error);
    state.geo = null;
    renderMap(`The map could not be loaded: ${error.code}: ${error.message}`);
    refused(error);
  }
}

function colourOf(operator) {
  if (!state.operatorColours.has(operator)) {
    state.operatorColours.set(operator, PALETTE[state.operatorColours.size % PALETTE.length]);
  }
  return state.operatorColours.get(operator);
}

function* positions(geometry) {
  if (!geometry) return;
  const {type, coordinates} = geometry;
  if (type === "Polygon") for (const ring of coordinates) yield* ring;
  else if (type === "MultiPolygon") for (const p of coordinates) for (const r of p) yield* r;
  else if (type === "GeometryCollection") for (const g of geometry.geometries) yield* positions(g);
  else if (type === "Point") yield coordinates;
  else if (type === "LineString" || type === "MultiPoint") yield* coordinates;
}

/**
 * A projection fitted to `bounds` [lon0, lat0, lon1, lat1]: equirectangular, with the
 * longitudes squeezed by cos(mid-latitude) so that shapes keep their ground proportions.
 */
function makeView(bounds) {
  let [x0, y0, x1, y1] = bounds;
  const padX = Math.max((x1 - x0) * 0.06, 0.002);
  const padY = Math.max((y1 - y0) * 0.06, 0.002);
  x0 -= padX; x1 += padX; y0 -= padY; y1 += padY;
  const squash = Math.max(Math.cos(((y0 + y1) / 2) * Math.PI / 180), 0.1);
  const scale = Math.min(MAP_W / ((x1 - x0) * squash), MAP_H / (y1 - y0));
  const ox = (MAP_W - (x1 - x0) * squash * scale) / 2;
  const oy = (MAP_H - (y1 - y0) * scale) / 2;
  return {
    bounds: [x0, y0, x1, y1],
    project: ([lon, lat]) => [ox + (lon - x0) * squash * scale, oy + (y1 - lat) * scale],
    unproject: ([px, py]) => [x0 + (px - ox) / (squash * scale), y1 - (py - oy) / scale],
    extent: () => [x0 - ox / (squash * scale), y1 - (MAP_H - oy) / scale,
                   x0 + (MAP_W - ox) / (squash * scale), y1 + oy / scale],
  };
}

const WORLD = [-170, -58, 170, 75];

function fitView(geo) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const feature of geo.features || []) {
    for (const [lon, lat] of positions(feature.geometry)) {
      x0 = Math.min(x0, lon); x1 = Math.max(x1, lon);
      y0 = Math.min(y0, lat); y1 = Math.max(y1, lat);
    }
  }
  for (const [lon, lat] of drawnPoints()) {
    x0 = Math.min(x0, lon); x1 = Math.max(x1, lon);
    y0 = Math.min(y0, lat); y1 = Math.max(y1, lat);
  }
  return makeView(Number.isFinite(x0) ? [x0, y0, x1, y1] : WORLD);
}

function pathData(geometry, view) {
  const rings = [];
  const add = (ring) => {
    if (!ring.length) return;
    const pts = ring.map((p) => view.project(p).map((v) => v.toFixed(1)).join(","));
    rings.push(`M${pts.join("L")}Z`);
  };
  if (!geometry) return "";
  if (geometry.type === "Polygon") geometry.coordinates.forEach(add);
  else if (geometry.type === "MultiPolygon") geometry.coordinates.forEach((p) => p.forEach(add));
  else if (geometry.type === "GeometryCollection") {
    return geometry.geometries.map((g) => pathData(g, view)).join(" ");
  }
  return rings.join(" ");
}

/** A step of about a sixth of `span` from 1, 2, 5 times a power of ten. */
function gridStep(span) {
  const raw = span / 6;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function renderGrid(view) {
  const grid = $("map-grid");
  grid.replaceChildren();
  grid.setAttribute("class", "grid");
  const [x0, y0, x1, y1] = view.extent();
  const step = gridStep(Math.max(x1 - x0, y1 - y0));
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const fmt = (v, pos, neg) => `${Math.abs(v).toFixed(digits)}°${v >= 0 ? pos : neg}`;
  for (let lon = Math.ceil(x0 / step) * step; lon <= x1; lon += step) {
    const [px] = view.project([lon, y0]);
    grid.append(svg("line", {x1: px, y1: 0, x2: px, y2: MAP_H}));
    const label = svg("text", {x: px + 3, y: MAP_H - 5});
    label.textContent = fmt(lon, "E", "W");
    grid.append(label);
  }
  for (let lat = Math.ceil(y0 / step) * step; lat <= y1; lat += step) {
    const [, py] = view.project([x0, lat]);
    grid.append(svg("line", {x1: 0, y1: py, x2: MAP_W, y2: py}));
    const label = svg("text", {x: 4, y: py - 3});
    label.textContent = fmt(lat, "N", "S");
    grid.append(label);
  }
}

function renderMap(problem = "") {
  const view = state.view || (state.view = makeView(WORLD));
  renderGrid(view);
  const cellsLayer = $("map-cells");
  const areaLayer = $("map-area");
  const legend = $("legend");
  cellsLayer.replaceChildren();
  areaLayer.replaceChildren();
  legend.replaceChildren();
  const geo = state.geo;
  const note = $("map-note");
  note.textContent = problem;
  if (!geo) {
    $("map-desc").textContent = problem || "No alert selected.";
    renderDrawing();
    return;
  }
  const counts = new Map();  // operator -> {targeted, touched}
  const fragment = document.createDocumentFragment();
  let areas = 0;
  for (const feature of geo.features || []) {
    const props = feature.properties || {};
    if (props.role === "alert-area") {
      areaLayer.append(svg("path", {class: "area", d: pathData(feature.geometry, view)}));
      areas += 1;
      continue;
    }
    if (props.role !== "cell") continue;
    const operator = String(props.operator);
    const count = counts.get(operator) || {targeted: 0, touched: 0, planned: 0};
    const targeted = props.targeted === true;
    if (targeted) count.targeted += 1; else count.touched += 1;
    if (props.planned === true) count.planned += 1;
    counts.set(operator, count);
    const colour = colourOf(operator);
    const path = svg("path", {
      class: `cell ${targeted ? "targeted" : "touched"}`, d: pathData(feature.geometry, view),
      fill: colour, stroke: colour, "data-operator": operator,
      "data-cell-id": String(props.cell_id)});
    const title = svg("title");
    title.textContent = `${props.cell_id} (${operator})`
      + (targeted ? ", targeted" : ", touched, not targeted")
      + (props.planned ? ", in the jobs" : "");
    path.append(title);
    fragment.append(path);
  }
  cellsLayer.append(fragment);

  const areaItem = el("li", {"data-role": "alert-area"});
  const areaBox = svg("svg", {width: 18, height: 12, "aria-hidden": "true"});
  areaBox.append(svg("rect", {x: 1, y: 1, width: 16, height: 10, fill: "#d62728",
                              "fill-opacity": 0.1, stroke: "#c4161c", "stroke-width": 2}));
  areaItem.append(areaBox, "Alert area");
  legend.append(areaItem);
  let total = 0;
  for (const [operator, count] of counts) {
    total += count.targeted;
    const li = el("li", {"data-operator": operator, "data-targeted": String(count.targeted),
                         "data-touched": String(count.touched)});
    const box = svg("svg", {width: 18, height: 12, "aria-hidden": "true"});
    box.append(svg("rect", {x: 1, y: 1, width: 16, height: 10, fill: colourOf(operator),
                            "fill-opacity": 0.5, stroke: colourOf(operator)}));
    let text = `${operator}: ${plural(count.targeted, "targeted cell")}`;
    if (count.touched) text += ` (+${count.touched} touched, not targeted)`;
    li.append(box, text);
    legend.append(li);
  }
  if (counts.size === 0) legend.append(el("li", {}, "No cell targeted."));
  const km2 = geo.properties && geo.properties.area_km2;
  const [bx0, by0, bx1, by1] = view.bounds;
  note.textContent = (problem ? `${problem} ` : "")
    + (geo.properties && geo.properties.note ? `${geo.properties.note}. ` : "")
    + (areas ? "" : "The alert has no area to draw. ")
    + `${bx0.toFixed(3)}…${bx1.toFixed(3)}° longitude, ${by0.toFixed(3)}…${by1.toFixed(3)}° `
    + "latitude; north up."
    + (typeof km2 === "number" ? ` Area ${km2.toLocaleString()} km².` : "");
  $("map-desc").textContent = `Alert ${geo.properties && geo.properties.alert_id}: `
    + `the alert area and ${plural(total, "targeted cell")} of `
    + `${plural(counts.size, "operator")}.`;
  renderDrawing();
}

// -- drawing a drill area ----------------------------------------------------------------------

function drawnPoints() {
  const out = [];
  for (const line of $("drill-points").value.split("\n")) {
    const parts = line.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (parts.length === 2 && parts.every(Number.isFinite)) out.push(parts);
  }
  return out;
}

function renderDrawing() {
  const layer = $("map-drawing");
  layer.replaceChildren();
  const view = state.view;
  if (!view) return;
  const points = drawnPoints().map((p) => view.project(p));
  if (points.length >= 2) {
    const d = `M${points.map((p) => p.map((v) => v.toFixed(1)).join(",")).join("L")}`
      + (points.length >= 3 ? "Z" : "");
    layer.append(svg("path", {class: "draw-line", d}));
  }
  for (const [x, y] of points) layer.append(svg("circle", {class: "draw-point", cx: x, cy: y,
                                                           r: 4}));
}

function setDrawing(on) {
  state.drawing = on;
  $("draw-toggle").setAttribute("aria-pressed", String(on));
  $("draw-toggle").textContent = on ? "Stop drawing" : "Draw on the map";
  $("map").classList.toggle("drawing", on);
  if (!state.view) {
    state.view = makeView(WORLD);
    renderMap();
  }
}

function mapClick(event) {
  if (!state.drawing) return;
  const map = $("map");
  const matrix = map.getScreenCTM();
  if (!matrix) return;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  const [lon, lat] = state.view.unproject([point.x, point.y]);
  const area = $("drill-points");
  const text = area.value.replace(/\s+$/, "");
  area.value = (text ? `${text}\n` : "") + `${lon.toFixed(5)}, ${lat.toFixed(5)}`;
  renderDrawing();
}

// -- the drill form -----------------------------------------------------------------------------

async function loadFormChoices() {
  try {
    const data = await api("GET", "api/v1/operators");
    clearError("operators");
    const box = $("drill-operators");
    box.replaceChildren();
    data.operators.forEach((operator) => {
      colourOf(operator.name);  // colours follow the configured order
      const id = `drill-op-${operator.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      const input = el("input", {type: "checkbox", id, name: "operators",
                                 value: operator.name});
      box.append(el("label", {for: id}, input, operator.display_name || operator.name));
    });
    if (!data.operators.length) box.replaceChildren(el("span", {class: "muted"},
                                                       "No operator is configured."));
  } catch (error) {
    showError("operators", "Loading the operators", error);
    $("drill-operators").replaceChildren(el("span", {class: "muted"},
                                            "Operators could not be loaded."));
  }
  try {
    const data = await api("GET", "api/v1/authorities");
    clearError("authorities");
    const select = $("drill-authority");
    select.replaceChildren(el("option", {value: ""}, "the token's own authority"));
    for (const authority of data.authorities) {
      select.append(el("option", {value: authority.sender},
                       `${authority.name} (${authority.sender})`));
    }
  } catch (error) {
    showError("authorities", "Loading the authorities", error);
  }
}

/** The drill request from the form; a ConsoleError (code invalid-input) names what is wrong. */
function drillRequest() {
  const invalid = (message) => new ConsoleError(0, "invalid-input", message, "");
  const body = {};
  const text = $("drill-text").value.trim();
  if (!text) throw invalid("the message text is empty");
  body.text = text;
  const preset = $("drill-preset").value.trim();
  const lines = $("drill-points").value.split("\n").map((l) => l.trim()).filter(Boolean);
  if (preset && lines.length) throw invalid("give either points or a preset, not both");
  if (preset) {
    body.preset = preset;
  } else {
    const ring = lines.map((line, i) => {
      const parts = line.split(/[\s,;]+/).filter(Boolean).map(Number);
      if (parts.length !== 2 || !parts.every(Number.isFinite)) {
        throw invalid(`point ${i + 1} ("${line}") is not "longitude, latitude"`);
      }
      const [lon, lat] = parts;
      if (lon < -180 || lon > 180 || lat < -90 || lat > 90) {
        throw invalid(`point ${i + 1} (${lon}, ${lat}) is outside -180..180, -90..90`);
      }
      return parts;
    });
    const [first] = ring;
    const last = ring[ring.length - 1];
    if (ring.length > 1 && (first[0] !== last[0] || first[1] !== last[1])) ring.push(first);
    if (ring.length < 4) {
      throw invalid("an area needs at least 3 points (draw them on the map or type them), "
                    + "or a preset");
    }
    body.area = {type: "Polygon", coordinates: [ring]};
  }
  const operators = [...document.querySelectorAll("#drill-operators input:checked")]
    .map((input) => input.value);
  if (operators.length) body.operators = operators;
  const channel = $("drill-channel").value.trim();
  if (channel) {
    const number = Number(channel);
    if (!Number.isInteger(number) || number < 0 || number > 65535) {
      throw invalid(`channel ${channel} is not a message identifier (0..65535)`);
    }
    body.channel = number;
  }
  const authority = $("drill-authority").value;
  if (authority) body.authority = authority;
  return body;
}

/** A failed drill: in the error list and next to the button that was pressed. */
function drillFailed(what, error) {
  showError("drill", what, error);
  const inline = $("drill-error");
  const status = error instanceof ConsoleError && error.status ? `HTTP ${error.status} ` : "";
  inline.textContent = `The drill was not run: ${status}${error.code || "error"}: `
    + `${error.message}`;
  inline.hidden = false;
}

async function submitDrill(event) {
  event.preventDefault();
  $("drill-error").hidden = true;
  let body;
  try {
    body = drillRequest();
  } catch (error) {
    drillFailed("Checking the drill", error);
    return;
  }
  const button = $("drill-submit");
  button.disabled = true;
  notice("");
  try {
    // An earlier drill's error stays until dismissed: the manager may not have read it yet.
    const result = await api("POST", "api/v1/drills", body);
    state.drillTimings.set(result.alert_id, result.ingest && result.ingest.timings_ms || {});
    const jobs = result.jobs ? result.jobs.total : 0;
    notice(`Drill alert ${result.alert_id} accepted with ${plural(jobs, "job")}`
           + (result.channel !== null && result.channel !== undefined
             ? ` on channel ${result.channel}` : "")
           + "." + (result.notes && result.notes.length ? ` ${result.notes.join(" ")}` : ""));
    $("drill-points").value = "";
    setDrawing(false);
    refreshList();
    await selectAlert(result.alert_id, true);
  } catch (error) {
    drillFailed("Running the drill", error);
    refused(error);
  } finally {
    button.disabled = false;
  }
}

// -- cancel -----------------------------------------------------------------------------------

function openCancel() {
  const detail = state.detail;
  if (!detail) return;
  $("cancel-text").textContent = `Alert ${detail.id} (${detail.event || detail.msg_type}, `
    + `${detail.sender}) will be cancelled: a CAP Cancel is sent from its authority and `
    + "every broadcast of it stops. This cannot be undone.";
  $("cancel-note").value = "";
  const dialog = $("cancel-dialog");
  dialog.dataset.alertId = String(detail.id);
  // Escape closes a dialog without setting returnValue: an earlier "confirm" must not stay.
  dialog.returnValue = "";
  dialog.showModal();
}

async function closeCancel() {
  const dialog = $("cancel-dialog");
  if (dialog.returnValue !== "confirm") return;
  const id = Number(dialog.dataset.alertId);
  const note = $("cancel-note").value.trim();
  notice("");
  try {
    const result = await api("POST", `api/v1/alerts/${id}/cancel`, note ? {note} : {});
    notice(`Alert ${id} cancelled: the Cancel is alert ${result.id} `
           + `(${plural(result.jobs, "job")}).`);
    refreshList();
    if (state.selectedId === id) loadDetail(state.selectRun);
  } catch (error) {
    showError("cancel", `Cancelling alert ${id}`, error);
    refused(error);
  }
}

// -- start ------------------------------------------------------------------------------------

function init() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    input.value = "";
    if (!token) {
      showError("token", "Using the token",
                new ConsoleError(0, "invalid-input", "the token field is empty", ""));
      return;
    }
    clearError("token");
    startSession(token);
  });
  $("token-forget").addEventListener("click", () => {
    endSession("Token forgotten. Enter a token to start.");
    notice("");
  });
  for (const id of ["filter-status", "filter-state"]) {
    $(id).addEventListener("change", () => refreshList());
  }
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("map").addEventListener("click", mapClick);
  $("draw-toggle").addEventListener("click", () => setDrawing(!state.drawing));
  $("draw-undo").addEventListener("click", () => {
    const lines = $("drill-points").value.split("\n").filter((l) => l.trim());
    lines.pop();
    $("drill-points").value = lines.join("\n");
    renderDrawing();
  });
  $("draw-clear").addEventListener("click", () => {
    $("drill-points").value = "";
    renderDrawing();
  });
  $("drill-points").addEventListener("input", renderDrawing);
  $("drill-form").addEventListener("submit", submitDrill);
  $("cancel-button").addEventListener("click", openCancel);
  $("cancel-dialog").addEventListener("close", closeCancel);
  renderMap();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) startSession(saved);
}

init();
