"""Every match kind through a real Envoy, and `explain` agreeing with Envoy request by request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.e2e.edge import EDGE, gateway, request, service
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.traffic import wait_until_served

pytestmark = pytest.mark.e2e

# Route name -> match. Each route tells who it is with a response header, so every answer names
# the route Envoy chose.
MATCHES: dict[str, dict[str, Any]] = {
    "prefix": {"prefix": "/shop"},
    "exact": {"path": "/exact"},
    "regex": {"regex": "^/items/[0-9]+$"},
    "header-exact": {"prefix": "/h", "headers": [{"name": "x-tenant", "exact": "blue"}]},
    "header-regex": {"prefix": "/h", "headers": [{"name": "x-trace", "regex": "^[a-f0-9]{4}$"}]},
    "header-present": {"prefix": "/p", "headers": [{"name": "x-canary", "present": True}]},
    "header-absent": {"prefix": "/a", "headers": [{"name": "x-debug", "present": False}]},
    "method": {"prefix": "/m", "methods": ["POST", "PUT"]},
    "query-exact": {"prefix": "/q", "query": [{"name": "v", "exact": "2"}]},
    "query-regex": {"prefix": "/q", "query": [{"name": "id", "regex": "^[0-9]+$"}]},
    "query-present": {"prefix": "/q", "query": [{"name": "debug", "present": True}]},
}

# (method, path, headers, the route that must answer or None for Envoy's 404)
TABLE: list[tuple[str, str, dict[str, str], str | None]] = [
    ("GET", "/shop", {}, "prefix"),
    ("GET", "/shop/cart?x=1", {}, "prefix"),
    ("GET", "/Shop", {}, None),  # prefixes are case-sensitive
    ("GET", "/exact", {}, "exact"),
    ("GET", "/exact?q=1", {}, "exact"),  # the query is not part of the path
    ("GET", "/exact/more", {}, None),
    ("GET", "/items/42", {}, "regex"),
    ("GET", "/items/42x", {}, None),  # regexes match the whole path
    ("GET", "/h", {"x-tenant": "blue"}, "header-exact"),
    ("GET", "/h", {"x-tenant": "red"}, None),
    ("GET", "/h", {"x-trace": "beef"}, "header-regex"),
    ("GET", "/h", {"x-trace": "beef1"}, None),
    ("GET", "/p", {"x-canary": ""}, "header-present"),
    ("GET", "/p", {}, None),
    ("GET", "/a", {}, "header-absent"),
    ("GET", "/a", {"x-debug": "1"}, None),
    ("POST", "/m", {}, "method"),
    ("PUT", "/m/1", {}, "method"),
    ("GET", "/m", {}, None),
    ("GET", "/q?v=2", {}, "query-exact"),
    ("GET", "/q?v=3", {}, None),
    ("GET", "/q?id=17", {}, "query-regex"),
    ("GET", "/q?id=x17", {}, None),
    ("GET", "/q?debug", {}, "query-present"),
    ("GET", "/q?other=1", {}, None),
    ("GET", "/nowhere", {}, None),
]


def _route(name: str, match: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "gateways": ["edge"],
        "match": match,
        "destinations": [{"service": "web"}],
        "response_headers": {"set": {"x-route": name}},
        **extra,
    }


async def _explained(mesh: Mesh, **ask: Any) -> dict[str, Any]:
    response = await mesh.http.post("/api/v1/explain", json=ask)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_each_match_kind_routes_and_explain_agrees(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    await service(mesh, "web", [backends("web")])
    bootstrap, url = await gateway(mesh)
    for name, match in MATCHES.items():
        await mesh.put("routes", name, _route(name, match))
    async with EnvoyProcess(bootstrap):
        await wait_until_served(url + "/shop", lambda r: r.status_code == 200)
        for method, path, headers, expected in TABLE:
            response = await request(url + path, method=method, headers=headers)
            seen = response.headers.get("x-route")
            assert (seen, response.status_code) == (expected, 200 if expected else 404), (
                method,
                path,
                headers,
            )
            answer = await _explained(
                mesh, gateway="edge", host="127.0.0.1:1", path=path, method=method, headers=headers
            )
            assert answer["route"] == expected, (method, path, headers, answer)
            assert answer["status"] == (None if expected else 404)
            chosen = [c["route"] for c in answer["candidates"] if c["chosen"]]
            assert chosen == ([expected] if expected else [])
    await mesh.validate_served(EDGE)


async def test_explain_agrees_on_rewrites_redirects_direct_answers_and_sidecar_defaults(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    one, two = backends("one"), backends("two")
    await service(mesh, "web", [one])
    await service(mesh, "api", [two])
    await service(mesh, "client", [])
    sidecar = {"hosts": ["api"]}
    await mesh.put(
        "routes",
        "api-v2",
        {**sidecar, "match": {"prefix": "/v2/"}, "rewrite": {"prefix": "/"}, **_to("web")},
    )
    await mesh.put(
        "routes", "api-moved", {**sidecar, "match": {"path": "/old"}, "redirect": {"path": "/new"}}
    )
    await mesh.put(
        "routes",
        "api-teapot",
        {**sidecar, "match": {"prefix": "/tea"}, "direct_response": {"status": 418}},
    )
    inbound, outbound, app, admin = free_ports(4)
    bootstrap = await mesh.bootstrap(
        role="sidecar",
        service="client",
        inbound_port=inbound,
        app_port=app,
        outbound_port=outbound,
        admin_port=admin,
    )
    url = f"http://127.0.0.1:{outbound}"
    # (path, what Envoy does: a backend name or a status)
    table = [
        ("/v2/users", "one"),
        ("/users", "two"),  # the sidecar's default route for host api
        ("/old", "status 302"),
        ("/tea/pot", "status 418"),
    ]
    async with EnvoyProcess(bootstrap):
        await wait_until_served(url + "/users", lambda r: r.status_code == 200, headers=_api())
        for path, expected in table:
            response = await request(url + path, headers=_api())
            backend = response.headers.get("x-backend")
            assert (backend or f"status {response.status_code}") == expected, path
            answer = await _explained(mesh, source="client", host="api", path=path)
            if backend is not None:
                (destination,) = answer["destinations"]
                assert destination["service"] == {"one": "web", "two": "api"}[backend]
                assert answer["path"] == response.json()["path"]
            else:
                assert answer["status"] == response.status_code
            if response.status_code == 302:
                assert answer["location"].endswith(response.headers["location"])


def _api() -> dict[str, str]:
    return {"host": "api"}


def _to(service: str) -> dict[str, Any]:
    return {"destinations": [{"service": service}]}
