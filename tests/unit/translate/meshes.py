"""Example meshes the translate tests share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshplane.model import AuthorizationPolicySpec, Mesh, ProxyGroup, TlsCertificateSpec
from meshplane.xds.translate import group_resources, shared_resources
from tests.support.certificates import make_ca, make_server_certificate
from tests.support.meshes import (
    Item,
    endpoint,
    gateway,
    gateway_group,
    mesh,
    route,
    service,
    sidecar_group,
)


def shared(mesh: Mesh) -> dict[str, list[Any]]:
    """`shared_resources` with the messages typed Any, so tests may read their fields."""
    return {key: list(messages) for key, messages in shared_resources(mesh).items()}


def grouped(mesh: Mesh, group: ProxyGroup) -> dict[str, list[Any]]:
    """`group_resources` with the messages typed Any, so tests may read their fields."""
    return {key: list(messages) for key, messages in group_resources(mesh, group).items()}


def _policy(target: str, action: str, *callers: str) -> AuthorizationPolicySpec:
    return AuthorizationPolicySpec.model_validate(
        {"target": target, "action": action, "callers": [{"service": c} for c in callers]}
    )


@dataclass(frozen=True)
class Example:
    mesh: Mesh
    groups: list[ProxyGroup] = field(default_factory=list)


CIRCUIT_BREAKER = {
    "max_connections": 100,
    "max_pending_requests": 10,
    "max_requests": 200,
    "retry_budget": {"percent": 25.5, "min_concurrency": 2},
}
OUTLIERS = {
    "consecutive_5xx": 3,
    "interval": "2s",
    "base_ejection_time": "45s",
    "max_ejection_percent": 50,
}
HEALTH_CHECK = {
    "path": "/healthz",
    "interval": "3s",
    "timeout": "500ms",
    "healthy_threshold": 2,
    "unhealthy_threshold": 4,
    "expected_statuses": [200, 204],
}
# One route using every route-level policy at once.
EVERYTHING: dict[str, Any] = {
    "match": {
        "prefix": "/shop/",
        "headers": [{"name": "x-tenant", "exact": "blue"}],
        "methods": ["GET"],
        "query": [
            {"name": "v", "exact": "2"},
            {"name": "id", "regex": "^[0-9]+$"},
            {"name": "debug", "present": True},
        ],
    },
    "destinations": [
        {"service": "shop", "labels": {"version": "v1"}, "weight": 90},
        {"service": "shop", "labels": {"version": "v2"}, "weight": 10},
    ],
    "timeout": "3s",
    "retries": {
        "attempts": 3,
        "per_try_timeout": "1s",
        "retry_on": ["gateway-error", "reset"],
        "retriable_status_codes": [409, 429],
        "backoff": {"base_interval": "10ms", "max_interval": "200ms"},
    },
    "sticky": {"cookie": {"name": "session", "ttl": "1h", "path": "/"}},
    "rewrite": {"prefix": "/", "host": "shop.internal"},
    "request_headers": {"set": {"x-env": "prod"}, "add": {"x-via": "edge"}, "remove": ["x-debug"]},
    "response_headers": {"set": {"x-served-by": "meshplane"}, "remove": ["server"]},
    "mirrors": [
        {"service": "audit", "percent": 12.5},
        {"service": "audit", "labels": {"tier": "cold"}},
    ],
    "fault": {
        "delay": {"duration": "250ms", "percent": 1.5},
        "abort": {"status": 503, "percent": 0.5},
    },
    "rate_limit": {"requests": 100, "per": "1m", "burst": 150},
}

_EDGE_CA = make_ca("edge ca")
_EDGE = {h: make_server_certificate(_EDGE_CA, [h]) for h in ("a.example.com", "b.example.com")}


def _certificate(name: str, host: str) -> Item:
    spec = TlsCertificateSpec(certificate=_EDGE[host].cert_pem)
    return ("tls-certificates", name, spec)


EXAMPLES: dict[str, Example] = {
    "https-gateways": Example(
        mesh(
            service("web"),
            endpoint("web-1", "web", "10.0.2.1", 80),
            _certificate("a", "a.example.com"),
            _certificate("b", "b.example.com"),
            gateway(
                "secure",
                8443,
                protocol="https",
                hosts=["a.example.com", "b.example.com"],
                tls={"certificates": ["a", "b"], "min_version": "1.3"},
            ),
            gateway(
                "partners",
                9443,
                protocol="https",
                tls={"certificates": ["a"], "client_ca": _EDGE_CA.cert_pem},
            ),
            gateway("plain", 8080, https_redirect={"port": 8443}),
            route("web", gateways=["secure", "partners"], destinations=[{"service": "web"}]),
        ),
        [gateway_group("secure"), gateway_group("partners"), gateway_group("plain")],
    ),
    "two-endpoints": Example(
        mesh(
            service("reviews"),
            endpoint("reviews-b", "reviews", "10.0.0.2", 9080, weight=3),
            endpoint("reviews-a", "reviews", "10.0.0.1", 9080),
        ),
        [sidecar_group("reviews")],
    ),
    "subsets": Example(
        mesh(
            service("reviews"),
            endpoint("r1", "reviews", "10.0.0.1", 9080, labels={"version": "v1"}),
            endpoint("r2", "reviews", "10.0.0.2", 9080, labels={"version": "v2", "zone": "a"}),
            endpoint("r3", "reviews", "10.0.0.3", 9080, labels={"version": "v2", "zone": "b"}),
            route(
                "reviews-v2-in-a",
                hosts=["reviews"],
                destinations=[{"service": "reviews", "labels": {"zone": "a", "version": "v2"}}],
            ),
            route(
                "reviews-v2",
                hosts=["reviews"],
                match={"headers": [{"name": "x-canary", "present": True}]},
                destinations=[{"service": "reviews", "labels": {"version": "v2"}}],
            ),
        ),
        [sidecar_group("reviews")],
    ),
    "weighted": Example(
        mesh(
            service("reviews"),
            endpoint("r1", "reviews", "10.0.0.1", 9080, labels={"version": "v1"}),
            endpoint("r2", "reviews", "10.0.0.2", 9080, labels={"version": "v2"}),
            gateway("edge", 8080),
            route(
                "split",
                gateways=["edge"],
                timeout="2.5s",
                destinations=[
                    {"service": "reviews", "labels": {"version": "v1"}, "weight": 90},
                    {"service": "reviews", "labels": {"version": "v2"}, "weight": 10},
                ],
            ),
        ),
        [gateway_group("edge")],
    ),
    "matches": Example(
        mesh(
            service("api"),
            endpoint("api-1", "api", "10.0.1.1", 8000),
            gateway("edge", 8080),
            route("root", gateways=["edge"], destinations=[{"service": "api"}]),
            route(
                "short",
                gateways=["edge"],
                match={"prefix": "/a"},
                destinations=[{"service": "api"}],
            ),
            route(
                "long",
                gateways=["edge"],
                match={"prefix": "/a/b/c"},
                destinations=[{"service": "api"}],
            ),
            route(
                "exact",
                gateways=["edge"],
                match={"path": "/healthz"},
                destinations=[{"service": "api"}],
            ),
            route(
                "regex",
                gateways=["edge"],
                match={"regex": "^/users/[0-9]+$"},
                destinations=[{"service": "api"}],
            ),
            route(
                "posts",
                gateways=["edge"],
                match={"prefix": "/a", "methods": ["POST", "GET", "POST"]},
                destinations=[{"service": "api"}],
            ),
            route(
                "headers",
                gateways=["edge"],
                match={
                    "prefix": "/a",
                    "headers": [
                        {"name": "X-Tenant", "exact": "blue"},
                        {"name": "x-trace", "regex": "^[a-f0-9]{8}$"},
                        {"name": "x-debug", "present": False},
                    ],
                },
                destinations=[{"service": "api"}],
            ),
        ),
        [gateway_group("edge")],
    ),
    "gateway-hosts": Example(
        mesh(
            service("web"),
            endpoint("web-1", "web", "10.0.2.1", 80),
            gateway("public", 8443, hosts=["a.example.com", "b.example.com", "a.example.com"]),
            gateway("internal", 9000, address="127.0.0.1"),
            route("everywhere", gateways=["public", "internal"], destinations=[{"service": "web"}]),
            route(
                "only-a",
                gateways=["public"],
                hosts=["a.example.com"],
                match={"prefix": "/a-only"},
                destinations=[{"service": "web"}],
            ),
            route(
                "elsewhere",
                gateways=["public"],
                hosts=["c.example.com", "*.example.org"],
                destinations=[{"service": "web"}],
            ),
            route(
                "sidecar-only",
                hosts=["web"],
                match={"prefix": "/x"},
                destinations=[{"service": "web"}],
            ),
        ),
        [gateway_group("public"), gateway_group("internal"), gateway_group("missing")],
    ),
    "sidecar": Example(
        mesh(
            service("reviews"),
            service("ratings"),
            service("db", protocol="tcp"),
            endpoint("ratings-1", "ratings", "10.0.3.1", 15006),
            route(
                "ratings-slow",
                hosts=["ratings"],
                match={"prefix": "/slow"},
                timeout="250ms",
                destinations=[{"service": "ratings"}],
            ),
            route("legacy", hosts=["legacy.internal"], destinations=[{"service": "reviews"}]),
            route("gateway-only", gateways=["edge"], destinations=[{"service": "reviews"}]),
            gateway("edge", 8080),
        ),
        [sidecar_group("reviews"), sidecar_group("ghost", inbound=16006, app=9090, outbound=16001)],
    ),
    "protocols": Example(
        mesh(
            service("plain"),
            service("h2", protocol="http2", lb_policy="least_request", connect_timeout="250ms"),
            service("rpc", protocol="grpc", lb_policy="random"),
            service("pg", protocol="tcp", connect_timeout="5s"),
            endpoint("pg-1", "pg", "10.0.4.1", 5432),
        ),
        [sidecar_group("rpc"), sidecar_group("pg"), sidecar_group("plain")],
    ),
    "empty-service": Example(
        mesh(
            service("lonely"),
            gateway("edge", 8080),
            route("to-lonely", gateways=["edge"], destinations=[{"service": "lonely"}]),
        ),
        [gateway_group("edge"), sidecar_group("lonely")],
    ),
    "zero-weight": Example(
        mesh(
            service("a"),
            service("b"),
            service("c"),
            endpoint("a-1", "a", "10.0.5.1", 80, labels={"v": "1"}),
            endpoint("b-1", "b", "10.0.5.2", 80),
            endpoint("c-1", "c", "10.0.5.3", 80),
            gateway("edge", 8080),
            route(
                "one-left",
                gateways=["edge"],
                match={"prefix": "/one"},
                destinations=[{"service": "a", "weight": 0}, {"service": "b", "weight": 5}],
            ),
            route(
                "two-left",
                gateways=["edge"],
                match={"prefix": "/two"},
                destinations=[
                    {"service": "a", "labels": {"v": "1"}, "weight": 0},
                    {"service": "c", "weight": 5},
                    {"service": "b", "weight": 5},
                ],
            ),
        ),
        [gateway_group("edge")],
    ),
    "traffic-policies": Example(
        mesh(
            service("shop", lb_policy="ring_hash", circuit_breaker=CIRCUIT_BREAKER),
            service("audit", lb_policy="maglev", outlier_detection=OUTLIERS),
            service("rpc", protocol="grpc", health_check={"path": "/health", "interval": "5s"}),
            service("web", health_check=HEALTH_CHECK, rate_limit={"requests": 50, "per": "1s"}),
            endpoint("shop-1", "shop", "10.0.8.1", 80, labels={"version": "v1"}, zone="a"),
            endpoint("shop-2", "shop", "10.0.8.2", 80, labels={"version": "v2"}, zone="b"),
            endpoint("audit-1", "audit", "10.0.8.3", 80, labels={"tier": "cold"}),
            gateway("edge", 8080),
            route("everything", gateways=["edge"], **EVERYTHING),
            route(
                "moved",
                gateways=["edge"],
                match={"path": "/old"},
                redirect={"scheme": "https", "host": "example.org", "port": 8443, "prefix": "/n"},
            ),
            route(
                "teapot",
                gateways=["edge"],
                match={"prefix": "/tea"},
                direct_response={"status": 418, "body": "short and stout"},
                response_headers={"set": {"x-tea": "earl-grey"}},
                fault={"abort": {"status": 503, "percent": 12.5}},
            ),
            route(
                "by-regex",
                hosts=["web"],
                match={"regex": "^/v[0-9]+/.*$"},
                rewrite={"regex": {"pattern": "^/v([0-9]+)/", "substitution": "/version/\\1/"}},
                destinations=[{"service": "web"}],
            ),
        ),
        [gateway_group("edge"), sidecar_group("web"), sidecar_group("rpc")],
    ),
    "tcp": Example(
        mesh(
            service("echo", protocol="tcp", port=7000),
            service("cache", protocol="tcp", port=15001),  # a sidecar's outbound port below
            service("db", protocol="tcp"),  # no port: only a tcp gateway reaches it
            service("web"),
            endpoint("echo-1", "echo", "10.0.9.1", 15006, labels={"version": "v1"}, sidecar=True),
            endpoint("echo-2", "echo", "10.0.9.2", 15006, labels={"version": "v2"}, sidecar=True),
            endpoint("db-1", "db", "10.0.9.3", 5432),
            route(
                "echo-split",
                hosts=["echo"],
                destinations=[
                    {"service": "echo", "labels": {"version": "v1"}, "weight": 90},
                    {"service": "echo", "labels": {"version": "v2"}, "weight": 10},
                ],
            ),
            gateway("db-edge", 5433, protocol="tcp"),
            route("to-db", gateways=["db-edge"], destinations=[{"service": "db"}]),
            gateway("idle", 5434, protocol="tcp"),
            gateway("passthrough", 5443, protocol="tls", hosts=["*.example.com", "*"]),
            route(
                "to-shop",
                gateways=["passthrough"],
                hosts=["shop.example.com"],
                destinations=[{"service": "db"}],
            ),
            route(
                "to-any-example",
                gateways=["passthrough"],
                hosts=["*.example.com"],
                destinations=[
                    {"service": "echo", "labels": {"version": "v1"}, "weight": 1},
                    {"service": "echo", "labels": {"version": "v2"}, "weight": 1},
                ],
            ),
            route(
                "to-rest", gateways=["passthrough"], hosts=["*"], destinations=[{"service": "echo"}]
            ),
            ("authorization-policies", "echo-deny", _policy("echo", "deny", "web")),
            ("authorization-policies", "echo-allow", _policy("echo", "allow", "web", "echo")),
        ),
        [
            sidecar_group("web"),
            sidecar_group("echo", inbound=16006, app=9090, outbound=16001),
            gateway_group("db-edge"),
            gateway_group("idle"),
            gateway_group("passthrough"),
        ],
    ),
}
