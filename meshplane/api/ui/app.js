// The dashboard: polls the REST API every 2 s and renders it. All data -> view decisions live in
// view.js (pure, tested with node); this module only fetches, builds HTML and wires events. The
// History section is history.js, handed this module's helpers.

import {
  absoluteTime,
  accessView,
  authMessage,
  canRead,
  canRotate,
  certState,
  destinationShares,
  edgeCertView,
  errorMessages,
  esc,
  explainBody,
  hasExplain,
  invalidNotes,
  labelText,
  matchText,
  proxyLabel,
  proxyState,
  relativeTime,
  revisionFromHash,
  rotateBody,
  servicesView,
  shortVersion,
  stateCounts,
  tokenFromHash,
  typeColumns,
  typeState,
} from "./view.js";
import { historySection } from "./history.js";

const API = "/api/v1";
const POLL_MS = 2000;
const SOURCES = {
  server: "/server",
  services: "/services",
  endpoints: "/endpoints",
  gateways: "/gateways",
  routes: "/routes",
  policies: "/authorization-policies",
  meshes: "/meshes",
  proxies: "/proxies",
  certificates: "/certificates",
  ca: "/ca",
  edge: "/tls-certificates",
};

const TOKEN_KEY = "meshplane-token"; // the tab's session storage: gone when the tab closes
const state = { data: {}, errors: {}, updatedAt: null, down: null, busy: false, timer: null };
const session = { token: null, me: null };
const rendered = new Map();
let rotateNote = null;

class ApiError extends Error {}

async function call(method, path, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (session.token) init.headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok) {
    const message = errorMessages(json, response.status).join("; ");
    if (response.status === 401) signOut(authMessage(401, json?.detail));
    throw new ApiError(authMessage(response.status, message) ?? message);
  }
  return json;
}

// ---- signing in --------------------------------------------------------------------------------

function showSignIn(message) {
  document.getElementById("signin-section").hidden = false;
  document.getElementById("dashboard").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  const note = document.getElementById("signin-message");
  note.hidden = !message;
  note.textContent = message ?? "";
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.me = null;
  clearTimeout(state.timer);
  showSignIn(message);
}

