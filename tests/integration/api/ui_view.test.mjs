// The dashboard's data -> view logic (meshplane/api/ui/view.js), run by test_ui.py with
// `node --test`: the same module the browser loads, fed the API's JSON shapes.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  accessView,
  authMessage,
  canRead,
  canRollBack,
  canRotate,
  certState,
  changeSummary,
  destinationShares,
  edgeCertView,
  endpointHealth,
  errorMessages,
  esc,
  explainBody,
  foldDiff,
  hasExplain,
  historyRows,
  invalidNotes,
  isAutoEndpointOf,
  lineDiff,
  matchText,
  mergeHistory,
  parseHeaderLines,
  proxyLabel,
  proxyState,
  relativeTime,
  revisionFromHash,
  rollbackBody,
  rollbackPlan,
  rotateBody,
  servicesView,
  shortVersion,
  singularKind,
  specLines,
  stateCounts,
  typeColumns,
  tokenFromHash,
  typeState,
} from "../../../meshplane/api/ui/view.js";

const NOW = Date.parse("2026-11-23T12:00:00Z");
const at = (seconds) => new Date(NOW + seconds * 1000).toISOString();
const nack = { version: "v2", error: "bad cluster", at: "2026-11-23T11:59:00.123456Z" };
const type = (sent, acked, lastNack = null, name = "clusters") => ({
  type: name,
  sent_version: sent,
  acked_version: acked,
  resources: 3,
  last_nack: lastNack,
});
const proxy = (node, role, fields = {}) => ({
  node_id: node,
  role,
  gateway: null,
  service: null,
  address: "127.0.0.1",
  transport: "sotw",
  stream_id: 1,
  connected_since: at(-60),
  types: [],
  denied_secrets: 0,
  ...fields,
});

describe("sync state", () => {
  test("SYNCED when the version sent is the version acknowledged", () => {
    assert.equal(typeState(type("a1", "a1")), "SYNCED");
    assert.equal(typeState(type(null, null)), "SYNCED");
  });

  test("STALE while a sent version is not acknowledged yet", () => {
    assert.equal(typeState(type("a2", "a1")), "STALE");
    assert.equal(typeState(type("a1", null)), "STALE");
  });

  test("NACKED when the last version was rejected and nothing since was acknowledged", () => {
    assert.equal(typeState(type("v2", "v1", nack)), "NACKED");
  });

  test("a NACK superseded by an acknowledged version is history: SYNCED", () => {
    assert.equal(typeState(type("v3", "v3", nack)), "SYNCED");
  });

  test("a proxy is as bad as its worst type", () => {
    const synced = proxy("a", "sidecar", { types: [type("1", "1"), type("2", "2", null, "routes")] });
    const stale = proxy("b", "sidecar", { types: [type("1", "1"), type("3", "2", null, "routes")] });
    const nacked = proxy("c", "sidecar", { types: [type("3", "2", null), type("v2", "v1", nack, "routes")] });
    assert.equal(proxyState(synced), "SYNCED");
    assert.equal(proxyState(stale), "STALE");
    assert.equal(proxyState(nacked), "NACKED");
    assert.equal(proxyState(proxy("d", null)), "SYNCED");
    assert.deepEqual(stateCounts([synced, stale, nacked, nacked]), { SYNCED: 1, STALE: 1, NACKED: 2 });
  });

  test("type columns follow the ADS order, unknown types last", () => {
    const a = proxy("a", "gateway", { types: [type("1", "1", null, "secrets"), type("1", "1", null, "zz")] });
    const b = proxy("b", "gateway", { types: [type("1", "1", null, "routes"), type("1", "1", null, "clusters")] });
    assert.deepEqual(typeColumns([a, b]), ["clusters", "routes", "secrets", "zz"]);
  });

  test("proxies are named by role", () => {
    assert.equal(proxyLabel(proxy("e", "gateway", { gateway: "edge" })), "gateway edge");
    assert.equal(proxyLabel(proxy("o", "sidecar", { service: "orders" })), "sidecar of orders");
    assert.equal(proxyLabel(proxy("x", null)), "foreign node");
  });
});

