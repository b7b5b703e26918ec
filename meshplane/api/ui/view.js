// Data -> view logic of the dashboard: pure functions of the API's JSON and a clock reading.
// No DOM and no fetch here, so `node --test` runs these exactly as the browser does
// (tests/integration/api/ui_view.test.mjs).

/** xDS types in the order Envoy receives them over ADS; unknown types follow, sorted. */
export const TYPE_ORDER = ["clusters", "endpoints", "listeners", "routes", "secrets"];

const STATE_RANK = { SYNCED: 0, STALE: 1, NACKED: 2 };

/** Escape text for HTML (element content and quoted attributes). */
export function esc(value) {
  return String(value ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/**
 * Where one xDS type stands on one proxy.
 * NACKED: the proxy rejected a version and has not acknowledged what was sent since;
 * SYNCED: it acknowledged what was sent; STALE: a version is sent and not yet acknowledged.
 */
export function typeState(type) {
  const inSync = (type.sent_version ?? null) === (type.acked_version ?? null);
  if (type.last_nack && !inSync) return "NACKED";
  return inSync ? "SYNCED" : "STALE";
}

/** The worst state over a proxy's types (NACKED > STALE > SYNCED); SYNCED with no types. */
export function proxyState(proxy) {
  let worst = "SYNCED";
  for (const type of proxy.types ?? []) {
    const state = typeState(type);
    if (STATE_RANK[state] > STATE_RANK[worst]) worst = state;
  }
  return worst;
}

/** The type columns for a set of proxies: the ADS order first, then any others by name. */
export function typeColumns(proxies) {
  const seen = new Set();
  for (const proxy of proxies) for (const type of proxy.types ?? []) seen.add(type.type);
  const known = TYPE_ORDER.filter((name) => seen.has(name));
  const others = [...seen].filter((name) => !TYPE_ORDER.includes(name)).sort();
  return [...known, ...others];
}

/** How many proxies are in each state. */
export function stateCounts(proxies) {
  const counts = { SYNCED: 0, STALE: 0, NACKED: 0 };
  for (const proxy of proxies) counts[proxyState(proxy)] += 1;
  return counts;
}

/** "gateway edge", "sidecar of orders", or the role as given for a foreign node. */
export function proxyLabel(proxy) {
  if (proxy.role === "gateway") return `gateway ${proxy.gateway ?? "?"}`;
  if (proxy.role === "sidecar") return `sidecar of ${proxy.service ?? "?"}`;
  return proxy.role ?? "foreign node";
}

/** Milliseconds since the epoch of an ISO time, a Date or a number; NaN if unreadable. */
export function toMillis(time) {
  if (time instanceof Date) return time.getTime();
  if (typeof time === "number") return time;
  if (typeof time !== "string" || time === "") return Number.NaN;
  return Date.parse(time);
}

const UNITS = [
  // [upper bound in seconds (exclusive), seconds per unit, label]
  [60, 1, "s"],
  [3600, 60, "min"],
  [2 * 86400, 3600, "h"],
  [2 * 365 * 86400, 86400, "d"],
  [Number.POSITIVE_INFINITY, 365 * 86400, "y"],
];

/**
 * A time relative to `now` in one unit: "3 min ago", "in 11 h", "just now" (within 5 s).
 * Seconds, minutes and hours are whole units rounded down (hours up to 2 days); days (up to 2
 * years) and years are rounded to the nearest. "" for a missing or unreadable time.
 */
export function relativeTime(time, now) {
  const then = toMillis(time);
  const at = toMillis(now);
  if (Number.isNaN(then) || Number.isNaN(at)) return "";
  const seconds = (then - at) / 1000;
  const size = Math.abs(seconds);
  if (size < 5) return "just now";
  const [, per, label] = UNITS.find(([bound]) => size < bound);
  const count = per >= 86400 ? Math.round(size / per) : Math.floor(size / per);
  const text = `${count} ${label}`;
  return seconds > 0 ? `in ${text}` : `${text} ago`;
}

/** "2026-11-24 21:22:45 UTC" for tooltips; "" for a missing time. */
export function absoluteTime(time) {
  const ms = toMillis(time);
  if (Number.isNaN(ms)) return "";
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** The first 8 characters of a version (content hashes are long); "-" when none. */
export function shortVersion(version) {
  if (version === null || version === undefined || version === "") return "-";
  const text = String(version);
  return text.length > 8 ? text.slice(0, 8) : text;
}

/**
 * A certificate's standing at `now`: "expired", "not-yet" (valid later), "renewal-due"
 * (past its planned renewal and still not replaced), else "ok".
 */
export function certState(cert, now) {
  const at = toMillis(now);
  if (at >= toMillis(cert.not_after)) return "expired";
  if (at < toMillis(cert.not_before)) return "not-yet";
  if (cert.next_renewal && at >= toMillis(cert.next_renewal)) return "renewal-due";
  return "ok";
}

// A certificate operators bring is flagged this long before it expires: they replace it.
export const EXPIRING_DAYS = 14;

/**
 * An edge certificate (a tls-certificates resource with its `details`) as the dashboard lists
 * it: its hosts, who issued it ("mesh CA" for one the mesh issues and renews), its standing
 * (certState's, with the mesh CA's renewal time; "expiring" when one operators bring has
 * less than EXPIRING_DAYS left), when it expires and the gateways presenting it.
 */
export function edgeCertView(resource, now) {
  const d = resource.details ?? {};
  const renews = Boolean(d.renews_at);
  let state = d.not_after ? certState({ ...d, next_renewal: d.renews_at ?? null }, now) : "pending";
  const left = toMillis(d.not_after) - toMillis(now);
  if (state === "ok" && !renews && left < EXPIRING_DAYS * 86400 * 1000) state = "expiring";
  return {
    name: resource.name,
    hosts: d.dns_names ?? resource.spec?.hostnames ?? [],
    issuer: resource.spec?.issuer === "mesh" ? "mesh CA" : (d.issuer ?? ""),
    state,
    notAfter: d.not_after ?? null,
    renewsAt: d.renews_at ?? null,
    usedBy: d.used_by ?? [],
  };
}

/** The rotate request body for a certificate subject (its text, kind/name: model/identity.py). */
export function rotateBody(subject) {
  if (subject === "*") return { all: true };
  const [kind, name] = String(subject).split("/", 2);
  if ((kind !== "service" && kind !== "gateway") || !name) {
    throw new Error(`not a certificate subject: ${subject}`);
  }
  return { [kind]: name };
}

/**
 * Whether `name` is the endpoint a sidecar with `nodeId` registers (meshplane.xds.registry):
 * the node id itself when it is a valid name, else its cleaned prefix and an 8-hex digest.
 */
export function isAutoEndpointOf(name, nodeId) {
  const cleaned = String(nodeId)
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  if (cleaned && cleaned === nodeId && cleaned.length <= 63) return name === cleaned;
  const stem = cleaned.slice(0, 54).replace(/^[-.]+|[-.]+$/g, "") || "node";
  return name.length === stem.length + 9 && name.startsWith(`${stem}-`) && /^[0-9a-f]{8}$/.test(name.slice(-8));
}

/**
 * Whether anything shows an endpoint is alive, from the connected proxies:
 * "up" when the sidecar behind it is connected (a registered endpoint carries its node's name;
 * one written with sidecar: true is matched by service and address), "down" when it is a
 * sidecar's endpoint and no such sidecar is connected, "unknown" for a plain instance, which the
 * control plane does not observe.
 */
export function endpointHealth(endpoint, proxies) {
  const spec = endpoint.spec ?? {};
  const sidecars = proxies.filter((p) => p.role === "sidecar" && p.service === spec.service);
  const own = sidecars.find((p) => isAutoEndpointOf(endpoint.name, p.node_id));
  if (own) return { state: "up", text: `sidecar ${own.node_id} connected` };
  if (endpoint.source === "auto") {
    return { state: "down", text: "its sidecar is disconnected; removed after the grace period" };
  }
  if (spec.sidecar) {
    const near = sidecars.find((p) => p.address === spec.address);
    if (near) return { state: "up", text: `a sidecar of ${spec.service} at ${spec.address} is connected` };
    return { state: "down", text: `no sidecar of ${spec.service} at ${spec.address} is connected` };
  }
  return { state: "unknown", text: "plain instance: not observed by the control plane" };
}

/**
 * Services with their endpoints (by name) and a health summary; endpoints of a service that
 * is not listed form a row of their own so nothing is hidden. `invalid` (the list's stored
 * services that no longer validate) gives those rows the state "invalid" and the reason.
 */
export function servicesView(services, endpoints, proxies, invalid = []) {
  const byService = new Map(services.map((s) => [s.name, { ...s, endpoints: [] }]));
  for (const bad of invalid) {
    byService.set(bad.name, { name: bad.name, spec: null, source: null, endpoints: [], invalid: bad.reason });
  }
  for (const endpoint of endpoints) {
    const name = endpoint.spec?.service ?? "?";
    if (!byService.has(name)) byService.set(name, { name, spec: null, source: null, endpoints: [] });
    byService.get(name).endpoints.push({ ...endpoint, health: endpointHealth(endpoint, proxies) });
  }
  const rows = [...byService.values()].sort((a, b) => a.name.localeCompare(b.name));
  for (const row of rows) {
    row.endpoints.sort((a, b) => a.name.localeCompare(b.name));
    const up = row.endpoints.filter((e) => e.health.state === "up").length;
    const down = row.endpoints.filter((e) => e.health.state === "down").length;
    let state = "ok";
    if (row.endpoints.length === 0) state = "empty";
    else if (down === row.endpoints.length) state = "down";
    else if (down > 0) state = "degraded";
    if (row.invalid !== undefined) state = "invalid";
    row.summary = { total: row.endpoints.length, up, down, state };
  }
  return rows;
}

/** Each destination's share of the traffic in percent (one decimal), from the weights. */
export function destinationShares(destinations) {
  const total = destinations.reduce((sum, d) => sum + (d.weight ?? 1), 0);
  return destinations.map((d) => ({
    ...d,
    percent: total > 0 ? Math.round(((d.weight ?? 1) * 1000) / total) / 10 : 0,
  }));
}

/** A route's match in a few words: "prefix /api", "path /x + 2 headers, GET|POST". */
export function matchText(match) {
  if (!match) return "prefix /";
  let text = "prefix /";
  if (match.path) text = `path ${match.path}`;
  else if (match.regex) text = `regex ${match.regex}`;
  else if (match.prefix) text = `prefix ${match.prefix}`;
  const extra = [];
  const headers = match.headers?.length ?? 0;
  const query = match.query?.length ?? 0;
  if (headers) extra.push(`${headers} header${headers > 1 ? "s" : ""}`);
  if (query) extra.push(`${query} query param${query > 1 ? "s" : ""}`);
  if (match.methods?.length) extra.push(match.methods.join("|"));
  return extra.length ? `${text} + ${extra.join(", ")}` : text;
}

/** "version=v2, zone=a" from a label map; "" when empty. */
export function labelText(labels) {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/**
 * Who may call each service, from the authorization policies: allow callers (or anyone in the
 * mesh when a target has no allow policy) and the deny rules, by target.
 */
export function accessView(policies, services) {
  const targets = new Map(services.map((s) => [s.name, { target: s.name, allow: [], deny: [] }]));
  for (const policy of policies) {
    const spec = policy.spec ?? {};
    if (!targets.has(spec.target)) targets.set(spec.target, { target: spec.target, allow: [], deny: [] });
    const callers = (spec.callers ?? []).map((c) => (c.service ? `service ${c.service}` : `gateway ${c.gateway}`));
    const rule = {
      policy: policy.name,
      callers: callers.length ? callers : ["any caller"],
      paths: spec.paths ?? [],
      methods: spec.methods ?? [],
    };
    (spec.action === "deny" ? targets.get(spec.target).deny : targets.get(spec.target).allow).push(rule);
  }
  return [...targets.values()].sort((a, b) => a.target.localeCompare(b.target));
}

/** Whether the API serves route explain, from its OpenAPI document. */
export function hasExplain(openapi) {
  return Boolean(openapi?.paths?.["/api/v1/explain"]?.post);
}

/** Parse "Name: value" lines; blank lines are skipped, a line without ':' is an error. */
export function parseHeaderLines(text) {
  const headers = {};
  const errors = [];
  String(text ?? "")
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const line = raw.trim();
      if (!line) return;
      const colon = line.indexOf(":");
      if (colon <= 0) {
        errors.push(`line ${index + 1}: expected "Name: value", got ${JSON.stringify(line)}`);
        return;
      }
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    });
  return { headers, errors };
}

/**
 * The explain request body from the form's values; `from` is "gateway:NAME" or
 * "source:SERVICE". Returns {body} or {errors}.
 */
export function explainBody({ from, host, path, method, headers }) {
  const errors = [];
  const [kind, name] = String(from ?? "").split(":", 2);
  if (!name || (kind !== "gateway" && kind !== "source")) errors.push("choose a gateway or a source service");
  if (!String(host ?? "").trim()) errors.push("host is required");
  const parsed = parseHeaderLines(headers);
  errors.push(...parsed.errors);
  if (errors.length) return { errors };
  const body = { [kind]: name, host: host.trim(), path: (path ?? "").trim() || "/", method: method || "GET" };
  if (Object.keys(parsed.headers).length) body.headers = parsed.headers;
  return { body };
}

/** The messages of an API error body: FastAPI's 422 detail list or a plain detail string. */
export function errorMessages(body, status) {
  const detail = body?.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc ?? []).filter((part) => part !== "body").join(".");
      return where ? `${where}: ${d.msg}` : String(d.msg);
    });
  }
  if (typeof detail === "string") return [detail];
  return [`HTTP ${status}`];
}