async function signIn(token) {
  session.token = token;
  let me;
  try {
    me = await call("GET", `${API}/tokens/me`);
  } catch (error) {
    if (session.token) signOut(error.message);
    return;
  }
  if (!canRead(me.role)) {
    signOut(`Not allowed with this token: a ${me.role} token cannot read the dashboard.`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  session.me = me;
  document.getElementById("signin-section").hidden = true;
  document.getElementById("dashboard").hidden = false;
  document.getElementById("who").textContent = `${me.name} (${me.role}${canRotate(me.role) ? "" : ", read only"})`;
  document.getElementById("signout").hidden = false;
  for (const b of document.querySelectorAll("button[data-rotate]")) b.hidden = !canRotate(me.role);
  rendered.clear();
  historyPanel.reset();
  refresh();
}

// ---- polling ---------------------------------------------------------------------------------

async function refresh() {
  if (state.busy || !session.token) return;
  state.busy = true;
  clearTimeout(state.timer);
  try {
    const names = Object.keys(SOURCES);
    const results = await Promise.allSettled(names.map((n) => call("GET", API + SOURCES[n])));
    let anyOk = false;
    results.forEach((result, i) => {
      if (result.status === "fulfilled") {
        state.data[names[i]] = result.value;
        delete state.errors[names[i]];
        anyOk = true;
      } else {
        state.errors[names[i]] = result.reason?.message ?? String(result.reason);
      }
    });
    if (anyOk) {
      state.updatedAt = Date.now();
      state.down = null;
    } else {
      state.down = state.errors.server ?? "no answer";
    }
    render();
    await historyPanel.poll(state.data.server?.revision);
  } finally {
    state.busy = false;
    if (document.getElementById("live").checked) state.timer = setTimeout(refresh, POLL_MS);
  }
}

function put(id, html) {
  // Replace a section only when its markup changed, so a click is never lost to a re-render.
  if (rendered.get(id) === html) return;
  rendered.set(id, html);
  document.getElementById(id).innerHTML = html;
}

const items = (name) => state.data[name]?.items ?? [];

function failed(name, what) {
  const error = state.errors[name];
  if (error === undefined || state.data[name] !== undefined) return null;
  return `<p class="empty error">Could not load ${esc(what)}: ${esc(error)}</p>`;
}

function when(time, now) {
  if (!time) return '<span class="muted">-</span>';
  return `<time title="${esc(absoluteTime(time))}">${esc(relativeTime(time, now))}</time>`;
}

const pill = (cls, text, title = "") =>
  `<span class="pill ${esc(cls)}"${title ? ` title="${esc(title)}"` : ""}>${esc(text)}</span>`;

const labels = (map) =>
  Object.entries(map ?? {})
    .map(([k, v]) => `<span class="label">${esc(k)}=${esc(v)}</span>`)
    .join(" ");

// ---- sections ----------------------------------------------------------------------------------

function render() {
  const now = Date.now();
  renderHeader(now);
  put("invalid-resources", invalidBanner());
  put("overview", overview(now));
  put("services", failed("services", "services") ?? services());
  put("proxies", failed("proxies", "proxies") ?? proxies(now));
  put("routes", failed("routes", "routes") ?? routes(now));
  put("gateways", failed("gateways", "gateways") ?? gateways());
  put("rotate-result", rotateResult(now));
  put("certificates", failed("certificates", "certificates") ?? certificates(now));
  put("ca", failed("ca", "the CA") ?? ca(now));
  put("edge-certificates", failed("edge", "edge certificates") ?? edgeCertificates(now));
  put("access", failed("policies", "authorization policies") ?? access());
  historyPanel.render(now);
  explainChoices();
}

function renderHeader(now) {
  const server = state.data.server;
  const domain = state.data.ca?.trust_domain;
  const bits = [];
  if (server) bits.push(`v${server.version}`, `revision ${server.revision}`);
  if (server?.database === "unreachable") bits.push("database unreachable: the API answers 503, Envoys keep their config");
  if (domain) bits.push(domain);
  document.getElementById("server-info").textContent = bits.join(" · ");
  const fresh = document.getElementById("freshness");
  const banner = document.getElementById("api-error");
  if (state.down) {
    fresh.className = "freshness bad";
    fresh.textContent = state.updatedAt
      ? `API unreachable; data from ${relativeTime(state.updatedAt, now)}`
      : "API unreachable";
    banner.hidden = false;
    banner.textContent = `The control plane's API does not answer: ${state.down}`;
  } else {
    fresh.className = "freshness";
    fresh.textContent = state.updatedAt ? `updated ${relativeTime(state.updatedAt, now)}` : "";
    banner.hidden = true;
  }
}

function invalidBanner() {
  const notes = invalidNotes(state.data.server);
  document.getElementById("invalid-resources").hidden = notes.length === 0;
  if (!notes.length) return "";
  const what =
    notes.length === 1
      ? "1 stored resource no longer validates"
      : `${notes.length} stored resources no longer validate`;
  return `<strong>${esc(what)}</strong>: proxies are not sent it, nor what refers to it, until a
    PUT of a valid spec or a DELETE fixes it.<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>`;
}

function card(title, value, detail, cls = "") {
  return `<div class="card ${esc(cls)}"><div class="card-title">${esc(title)}</div>
    <div class="card-value">${value}</div><div class="card-detail">${detail}</div></div>`;
}

function overview(now) {
  const rows = servicesView(items("services"), items("endpoints"), items("proxies"));
  const endpoints = rows.reduce((n, r) => n + r.summary.total, 0);
  const up = rows.reduce((n, r) => n + r.summary.up, 0);
  const down = rows.reduce((n, r) => n + r.summary.down, 0);
  const counts = stateCounts(items("proxies"));
  const certs = items("certificates");
  const soonest = certs.map((c) => c.not_after).sort()[0];
  const phase = state.data.ca?.phase;
  const mesh = items("meshes").find((m) => m.name === "default");
  const proxyDetail = [
    counts.SYNCED ? `<span class="ok-text">${counts.SYNCED} synced</span>` : "",
    counts.STALE ? `<span class="warn-text">${counts.STALE} stale</span>` : "",
    counts.NACKED ? `<span class="bad-text">${counts.NACKED} nacked</span>` : "",
  ].filter(Boolean);
  let proxyCls = "ok";
  if (counts.NACKED) proxyCls = "bad";
  else if (counts.STALE) proxyCls = "warn";
  return [
    card("Services", rows.length, `${endpoints} endpoints`),
    card(
      "Endpoints up",
      `${up}<span class="of">/${endpoints}</span>`,
      down ? `<span class="bad-text">${down} down</span>` : "sidecars connected",
      down ? "bad" : "ok",
    ),
    card("Proxies", items("proxies").length, proxyDetail.join(" · ") || "none connected", proxyCls),
    state.data.certificates === undefined && state.errors.certificates
      ? card("Certificates", "-", esc(state.errors.certificates), "warn")
      : card(
          "Certificates",
          certs.length,
          soonest ? `first expiry ${when(soonest, now)}` : "none issued yet",
        ),
    card(
      "CA",
      esc(phase ?? "-"),
      state.data.ca ? `${state.data.ca.roots.length} root(s)` : esc(state.errors.ca ?? ""),
      phase && phase !== "idle" ? "warn" : "ok",
    ),
    card("mTLS", esc(mesh?.spec?.mtls ?? "strict"), mesh ? "mesh default" : "built-in default"),
  ].join("");
}

function services() {
  const invalid = state.data.services?.invalid ?? [];
  const rows = servicesView(items("services"), items("endpoints"), items("proxies"), invalid);
  if (!rows.length) return '<p class="empty">No services yet.</p>';
  const healthPill = { up: ["ok", "up"], down: ["bad", "down"], unknown: ["idle", "unobserved"] };
  const summaryPill = {
    ok: ["ok", "healthy"],
    degraded: ["warn", "degraded"],
    down: ["bad", "down"],
    empty: ["bad", "no endpoints"],
    invalid: ["bad", "invalid"],
  };
  const body = rows
    .map((row) => {
      const spec = row.spec ?? {};
      const [cls, text] = summaryPill[row.summary.state];
      const span = Math.max(row.endpoints.length, 1);
      const head = `<td rowspan="${span}" class="group">
          <div class="name">${esc(row.name)} ${pill(cls, text, row.invalid ?? "")}</div>
          <div class="muted small">${row.invalid !== undefined
            ? "stored spec no longer validates: not sent to proxies"
            : `${esc(spec.protocol ?? "?")} · ${esc(spec.lb_policy ?? "")}
          · ${row.summary.up}/${row.summary.total} up${row.source === "auto" ? " · auto-created" : ""}`}</div>
        </td>`;
      if (!row.endpoints.length) {
        return `<tr class="group-start">${head}<td colspan="6" class="muted">no endpoints: requests get 503</td></tr>`;
      }
      return row.endpoints
        .map((ep, i) => {
          const s = ep.spec ?? {};
          const [hcls, htext] = healthPill[ep.health.state];
          return `<tr${i === 0 ? ' class="group-start"' : ""}>${i === 0 ? head : ""}
            <td>${pill(hcls, htext, ep.health.text)}</td>
            <td class="mono">${esc(ep.name)}</td>
            <td class="mono">${esc(s.address)}:${esc(s.port)}</td>
            <td>${labels(s.labels) || '<span class="muted">-</span>'}${s.zone ? ` <span class="label zone">zone=${esc(s.zone)}</span>` : ""}</td>
            <td class="num">${esc(s.weight ?? 1)}</td>
            <td>${pill(ep.source === "auto" ? "auto" : "api", ep.source, ep.source === "auto" ? "registered by its sidecar" : "written through the API")}
              ${s.sidecar ? pill("sidecar", "sidecar", "reached over mutual TLS") : pill("idle", "plain", "no sidecar: plaintext")}</td>
          </tr>`;
        })
        .join("");
    })
    .join("");
  return `<table><thead><tr><th>Service</th><th>Health</th><th>Endpoint</th><th>Address</th>
    <th>Labels</th><th class="num">Weight</th><th>Source</th></tr></thead><tbody>${body}</tbody></table>`;
}

function typeCell(type) {
  if (!type) return '<td class="muted">-</td>';
  const st = typeState(type);
  const lines = [
    `sent ${type.sent_version ?? "nothing"}`,
    `acked ${type.acked_version ?? "nothing"}`,
    `${type.resources} resource(s)`,
  ];
  if (type.last_nack) {
    lines.push(`last NACK of ${type.last_nack.version} at ${absoluteTime(type.last_nack.at)}: ${type.last_nack.error}`);
  }
  return `<td>${pill(st.toLowerCase(), st, lines.join("\n"))}
    <span class="muted small" title="resources">${esc(type.resources)}</span></td>`;
}

function proxies(now) {
  const list = [...items("proxies")].sort((a, b) => a.node_id.localeCompare(b.node_id));
  if (!list.length) return '<p class="empty">No proxy is connected.</p>';
  const columns = typeColumns(list);
  const width = 7 + columns.length;
  const body = list
    .map((p) => {
      const byType = new Map((p.types ?? []).map((t) => [t.type, t]));
      const overall = proxyState(p);
      const nacks = (p.types ?? [])
        .filter((t) => typeState(t) === "NACKED")
        .map(
          (t) => `<tr class="nack-row"><td></td><td colspan="${width - 1}">
            <strong>${esc(t.type)}</strong> version <span class="mono">${esc(shortVersion(t.last_nack.version))}</span>
            rejected ${when(t.last_nack.at, now)}; the proxy keeps serving
            <span class="mono">${esc(shortVersion(t.acked_version))}</span>
            <pre class="nack-error">${esc(t.last_nack.error)}</pre></td></tr>`,
        )
        .join("");
      const denied = p.denied_secrets
        ? ` ${pill("bad", `${p.denied_secrets} denied secret(s)`, "asked for secrets of another identity")}`
        : "";
      return `<tr class="group-start">
          <td>${pill(overall.toLowerCase(), overall)}</td>
          <td class="mono">${esc(p.node_id)}${denied}</td>
          <td>${esc(proxyLabel(p))}</td>
          <td class="mono">${esc(p.address ?? "-")}</td>
          <td>${esc(p.transport)}</td>
          <td class="mono">${esc(p.replica ?? "-")}</td>
          <td>${when(p.connected_since, now)}</td>
          ${columns.map((c) => typeCell(byType.get(c))).join("")}
        </tr>${nacks}`;
    })
    .join("");
  return `<table><thead><tr><th>State</th><th>Node</th><th>Role</th><th>Address</th>
    <th>Transport</th><th>Replica</th><th>Connected</th>${columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead>
    <tbody>${body}</tbody></table>`;
}

function routes(now) {
  const list = items("routes");
  if (!list.length) return '<p class="empty">No routes: gateways answer 404, sidecars route by service name.</p>';
  const body = list
    .map((r) => {
      const spec = r.spec ?? {};
      const where = spec.gateways?.length
        ? spec.gateways.map((g) => `<span class="label">gateway ${esc(g)}</span>`).join(" ")
        : '<span class="label mesh">mesh sidecars</span>';
      const hosts = spec.hosts?.length ? spec.hosts.map(esc).join(", ") : '<span class="muted">all</span>';
      const dests = destinationShares(spec.destinations ?? [])
        .map(
          (d) => `<div class="dest"><span class="dest-name">${esc(d.service)}${
            labelText(d.labels) ? ` <span class="muted">${esc(labelText(d.labels))}</span>` : ""
          }</span><span class="bar"><span style="width:${d.percent}%"></span></span>
          <span class="num">${d.percent}%</span></div>`,
        )
        .join("");
      const other = [];
      if (spec.redirect) other.push("redirect");
      if (spec.direct_response) other.push("direct response");
      return `<tr><td class="name">${esc(r.name)}</td><td>${where}</td><td>${hosts}</td>
        <td class="mono">${esc(matchText(spec.match))}</td>
        <td class="dests">${dests || esc(other.join(", ")) || '<span class="muted">-</span>'}</td>
        <td>${esc(spec.timeout ?? "")}</td><td>${when(r.updated_at, now)}</td></tr>`;
    })
    .join("");
  return `<table><thead><tr><th>Route</th><th>Applies to</th><th>Hosts</th><th>Match</th>
    <th>Destinations</th><th>Timeout</th><th>Changed</th></tr></thead><tbody>${body}</tbody></table>`;
}

function gateways() {
  const list = items("gateways");
  if (!list.length) return '<p class="empty">No gateways.</p>';
  const body = list
    .map((g) => {
      const spec = g.spec ?? {};
      const attached = items("routes").filter((r) => (r.spec?.gateways ?? []).includes(g.name));
      const envoys = items("proxies").filter((p) => p.role === "gateway" && p.gateway === g.name);
      const proxiesHtml = envoys.length
        ? envoys.map((p) => `${pill(proxyState(p).toLowerCase(), proxyState(p))} <span class="mono">${esc(p.node_id)}</span>`).join("<br>")
        : pill("bad", "no proxy connected");
      return `<tr><td class="name">${esc(g.name)}</td><td class="mono">${listens(spec)}</td>
        <td>${(spec.hosts ?? []).map(esc).join(", ")}</td>
        <td>${attached.map((r) => esc(r.name)).join(", ") || '<span class="muted">none</span>'}</td>
        <td>${proxiesHtml}</td></tr>`;
    })
    .join("");
  return `<table><thead><tr><th>Gateway</th><th>Listens on</th><th>Hosts</th><th>Routes</th>
    <th>Proxies</th></tr></thead><tbody>${body}</tbody></table>`;
}

function listens(spec) {
  // What the gateway speaks on its port: http (or a redirect to https), https with its
  // certificates, tls passthrough, tcp.
  const where = `${esc(spec.protocol ?? "http")} ${esc(spec.address)}:${esc(spec.port)}`;
  if (spec.https_redirect) return `${where} <span class="muted">→ https:${esc(spec.https_redirect.port)}</span>`;
  const names = spec.tls?.certificates ?? [];
  return names.length ? `${where} <span class="muted">${names.map(esc).join(", ")}</span>` : where;
}

function certificates(now) {
  const list = [...items("certificates")].sort((a, b) => a.subject.localeCompare(b.subject));
  if (!list.length) return '<p class="empty">No certificates yet: one is issued when a proxy of an identity connects.</p>';
  const roots = new Map((state.data.ca?.roots ?? []).map((r) => [r.serial, r]));
  const standing = {
    ok: ["ok", "valid"],
    "renewal-due": ["warn", "renewal due"],
    expired: ["bad", "expired"],
    "not-yet": ["warn", "not yet valid"],
  };
  const body = list
    .map((c) => {
      const [cls, text] = standing[certState(c, now)];
      const root = roots.get(c.issuer_serial);
      return `<tr><td><div class="name">${esc(c.subject)}</div><div class="muted small mono">${esc(c.spiffe_id)}</div></td>
        <td>${pill(cls, text)}</td>
        <td class="mono" title="${esc(c.serial)}">${esc(shortVersion(c.serial))}</td>
        <td class="mono" title="${esc(c.issuer_serial)}">${esc(shortVersion(c.issuer_serial))}${root ? ` <span class="muted">root ${esc(root.id)}, ${esc(root.state)}</span>` : ""}</td>
        <td>${when(c.not_before, now)}</td><td>${when(c.not_after, now)}</td><td>${when(c.next_renewal, now)}</td>
        <td>${canRotate(session.me?.role) ? `<button type="button" class="action" data-rotate="${esc(c.subject)}">Rotate</button>` : ""}</td></tr>`;
    })
    .join("");
  return `<table><thead><tr><th>Identity</th><th>Status</th><th>Serial</th><th>Issuer</th>
    <th>Valid from</th><th>Expires</th><th>Next renewal</th><th></th></tr></thead><tbody>${body}</tbody></table>`;
}

function edgeCertificates(now) {
  const list = items("edge").map((c) => edgeCertView(c, now));
  if (!list.length) return '<p class="empty">No edge certificates: an https gateway presents one (kind tls-certificate).</p>';
  const standing = {
    ok: ["ok", "valid"],
    "renewal-due": ["warn", "renewal due"],
    expiring: ["warn", "expires soon"],
    expired: ["bad", "expired"],
    "not-yet": ["warn", "not yet valid"],
    pending: ["idle", "not issued yet"],
  };
  const body = list
    .map((c) => {
      const [cls, text] = standing[c.state];
      return `<tr><td class="name">${esc(c.name)}</td><td>${c.hosts.map(esc).join(", ")}</td>
        <td>${pill(cls, text)}</td><td>${esc(c.issuer)}</td><td>${when(c.notAfter, now)}</td>
        <td>${c.renewsAt ? when(c.renewsAt, now) : '<span class="muted">by its operators</span>'}</td>
        <td>${c.usedBy.map(esc).join(", ") || '<span class="muted">no gateway</span>'}</td></tr>`;
    })
    .join("");
  return `<table><thead><tr><th>Certificate</th><th>Hosts</th><th>Status</th><th>Issuer</th>
    <th>Expires</th><th>Renewal</th><th>Used by</th></tr></thead><tbody>${body}</tbody></table>`;
}

function ca(now) {
  const status = state.data.ca;
  if (!status) return '<p class="empty">No CA status yet.</p>';
  const phaseCls = status.phase === "idle" ? "ok" : "warn";
  const rootState = { issuing: "ok", incoming: "warn", outgoing: "warn", retired: "idle" };
  const rows = status.roots
    .map(
      (r) => `<tr><td class="num">${esc(r.id)}</td><td>${esc(r.subject)}</td>
      <td class="mono" title="${esc(r.serial)}">${esc(shortVersion(r.serial))}</td>
      <td>${pill(rootState[r.state] ?? "idle", r.state)}</td>
      <td>${when(r.not_before, now)}</td><td>${when(r.not_after, now)}</td>
      <td>${r.retire_at ? when(r.retire_at, now) : '<span class="muted">-</span>'}</td></tr>`,
    )
    .join("");
  return `<p class="ca-line">Phase ${pill(phaseCls, status.phase)}
      ${status.detail ? `<span>${esc(status.detail)}</span>` : ""}
      <span class="muted">trust domain <span class="mono">${esc(status.trust_domain)}</span>,
      identity version ${esc(status.identity_version)}</span></p>
    <table><thead><tr><th class="num">Root</th><th>Subject</th><th>Serial</th><th>State</th>
    <th>Valid from</th><th>Expires</th><th>Retires</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function access() {
  const view = accessView(items("policies"), items("services"));
  if (!view.length) return '<p class="empty">No services.</p>';
  const rule = (r) =>
    `<div class="rule">${r.callers.map(esc).join(", ")}${r.paths.length ? ` <span class="muted">paths ${esc(r.paths.join(" "))}</span>` : ""}${
      r.methods.length ? ` <span class="muted">${esc(r.methods.join("|"))}</span>` : ""
    } <span class="muted small">(${esc(r.policy)})</span></div>`;
  const body = view
    .map(
      (t) => `<tr><td class="name">${esc(t.target)}</td>
      <td>${t.allow.length ? t.allow.map(rule).join("") : '<span class="muted">any mesh caller (no allow policy)</span>'}</td>
      <td>${t.deny.length ? t.deny.map(rule).join("") : '<span class="muted">-</span>'}</td></tr>`,
    )
    .join("");
  return `<table><thead><tr><th>Service</th><th>Allowed callers</th><th>Denied</th></tr></thead>
    <tbody>${body}</tbody></table>`;
}

// ---- certificate rotation ----------------------------------------------------------------------

async function rotate(button) {
  const subject = button.dataset.rotate;
  if (subject === "*" && !window.confirm("Issue new certificates for every identity now?")) return;
  const before = new Map(items("certificates").map((c) => [c.subject, c.serial]));
  button.disabled = true;
  try {
    const result = await call("POST", `${API}/certificates/rotate`, rotateBody(subject));
    const text =
      subject === "*"
        ? `Rotated ${result.items.length} identities; each proxy receives its new certificate over SDS.`
        : result.items
            .map((c) => `Rotated ${esc(c.subject)}: serial <span class="mono">${esc(shortVersion(before.get(c.subject)))}</span>
              → <span class="mono">${esc(shortVersion(c.serial))}</span>`)
            .join("; ");
    rotateNote = { cls: "ok", text, at: Date.now() };
  } catch (error) {
    rotateNote = { cls: "error", text: `Rotating ${esc(subject)} failed: ${esc(error.message)}`, at: Date.now() };
  } finally {
    button.disabled = false;
  }
  await refresh();
}

function rotateResult(now) {
  // The last rotation's outcome, shown for a minute.
  if (!rotateNote || now - rotateNote.at > 60000) return "";
  return `<div class="banner ${rotateNote.cls}">${rotateNote.text}
    <span class="muted small">${esc(relativeTime(rotateNote.at, now))}</span></div>`;
}

// ---- explain -----------------------------------------------------------------------------------

async function detectExplain() {
  try {
    const openapi = await call("GET", "/openapi.json");
    const present = hasExplain(openapi);
    document.getElementById("explain-section").hidden = !present;
    document.getElementById("explain-nav").hidden = !present;
  } catch {
    // Without the schema the form stays hidden; the rest of the page does not need it.
  }
}

function explainChoices() {
  const select = document.getElementById("explain-from");
  const options = [
    ...items("gateways").map((g) => [`gateway:${g.name}`, `gateway ${g.name}`]),
    ...items("services").map((s) => [`source:${s.name}`, `sidecar of ${s.name}`]),
  ];
  const key = JSON.stringify(options);
  if (select.dataset.key !== key) {
    const chosen = select.value;
    select.innerHTML = options.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join("");
    if (options.some(([v]) => v === chosen)) select.value = chosen;
    select.dataset.key = key;
  }
  const hosts = new Set(items("services").map((s) => s.name));
  for (const r of items("routes")) for (const h of r.spec?.hosts ?? []) hosts.add(h);
  for (const g of items("gateways")) for (const h of g.spec?.hosts ?? []) if (h !== "*") hosts.add(h);
  put("explain-hosts", [...hosts].sort().map((h) => `<option value="${esc(h)}">`).join(""));
}

const OUTCOME = {
  forwarded: "ok",
  redirected: "warn",
  direct_response: "warn",
  no_route: "bad",
  unavailable: "bad",
};

function explanation(x) {
  const candidates = (x.candidates ?? [])
    .map(
      (c, i) => `<tr class="${c.chosen ? "chosen" : ""}"><td class="num">${i + 1}</td><td class="name">${esc(c.route)}</td>
      <td>${c.chosen ? pill("ok", "chosen") : c.matched ? pill("warn", "matches") : pill("idle", "no match")}</td>
      <td>${(c.reasons ?? []).map(esc).join("<br>")}</td></tr>`,
    )
    .join("");
  const dests = (x.destinations ?? [])
    .map(
      (d) => `<tr><td class="name">${esc(d.service)} <span class="muted">${esc(labelText(d.labels))}</span></td>
      <td><div class="dest"><span class="bar"><span style="width:${Number(d.percent) || 0}%"></span></span>
        <span class="num">${esc(d.percent)}%</span></div></td>
      <td class="mono small">${esc(d.cluster)}</td>
      <td>${(d.endpoints ?? []).map((e) => `<span class="mono">${esc(e.address)}</span> ${labels(e.labels)}`).join("<br>") || pill("bad", "none")}</td>
      <td class="small">${esc(d.policies?.lb_policy ?? "")}</td></tr>`,
    )
    .join("");
  const facts = [
    ["proxy", x.proxy],
    ["virtual host", x.virtual_host],
    ["forwarded path", x.path],
    ["host rewritten to", x.host_rewrite],
    ["location", x.location],
    ["body", x.body],
  ]
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd class="mono">${esc(v)}</dd>`)
    .join("");
  const policies = Object.entries(x.policies ?? {}).filter(
    ([, v]) => v !== null && !(Array.isArray(v) && v.length === 0),
  );
  return `<div class="explain-answer">
    <p class="summary">${pill(OUTCOME[x.outcome] ?? "idle", x.status ? `${x.outcome} · ${x.status}` : x.outcome)}
      ${esc(x.summary)}</p>
    <dl class="facts">${facts}</dl>
    ${candidates ? `<h4>Routes tried, in order</h4><table><thead><tr><th class="num">#</th><th>Route</th><th>Result</th><th>Why not</th></tr></thead><tbody>${candidates}</tbody></table>` : ""}
    ${dests ? `<h4>Destinations</h4><table><thead><tr><th>Service</th><th>Share</th><th>Cluster</th><th>Endpoints</th><th>LB</th></tr></thead><tbody>${dests}</tbody></table>` : ""}
    ${policies.length ? `<h4>Route policies</h4><dl class="facts">${policies.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="mono">${esc(typeof v === "object" ? JSON.stringify(v) : v)}</dd>`).join("")}</dl>` : ""}
    <details><summary>Raw answer</summary><pre>${esc(JSON.stringify(x, null, 2))}</pre></details>
  </div>`;
}