describe("relative time", () => {
  test("past and future in one readable unit", () => {
    assert.equal(relativeTime(at(-3 * 60 - 20), NOW), "3 min ago");
    assert.equal(relativeTime(at(11 * 3600 + 59 * 60), NOW), "in 11 h");
    assert.equal(relativeTime(at(-45), NOW), "45 s ago");
    assert.equal(relativeTime(at(59), NOW), "in 59 s");
    assert.equal(relativeTime(at(60), NOW), "in 1 min");
    assert.equal(relativeTime(at(47 * 3600), NOW), "in 47 h");
    assert.equal(relativeTime(at(-3 * 86400), NOW), "3 d ago");
    assert.equal(relativeTime(at(10 * 365 * 86400 - 3 * 86400), NOW), "in 10 y");
  });

  test("just now within five seconds either way", () => {
    assert.equal(relativeTime(at(0), NOW), "just now");
    assert.equal(relativeTime(at(-4.9), NOW), "just now");
    assert.equal(relativeTime(at(4), NOW), "just now");
  });

  test("reads the API's times (microseconds, Z) and Date or epoch milliseconds", () => {
    assert.equal(relativeTime("2026-11-23T11:56:59.654321Z", NOW), "3 min ago");
    assert.equal(relativeTime(new Date(NOW - 7200 * 1000), new Date(NOW)), "2 h ago");
    assert.equal(relativeTime(NOW + 120_000, NOW), "in 2 min");
  });

  test("nothing for a missing or unreadable time", () => {
    assert.equal(relativeTime(null, NOW), "");
    assert.equal(relativeTime("not a time", NOW), "");
  });
});

describe("certificates", () => {
  const cert = { not_before: at(-3600), not_after: at(20 * 3600), next_renewal: at(8 * 3600) };

  test("valid, renewal due, expired, not yet valid", () => {
    assert.equal(certState(cert, NOW), "ok");
    assert.equal(certState(cert, NOW + 9 * 3600 * 1000), "renewal-due");
    assert.equal(certState(cert, NOW + 20 * 3600 * 1000), "expired");
    assert.equal(certState(cert, NOW - 2 * 3600 * 1000), "not-yet");
  });

  const DAY = 86400;
  const brought = {
    name: "shop",
    spec: { certificate: "-----BEGIN CERTIFICATE-----" },
    details: {
      dns_names: ["shop.example.com"],
      issuer: "CN=Example CA",
      not_before: at(-DAY),
      not_after: at(60 * DAY),
      renews_at: null,
      used_by: ["edge"],
    },
  };
  const issued = {
    name: "api",
    spec: { issuer: "mesh", hostnames: ["api.example.com"] },
    details: { ...brought.details, dns_names: ["api.example.com"], not_after: at(29 * DAY), renews_at: at(19 * DAY), used_by: [] },
  };

  test("an edge certificate: its hosts, issuer, standing and gateways", () => {
    const view = edgeCertView(brought, NOW);
    assert.deepEqual(view.hosts, ["shop.example.com"]);
    assert.equal(view.issuer, "CN=Example CA");
    assert.equal(view.state, "ok");
    assert.deepEqual(view.usedBy, ["edge"]);
    assert.equal(view.renewsAt, null);
    // One operators bring is flagged two weeks before it expires; then it is expired.
    assert.equal(edgeCertView(brought, NOW + 50 * DAY * 1000).state, "expiring");
    assert.equal(edgeCertView(brought, NOW + 61 * DAY * 1000).state, "expired");
  });

  test("one the mesh CA issues renews itself: due at its renewal time, never 'expiring'", () => {
    const view = edgeCertView(issued, NOW);
    assert.equal(view.issuer, "mesh CA");
    assert.equal(view.state, "ok");
    assert.equal(edgeCertView(issued, NOW + 18 * DAY * 1000).state, "ok");
    assert.equal(edgeCertView(issued, NOW + 20 * DAY * 1000).state, "renewal-due");
    const pending = { name: "new", spec: { issuer: "mesh", hostnames: ["new.example.com"] } };
    assert.equal(edgeCertView(pending, NOW).state, "pending");
    assert.deepEqual(edgeCertView(pending, NOW).hosts, ["new.example.com"]);
  });

  test("the rotate body names one identity, or all", () => {
    assert.deepEqual(rotateBody("service/orders"), { service: "orders" });
    assert.deepEqual(rotateBody("gateway/edge"), { gateway: "edge" });
    assert.deepEqual(rotateBody("*"), { all: true });
    assert.throws(() => rotateBody("control-plane/xds"));
  });

  test("versions and serials are shortened to 8 characters", () => {
    assert.equal(shortVersion("2e05dd33c9a82006e1f3"), "2e05dd33");
    assert.equal(shortVersion("7"), "7");
    assert.equal(shortVersion(null), "-");
  });
});