/**
 * The stored resources whose spec no longer validates (GET /server's `invalid_resources`), as
 * lines for the banner: which one, why, and what it keeps out of what proxies are sent.
 */
export function invalidNotes(server) {
  return (server?.invalid_resources ?? []).map((r) => {
    const also = r.left_out?.length ? `; also not sent: ${r.left_out.join(", ")}` : "";
    return `${r.kind}/${r.name} (version ${r.version}): ${r.reason}${also}`;
  });
}

/** Whether a token of `role` may rotate certificates (the API's role table: admin, editor). */
export function canRotate(role) {
  return role === "admin" || role === "editor";
}

/** Whether a token of `role` may read the dashboard's data (admin, editor, viewer). */
export function canRead(role) {
  return canRotate(role) || role === "viewer";
}

/**
 * What the page says when the API refuses a token: 401 (signed out, with why) or 403 (the
 * role may not); null for any other answer.
 */
export function authMessage(status, detail) {
  if (status === 401) return `Sign in again: ${detail || "the token is unknown, revoked or expired"}.`;
  if (status === 403) return `Not allowed with this token: ${detail || "its role may not do this"}.`;
  return null;
}

/**
 * A token handed over in the page's address (`#token=...`, never sent to the server), or null;
 * the page moves it to the tab's session storage and takes it out of the address.
 */
