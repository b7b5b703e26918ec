"""Faults, mirroring, header changes, rewrites, redirects, direct responses and rate limits, each
observed through a real Envoy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.e2e.edge import EDGE, gateway, request, service
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.traffic import answered_by, client, wait_until_served

pytestmark = pytest.mark.e2e


def _route(prefix: str, **policies: Any) -> dict[str, Any]:
    return {
        "gateways": ["edge"],
        "match": {"prefix": prefix},
        "destinations": [{"service": "web"}],
        **policies,
    }


ROUTES: dict[str, dict[str, Any]] = {
    "abort": _route("/abort", fault={"abort": {"status": 418}}),
    "delay": _route("/delay", fault={"delay": {"duration": "300ms"}}),
    "mirrored": _route("/mirrored", mirrors=[{"service": "audit"}]),
    "headers": _route(
        "/headers",
        request_headers={
            "set": {"x-env": "prod"},
            "add": {"x-added": "yes"},
            "remove": ["x-secret"],
        },
        response_headers={"set": {"x-served-by": "meshplane"}, "remove": ["x-backend"]},
    ),
    "prefix-rewrite": _route("/api/", rewrite={"prefix": "/", "host": "internal.example"}),
    "regex-rewrite": _route(
        "/old/", rewrite={"regex": {"pattern": "^/old/(\\w+)/(\\w+)$", "substitution": "/\\2/\\1"}}
    ),
    "moved": {
        "gateways": ["edge"],
        "match": {"path": "/moved"},
        "redirect": {"host": "example.org", "path": "/landing", "status": 301},
    },
    "teapot": {
        "gateways": ["edge"],
        "match": {"prefix": "/teapot"},
        "direct_response": {"status": 418, "body": "short and stout"},
    },
    "limited": _route("/limited", rate_limit={"requests": 3, "per": "1m"}),
}


async def test_route_policies_seen_through_envoy(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    web, audit = backends("web"), backends("audit")
    await service(mesh, "web", [web])
    await service(mesh, "audit", [audit])
    bootstrap, url = await gateway(mesh)
    for name, spec in ROUTES.items():
        await mesh.put("routes", name, spec)
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/headers", lambda r: r.status_code == 200)
        async with client() as http:
            # Faults: an abort never reaches the backend; a delay holds the request.
            before = web.requests
            response = await http.get(url + "/abort")
            assert response.status_code == 418
            assert web.requests == before
            started = time.monotonic()
            response = await http.get(url + "/delay")
            assert (response.status_code, answered_by(response)) == (200, "web")
            assert time.monotonic() - started >= 0.29

            # Mirroring: the mirror receives a copy of every request; its answers are dropped.
            audit.reset()
            for i in range(5):
                response = await http.get(url + f"/mirrored/{i}")
                assert answered_by(response) == "web"
            await envoy.wait_for(lambda: audit.requests == 5, timeout=5)
            assert set(audit.seen) == {f"/mirrored/{i}" for i in range(5)}

            # Header changes on the request (seen by the backend) and on the response.
            response = await http.get(
                url + "/headers", headers={"x-env": "dev", "x-secret": "hunter2"}
            )
            seen = response.json()["headers"]
            assert (seen["x-env"], seen["x-added"]) == ("prod", "yes")
            assert "x-secret" not in seen
            assert response.headers["x-served-by"] == "meshplane"
            assert "x-backend" not in response.headers

            # Rewrites: the prefix and the host, or the path by regex.
            body = (await http.get(url + "/api/users?page=2")).json()
            assert (body["path"], body["host"]) == ("/users?page=2", "internal.example")
            assert (await http.get(url + "/old/a/b")).json()["path"] == "/b/a"

            # Redirects and direct responses come from Envoy itself.
            response = await http.get(url + "/moved")
            assert response.status_code == 301
            assert response.headers["location"] == "http://example.org/landing"
            response = await http.get(url + "/teapot")
            assert (response.status_code, response.text) == (418, "short and stout")

            # A route rate limit: 3 requests a minute, then 429.
            statuses = [(await http.get(url + "/limited")).status_code for _ in range(5)]
            assert statuses == [200, 200, 200, 429, 429]
    await mesh.validate_served(EDGE)


async def test_service_rate_limit_is_enforced_by_each_instance_sidecar(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    app = backends("capped")
    await mesh.put("services", "capped", {"rate_limit": {"requests": 2, "per": "1m"}})
    bootstrap, url = await gateway(mesh)
    await mesh.put(
        "routes", "capped", {"gateways": ["edge"], "destinations": [{"service": "capped"}]}
    )
    inbound, outbound, admin = free_ports(3)
    sidecar = await mesh.bootstrap(
        role="sidecar",
        service="capped",
        inbound_port=inbound,
        app_port=app.port,
        outbound_port=outbound,
        admin_port=admin,
    )
    async with EnvoyProcess(sidecar) as instance, EnvoyProcess(bootstrap):
        # The sidecar registered itself; its inbound listener holds the bucket of 2.
        await wait_until_served(url + "/", lambda r: answered_by(r) == "capped")
        statuses = [(await request(url + "/")).status_code for _ in range(3)]
        assert statuses[1:] == [429, 429], statuses
        assert app.requests == 2  # the instance's sidecar turned the rest away
        stats = await instance.stats()
        assert stats["inbound_rate_limit.http_local_rate_limit.rate_limited"] >= 2