describe("services and endpoints", () => {
  const endpoint = (name, service, source, spec = {}) => ({
    kind: "endpoint",
    name,
    source,
    spec: { service, address: "127.0.0.1", port: 15000, weight: 1, labels: {}, sidecar: source === "auto", ...spec },
  });

  test("auto endpoint names mirror meshplane.xds.registry.auto_endpoint_name", () => {
    assert.ok(isAutoEndpointOf("orders-v2", "orders-v2"));
    assert.ok(isAutoEndpointOf("node.1", "node.1"));
    assert.ok(isAutoEndpointOf("orders-v2-host-7-6eeb14e6", "Orders_V2@host-7"));
    assert.ok(isAutoEndpointOf("node-cb3f91d5", "---"));
    assert.ok(!isAutoEndpointOf("orders-v1", "orders-v2"));
    assert.ok(!isAutoEndpointOf("orders-v2-host-7", "Orders_V2@host-7"));
  });

  test("health from the connected sidecars", () => {
    const sidecars = [
      proxy("orders-v1", "sidecar", { service: "orders" }),
      proxy("pay-7", "sidecar", { service: "payments", address: "10.0.0.7" }),
    ];
    assert.equal(endpointHealth(endpoint("orders-v1", "orders", "auto"), sidecars).state, "up");
    assert.equal(endpointHealth(endpoint("orders-v2", "orders", "auto"), sidecars).state, "down");
    const declared = endpoint("pay", "payments", "api", { sidecar: true, address: "10.0.0.7" });
    assert.equal(endpointHealth(declared, sidecars).state, "up");
    const elsewhere = endpoint("pay2", "payments", "api", { sidecar: true, address: "10.0.0.8" });
    assert.equal(endpointHealth(elsewhere, sidecars).state, "down");
    assert.equal(endpointHealth(endpoint("db", "db", "api"), sidecars).state, "unknown");
  });

  test("services carry their endpoints and a summary", () => {
    const services = ["orders", "payments", "empty"].map((name) => ({ kind: "service", name, spec: {}, source: "api" }));
    const endpoints = [
      endpoint("orders-v2", "orders", "auto"),
      endpoint("orders-v1", "orders", "auto"),
      endpoint("payments-v1", "payments", "auto"),
      endpoint("stray", "ghost", "api"),
    ];
    const rows = servicesView(services, endpoints, [proxy("orders-v1", "sidecar", { service: "orders" })]);
    assert.deepEqual(rows.map((r) => r.name), ["empty", "ghost", "orders", "payments"]);
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    assert.deepEqual(byName.orders.endpoints.map((e) => e.name), ["orders-v1", "orders-v2"]);
    assert.deepEqual(byName.orders.summary, { total: 2, up: 1, down: 1, state: "degraded" });
    assert.equal(byName.payments.summary.state, "down");
    assert.equal(byName.empty.summary.state, "empty");
    assert.equal(byName.ghost.summary.state, "ok");
  });

  test("a stored service that no longer validates is a row of its own, with the reason", () => {
    const endpoints = [endpoint("web-1", "web", "api")];
    const invalid = [{ name: "web", version: 7, reason: "protocol: bad" }, { name: "lone", version: 8, reason: "x" }];
    const rows = servicesView([], endpoints, [], invalid);
    assert.deepEqual(rows.map((r) => [r.name, r.summary.state, r.invalid]), [
      ["lone", "invalid", "x"],
      ["web", "invalid", "protocol: bad"],
    ]);
    assert.deepEqual(rows[1].endpoints.map((e) => e.name), ["web-1"]);
  });
});