export function tokenFromHash(hash) {
  const match = /(?:^#|&)token=([^&]+)/.exec(hash ?? "");
  return match ? decodeURIComponent(match[1]) : null;
}

// ---- history -----------------------------------------------------------------------------------

const SINGULAR = {
  services: "service",
  endpoints: "endpoint",
  gateways: "gateway",
  routes: "route",
  "authorization-policies": "authorization-policy",
  meshes: "mesh",
};

/** A kind as `kind/name` texts spell it (singular), from the plural the history lists. */
export function singularKind(kind) {
  return SINGULAR[kind] ?? kind;
}

/** Whether a token of `role` may roll the mesh back (the API's role table: admin, editor). */
export function canRollBack(role) {
  return canRotate(role);
}

/**
 * The change log's items (GET /changes: one per resource, newest first) as one row per
 * revision, newest first: {revision, at, by, message, changes: [{kind, name, what}]}. One commit
 * writes a revision's items, so its time, author and message are those of any of them; `what` is
 * the outcome, or "changed"/"deleted" from the op for an item logged before outcomes were kept.
 */
export function historyRows(items) {
  const rows = new Map();
  for (const item of items) {
    if (!rows.has(item.revision)) {
      rows.set(item.revision, {
        revision: item.revision,
        at: item.at ?? null,
        by: item.by ?? null,
        message: item.message ?? null,
        changes: [],
      });
    }
    const what = item.outcome ?? (item.op === "delete" ? "deleted" : "changed");
    rows.get(item.revision).changes.push({ kind: singularKind(item.kind), name: item.name, what });
  }
  return [...rows.values()].sort((a, b) => b.revision - a.revision);
}

/** "configured route/shop, created service/cache +2 more": a revision's first `shown` changes. */
export function changeSummary(changes, shown = 3) {
  const text = changes
    .slice(0, shown)
    .map((c) => `${c.what} ${c.kind}/${c.name}`)
    .join(", ");
  return changes.length > shown ? `${text} +${changes.length - shown} more` : text;
}

/**
 * The history list after a poll: `page` is the newest page of GET /changes, `list` what is shown
 * ({items, nextBefore}). Older pages loaded with "more" are kept when the new page reaches into
 * them (nothing in between is missing); otherwise the list starts over from the page.
 */
export function mergeHistory(list, page) {
  const oldest = page.items.at(-1)?.revision;
  const reaches = list.items.some((i) => i.revision >= oldest);
  const older = list.extended && reaches ? list.items.filter((i) => i.revision < oldest) : [];
  if (!older.length) return { items: page.items, nextBefore: page.next_before, extended: false };
  return { items: [...page.items, ...older], nextBefore: list.nextBefore, extended: true };
}

/** The revision named in the page's address (`#revision=N`, also `#token=...&revision=N`), or null. */
export function revisionFromHash(hash) {
  const match = /(?:^#|&)revision=(\d+)(?:&|$)/.exec(hash ?? "");
  return match ? Number(match[1]) : null;
}

/** A spec as the diff shows it: pretty JSON, one line per value; no lines for an absent one. */
export function specLines(spec) {
  if (spec === null || spec === undefined) return [];
  return JSON.stringify(spec, null, 2).split("\n");
}

const MAX_DIFF_CELLS = 4_000_000; // lines before x lines after; beyond, no common lines are looked for
const same = (text) => ({ op: " ", text });
const removed = (text) => ({ op: "-", text });
const added = (text) => ({ op: "+", text });

/**
 * The line diff from `before` to `after` (arrays of lines) as [{op, text}] in order: op " " for a
 * line in both, "-" for one only before, "+" for one only after; where lines are replaced, the
 * removed come first. Keeps a longest common subsequence of lines, after setting the common head
 * and tail aside; a middle larger than MAX_DIFF_CELLS is shown as all removed, then all added.
 */
export function lineDiff(before, after) {
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head += 1;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  ) {
    tail += 1;
  }
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  const middle = [];
  if (a.length * b.length > MAX_DIFF_CELLS) {
    middle.push(...a.map(removed), ...b.map(added));
  } else {
    // common[i][j]: the length of a longest common subsequence of a[i..] and b[j..].
    const common = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
    for (let i = a.length - 1; i >= 0; i -= 1) {
      for (let j = b.length - 1; j >= 0; j -= 1) {
        common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) {
        middle.push(same(a[i]));
        i += 1;
        j += 1;
      } else if (common[i + 1][j] >= common[i][j + 1]) {
        middle.push(removed(a[i]));
        i += 1;
      } else {
        middle.push(added(b[j]));
        j += 1;
      }
    }
    middle.push(...a.slice(i).map(removed), ...b.slice(j).map(added));
  }
  return [...before.slice(0, head).map(same), ...middle, ...after.slice(after.length - tail).map(same)];
}

/**
 * A line diff with long unchanged runs folded: `context` unchanged lines stay next to each
 * change, and a run that would hide at least 3 more becomes one {op: "fold", count} entry.
 */
export function foldDiff(lines, context = 3) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i].op !== " ") {
      out.push(lines[i]);
      i += 1;
      continue;
    }
    let j = i;
    while (j < lines.length && lines[j].op === " ") j += 1;
    const keepHead = i === 0 ? 0 : context; // after a change
    const keepTail = j === lines.length ? 0 : context; // before a change
    const hidden = j - i - keepHead - keepTail;
    if (hidden >= 3) {
      out.push(...lines.slice(i, i + keepHead), { op: "fold", count: hidden }, ...lines.slice(j - keepTail, j));
    } else {
      out.push(...lines.slice(i, j));
    }
    i = j;
  }
  return out;
}