async function submitExplain(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const out = document.getElementById("explain-result");
  const ask = explainBody({
    from: form.get("from"),
    host: form.get("host"),
    path: form.get("path"),
    method: form.get("method"),
    headers: form.get("headers"),
  });
  if (ask.errors) {
    out.innerHTML = `<div class="banner error">${ask.errors.map(esc).join("<br>")}</div>`;
    return;
  }
  out.innerHTML = '<p class="muted">asking&hellip;</p>';
  try {
    out.innerHTML = explanation(await call("POST", `${API}/explain`, ask.body));
  } catch (error) {
    out.innerHTML = `<div class="banner error">${esc(error.message)}</div>`;
  }
}

// ---- history ------------------------------------------------------------------------------------

const historyPanel = historySection({
  api: API,
  call,
  put,
  pill,
  when,
  role: () => session.me?.role,
  refresh,
});

// ---- wiring ------------------------------------------------------------------------------------

function start() {
  document.getElementById("refresh").addEventListener("click", () => refresh());
  document.getElementById("live").addEventListener("change", (event) => {
    if (event.target.checked) refresh();
    else clearTimeout(state.timer);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-rotate]");
    if (button && !button.disabled) rotate(button);
  });
  document.getElementById("explain-form").addEventListener("submit", submitExplain);
  document.getElementById("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = event.target.elements.token;
    const token = field.value.trim();
    field.value = "";
    if (token) signIn(token);
  });
  document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
  detectExplain();
  const handed = tokenFromHash(window.location.hash);
  if (handed) {
    // Take the token out of the address; a revision named with it (#token=...&revision=N) stays.
    const revision = revisionFromHash(window.location.hash);
    const rest = revision === null ? "" : `#revision=${revision}`;
    history.replaceState(null, "", window.location.pathname + window.location.search + rest);
  }
  const token = handed ?? sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else showSignIn(null);
}

start();