describe("routes and access", () => {
  test("destination shares from weights", () => {
    const shares = destinationShares([{ service: "a", weight: 90 }, { service: "b", weight: 10 }, { service: "c", weight: 0 }]);
    assert.deepEqual(shares.map((d) => d.percent), [90, 10, 0]);
    assert.deepEqual(destinationShares([{ service: "a" }, { service: "b" }, { service: "c" }]).map((d) => d.percent), [33.3, 33.3, 33.3]);
  });

  test("a match in a few words", () => {
    assert.equal(matchText({ prefix: "/", headers: [], methods: [], query: [] }), "prefix /");
    assert.equal(matchText({ path: "/x", headers: [{ name: "a" }, { name: "b" }], methods: ["GET", "POST"] }), "path /x + 2 headers, GET|POST");
    assert.equal(matchText({ regex: "^/v[0-9]+", query: [{ name: "q" }] }), "regex ^/v[0-9]+ + 1 query param");
  });

  test("who may call whom", () => {
    const services = [{ name: "orders" }, { name: "web" }];
    const policies = [
      { name: "callers", spec: { target: "orders", action: "allow", callers: [{ service: "frontend" }, { gateway: "edge" }] } },
      { name: "no-admin", spec: { target: "orders", action: "deny", callers: [], paths: ["/admin"], methods: ["POST"] } },
    ];
    const [orders, web] = accessView(policies, services);
    assert.deepEqual(orders.allow[0].callers, ["service frontend", "gateway edge"]);
    assert.deepEqual(orders.deny[0], { policy: "no-admin", callers: ["any caller"], paths: ["/admin"], methods: ["POST"] });
    assert.deepEqual([web.allow, web.deny], [[], []]);
  });
});

describe("explain form", () => {
  test("shown only when the API serves POST /api/v1/explain", () => {
    assert.ok(hasExplain({ paths: { "/api/v1/explain": { post: {} } } }));
    assert.ok(!hasExplain({ paths: { "/api/v1/services": { get: {} } } }));
    assert.ok(!hasExplain(null));
  });

  test("headers as lines", () => {
    assert.deepEqual(parseHeaderLines("X-Canary: 1\n\n  cookie: a=b: c  \r\n"), {
      headers: { "x-canary": "1", cookie: "a=b: c" },
      errors: [],
    });
    assert.equal(parseHeaderLines("nonsense").errors.length, 1);
  });

  test("the request body for a gateway or a source service", () => {
    assert.deepEqual(
      explainBody({ from: "gateway:edge", host: " shop.example ", path: "", method: "GET", headers: "" }).body,
      { gateway: "edge", host: "shop.example", path: "/", method: "GET" },
    );
    assert.deepEqual(
      explainBody({ from: "source:frontend", host: "orders", path: "/a?b=1", method: "POST", headers: "x-v: 2" }).body,
      { source: "frontend", host: "orders", path: "/a?b=1", method: "POST", headers: { "x-v": "2" } },
    );
    assert.deepEqual(explainBody({ from: "", host: "", path: "/", method: "GET", headers: "bad" }).errors.length, 3);
  });

  test("API errors read as messages", () => {
    const body = { detail: [{ loc: ["body", "gateway"], msg: "gateway 'nope' does not exist" }] };
    assert.deepEqual(errorMessages(body, 422), ["gateway: gateway 'nope' does not exist"]);
    assert.deepEqual(errorMessages({ detail: "no CA" }, 503), ["no CA"]);
    assert.deepEqual(errorMessages(null, 502), ["HTTP 502"]);
  });
});

test("stored resources that no longer validate are listed with why and what they keep out", () => {
  const server = {
    version: "1",
    revision: 9,
    invalid_resources: [
      { kind: "service", name: "web", version: 7, reason: "connect_timeout: bad", left_out: ["route/web"] },
      { kind: "gateway", name: "edge", version: 8, reason: "port: required", left_out: [] },
    ],
  };
  assert.deepEqual(invalidNotes(server), [
    "service/web (version 7): connect_timeout: bad; also not sent: route/web",
    "gateway/edge (version 8): port: required",
  ]);
  assert.deepEqual(invalidNotes({ version: "1", revision: 1 }), []);
  assert.deepEqual(invalidNotes(undefined), []);
});