/** The rollback request body: to `revision`, with a message that says where it came from. */
export function rollbackBody(revision) {
  return { revision, message: `rollback to revision ${revision} from the dashboard` };
}

/**
 * What a rollback (or its dry run) does, from its answer: the documents it changes (unchanged
 * ones left out) as {kind, name, outcome}, their count by outcome ("2 created, 1 deleted"), and
 * per proxy group that gets a change {group: "gateway edge", nodes, text: "routes 1 changed"}.
 */
export function rollbackPlan(answer) {
  const documents = (answer?.documents ?? [])
    .filter((d) => d.outcome !== "unchanged")
    .map((d) => ({ kind: singularKind(d.kind), name: d.name, outcome: d.outcome }));
  const counts = ["created", "configured", "deleted"]
    .map((outcome) => [outcome, documents.filter((d) => d.outcome === outcome).length])
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(", ");
  const proxies = (answer?.proxies ?? []).map((p) => ({
    group: proxyLabel(p) + (p.zone ? ` in ${p.zone}` : ""),
    nodes: p.nodes ?? [],
    text: Object.entries(p.changes ?? {})
      .map(([type, c]) => {
        const parts = [
          c.added?.length ? `${c.added.length} added` : "",
          c.changed?.length ? `${c.changed.length} changed` : "",
          c.removed?.length ? `${c.removed.length} removed` : "",
        ].filter(Boolean);
        return parts.length ? `${type} ${parts.join(", ")}` : "";
      })
      .filter(Boolean)
      .join("; "),
  }));
  return { documents, counts, proxies };
}