test("text is escaped for HTML", () => {
  assert.equal(esc(`<img src=x onerror="a('b')">&`), "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;");
  assert.equal(esc(null), "");
});

describe("signing in", () => {
  test("only admin and editor may rotate; a bootstrap token cannot read", () => {
    assert.equal(canRotate("admin"), true);
    assert.equal(canRotate("editor"), true);
    assert.equal(canRotate("viewer"), false);
    assert.equal(canRotate("bootstrap"), false);
    assert.equal(canRead("viewer"), true);
    assert.equal(canRead("bootstrap"), false);
  });

  test("401 and 403 get a clear message; others none", () => {
    assert.match(authMessage(401, "the API token is unknown, revoked or expired"), /^Sign in again: the API token/);
    assert.match(authMessage(403, ""), /^Not allowed with this token/);
    assert.equal(authMessage(404, "x"), null);
  });

  test("a token in the address's fragment is read once", () => {
    assert.equal(tokenFromHash("#token=abc-_1"), "abc-_1");
    assert.equal(tokenFromHash("#x=1&token=a%2Bb"), "a+b");
    assert.equal(tokenFromHash("#services-section"), null);
    assert.equal(tokenFromHash(""), null);
  });
});

describe("history", () => {
  const item = (revision, kind, name, outcome, extra = {}) => ({
    revision,
    at: at(-60 * revision),
    kind,
    name,
    op: outcome === "deleted" ? "delete" : "put",
    outcome,
    by: "admin",
    source: "api",
    message: null,
    ...extra,
  });

  test("the change log is one row per revision, newest first", () => {
    const rows = historyRows([
      item(5, "routes", "shop", "configured", { message: "more timeout" }),
      item(4, "services", "cache", "created", { by: "deploy" }),
      item(4, "authorization-policies", "shop-in", "deleted", { by: "deploy" }),
      item(3, "endpoints", "shop-1", null, { op: "put", by: null }),
    ]);
    assert.deepEqual(
      rows.map((r) => [r.revision, r.by, r.message, r.changes.map((c) => `${c.what} ${c.kind}/${c.name}`)]),
      [
        [5, "admin", "more timeout", ["configured route/shop"]],
        [4, "deploy", null, ["created service/cache", "deleted authorization-policy/shop-in"]],
        [3, null, null, ["changed endpoint/shop-1"]],
      ],
    );
    assert.equal(rows[0].at, at(-300));
    assert.deepEqual(historyRows([]), []);
  });

  test("a revision's changes are summed up in a few words", () => {
    const c = (name) => ({ what: "created", kind: "service", name });
    assert.equal(changeSummary([c("a")]), "created service/a");
    assert.equal(changeSummary([c("a"), c("b"), c("c")]), "created service/a, created service/b, created service/c");
    assert.equal(changeSummary([c("a"), c("b"), c("c"), c("d"), c("e")]), "created service/a, created service/b, created service/c +2 more");
    assert.equal(changeSummary([c("a"), c("b")], 1), "created service/a +1 more");
    assert.equal(singularKind("meshes"), "mesh");
    assert.equal(singularKind("widgets"), "widgets");
  });

  test("a new page keeps the older pages it reaches, else starts over", () => {
    const shown = { items: [item(5, "routes", "a", "created"), item(3, "routes", "b", "created")], nextBefore: 3, extended: true };
    const page = { items: [item(6, "routes", "a", "configured"), item(5, "routes", "a", "created")], next_before: 5 };
    const merged = mergeHistory(shown, page);
    assert.deepEqual(merged.items.map((i) => i.revision), [6, 5, 3]);
    assert.equal(merged.nextBefore, 3);
    assert.equal(merged.extended, true);
    // Only the first page was shown: the new first page replaces it.
    assert.deepEqual(mergeHistory({ ...shown, extended: false }, page), { items: page.items, nextBefore: 5, extended: false });
    // A gap (the new page does not reach what is shown): start over.
    const far = { items: [item(9, "routes", "a", "configured")], next_before: 9 };
    assert.deepEqual(mergeHistory(shown, far), { items: far.items, nextBefore: 9, extended: false });
    assert.deepEqual(mergeHistory(shown, { items: [], next_before: null }).items, []);
  });

  test("a revision is read from the address", () => {
    assert.equal(revisionFromHash("#revision=12"), 12);
    assert.equal(revisionFromHash("#token=abc&revision=3"), 3);
    assert.equal(revisionFromHash("#revision=3x"), null);
    assert.equal(revisionFromHash("#history-section"), null);
    assert.equal(revisionFromHash(""), null);
  });

  test("the line diff keeps common lines and puts removed lines before added ones", () => {
    const show = (d) => d.map((l) => `${l.op}${l.text}`);
    assert.deepEqual(show(lineDiff(["a", "b", "c"], ["a", "x", "c"])), [" a", "-b", "+x", " c"]);
    assert.deepEqual(show(lineDiff(["a", "b", "c", "d"], ["b", "d", "e"])), ["-a", " b", "-c", " d", "+e"]);
    assert.deepEqual(show(lineDiff([], ["a", "b"])), ["+a", "+b"]);
    assert.deepEqual(show(lineDiff(["a"], [])), ["-a"]);
    assert.deepEqual(show(lineDiff(["a", "b"], ["a", "b"])), [" a", " b"]);
    // Longest common subsequence, not the first match: x y z stay, the moved a is removed and added.
    assert.deepEqual(show(lineDiff(["a", "x", "y", "z"], ["x", "y", "z", "a"])), ["-a", " x", " y", " z", "+a"]);
  });

  test("a spec's pretty JSON diffs line by line", () => {
    const before = specLines({ destinations: [{ service: "shop" }], timeout: "15s" });
    const after = specLines({ destinations: [{ service: "shop" }], timeout: "5s" });
    const changed = lineDiff(before, after).filter((l) => l.op !== " ");
    assert.deepEqual(changed, [
      { op: "-", text: '  "timeout": "15s"' },
      { op: "+", text: '  "timeout": "5s"' },
    ]);
    assert.deepEqual(specLines(null), []);
  });

  test("long unchanged runs fold, keeping context next to each change", () => {
    const lines = [..."abcdefghij"].map((t) => ({ op: " ", text: t }));
    lines.splice(5, 0, { op: "+", text: "X" });
    const folded = foldDiff(lines, 1).map((l) => (l.op === "fold" ? `~${l.count}` : `${l.op}${l.text}`));
    assert.deepEqual(folded, ["~4", " e", "+X", " f", "~4"]);
    // Fewer than 3 lines would hide: nothing folds.
    assert.equal(foldDiff(lines, 3).length, lines.length);
    assert.deepEqual(foldDiff([]), []);
  });

  test("a rollback says where it came from; its plan lists what changes, and for which proxies", () => {
    assert.deepEqual(rollbackBody(7), { revision: 7, message: "rollback to revision 7 from the dashboard" });
    assert.equal(canRollBack("editor"), true);
    assert.equal(canRollBack("viewer"), false);
    const plan = rollbackPlan({
      revision: 9,
      dry_run: true,
      documents: [
        { kind: "routes", name: "shop", outcome: "configured", version: 9 },
        { kind: "services", name: "web", outcome: "unchanged", version: 2 },
        { kind: "services", name: "cache", outcome: "deleted", version: 9 },
      ],
      proxies: [
        {
          role: "gateway",
          gateway: "edge",
          service: null,
          zone: null,
          nodes: ["edge-1"],
          changes: {
            clusters: { added: [], changed: [], removed: ["cache"] },
            routes: { added: [], changed: ["edge"], removed: [] },
            listeners: { added: [], changed: [], removed: [] },
          },
        },
      ],
    });
    assert.deepEqual(plan.documents, [
      { kind: "route", name: "shop", outcome: "configured" },
      { kind: "service", name: "cache", outcome: "deleted" },
    ]);
    assert.equal(plan.counts, "1 configured, 1 deleted");
    assert.deepEqual(plan.proxies, [{ group: "gateway edge", nodes: ["edge-1"], text: "clusters 1 removed; routes 1 changed" }]);
    assert.deepEqual(rollbackPlan({ revision: 3, documents: [] }), { documents: [], counts: "", proxies: [] });
  });
});
