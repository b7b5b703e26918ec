"""TCP through the mesh, through the API and the store (SQLite and PostgreSQL): what routes,
policies, services and gateways may say once TCP is involved, checked from every side; a
refusal is a 422 naming the field, or a 409 naming both resources, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api.test_api_traffic import error, ok, put

SPLIT = {
    "hosts": ["echo"],
    "destinations": [
        {"service": "echo", "labels": {"version": "v1"}, "weight": 90},
        {"service": "echo", "labels": {"version": "v2"}, "weight": 10},
    ],
}


@pytest.fixture
async def tcp(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A tcp service `echo` on mesh port 7000 with a v1 and a v2 endpoint, an HTTP service
    `web`, and a tcp gateway `pipe`."""
    await ok(api, "services", "echo", {"protocol": "tcp", "port": 7000})
    await ok(api, "services", "web", {})
    for version in ("v1", "v2"):
        endpoint = {"service": "echo", "address": "10.0.0.1", "port": 80}
        await ok(api, "endpoints", f"echo-{version}", {**endpoint, "labels": {"version": version}})
    await ok(api, "gateways", "pipe", {"port": 9000, "protocol": "tcp"})
    return api


async def _refused(
    api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any], status: int = 422
) -> tuple[list[Any], str]:
    response = await put(api, plural, name, spec)
    assert response.status_code == status, response.text
    if status == 409:
        return [], response.json()["detail"]
    return error(response)


@pytest.mark.parametrize(
    ("spec", "loc"),
    [
        ({"port": 7100}, ["body", "spec"]),  # an HTTP service has no mesh port
        ({"protocol": "tcp", "port": 0}, ["body", "spec", "port"]),
    ],
)
async def test_a_mesh_port_is_for_tcp_services(tcp: httpx.AsyncClient, spec, loc):
    found, message = await _refused(tcp, "services", "other", spec)
    assert found == loc
    if loc == ["body", "spec"]:
        assert message.startswith("Value error, port: only a tcp service")


async def test_two_tcp_services_cannot_share_a_port(tcp: httpx.AsyncClient):
    _, message = await _refused(
        tcp, "services", "cache", {"protocol": "tcp", "port": 7000}, status=409
    )
    assert "'echo'" in message
    assert "'cache'" in message
    await ok(tcp, "services", "cache", {"protocol": "tcp", "port": 7001})
    # Moving echo off the port frees it.
    await ok(tcp, "services", "echo", {"protocol": "tcp", "port": 7002})
    await ok(tcp, "services", "cache", {"protocol": "tcp", "port": 7000})


async def test_a_weighted_tcp_split_carries_only_hosts_and_destinations(tcp: httpx.AsyncClient):
    await ok(tcp, "routes", "echo-split", SPLIT)
    for extra, field in (
        ({"timeout": "1s"}, "timeout"),
        ({"match": {"prefix": "/a"}}, "match"),
        ({"retries": {}}, "retries"),
        ({"request_headers": {"set": {"x": "1"}}}, "request_headers"),
    ):
        loc, message = await _refused(tcp, "routes", "echo-split", {**SPLIT, **extra})
        assert loc == ["body", "spec", field]
        assert "tcp service" in message


async def test_a_service_turning_tcp_is_checked_against_its_routes_and_policies(
    tcp: httpx.AsyncClient,
):
    await ok(tcp, "routes", "web-slow", {"hosts": ["web"], "destinations": [{"service": "web"}],
                                         "match": {"prefix": "/slow"}})  # fmt: skip
    loc, message = await _refused(tcp, "services", "web", {"protocol": "tcp"})
    assert loc == ["body", "spec", "protocol"]
    assert "web-slow" in message
    await tcp.delete("/api/v1/routes/web-slow")
    await ok(tcp, "authorization-policies", "web-get", {"target": "web", "methods": ["GET"]})
    loc, message = await _refused(tcp, "services", "web", {"protocol": "tcp"})
    assert loc == ["body", "spec", "protocol"]
    assert "web-get" in message
    await ok(tcp, "authorization-policies", "web-get", {"target": "web"})
    await ok(tcp, "services", "web", {"protocol": "tcp"})


async def test_policies_on_a_tcp_service_match_callers_only(tcp: httpx.AsyncClient):
    callers = {"target": "echo", "callers": [{"service": "web"}]}
    await ok(tcp, "authorization-policies", "callers", callers)
    for field, value in (("paths", ["/a"]), ("methods", ["GET"])):
        loc, message = await _refused(
            tcp, "authorization-policies", "narrow", {"target": "echo", field: value}
        )
        assert loc == ["body", "spec", field]
        assert "tcp service" in message


async def test_a_tcp_gateway_takes_one_route_of_destinations_only(tcp: httpx.AsyncClient):
    route = {"gateways": ["pipe"], "destinations": [{"service": "echo"}]}
    await ok(tcp, "routes", "to-echo", route)
    _, message = await _refused(tcp, "routes", "again", route, status=409)
    assert "'to-echo'" in message
    assert "'again'" in message
    loc, _ = await _refused(tcp, "routes", "to-echo", {**route, "hosts": ["a.example"]})
    assert loc == ["body", "spec", "hosts"]
    loc, _ = await _refused(tcp, "routes", "to-echo", {**route, "timeout": "1s"})
    assert loc == ["body", "spec", "timeout"]


async def test_a_gateway_turning_tcp_is_checked_against_its_routes(tcp: httpx.AsyncClient):
    await ok(tcp, "gateways", "edge", {"port": 8000})
    await ok(tcp, "routes", "a", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    await ok(tcp, "routes", "b", {"gateways": ["edge"], "hosts": ["b.example"],
                                  "destinations": [{"service": "web"}]})  # fmt: skip
    loc, message = await _refused(tcp, "gateways", "edge", {"port": 8000, "protocol": "tcp"})
    assert loc == ["body", "spec", "protocol"]
    assert "'b'" in message
    await tcp.delete("/api/v1/routes/b")
    await ok(tcp, "gateways", "edge", {"port": 8000, "protocol": "tcp"})


@pytest.mark.parametrize(
    ("spec", "loc", "message"),
    [
        ({"port": 443, "protocol": "https"}, ["body", "spec"], "tls: an https gateway needs"),
        (
            {"port": 443, "protocol": "tls", "https_redirect": True},
            ["body", "spec"],
            "https_redirect: only an http gateway",
        ),
        (
            {"port": 5432, "protocol": "tcp", "hosts": ["db.example"]},
            ["body", "spec"],
            "hosts: a tcp gateway",
        ),
    ],
)
async def test_gateway_protocols(tcp: httpx.AsyncClient, spec, loc, message):
    found, text = await _refused(tcp, "gateways", "other", spec)
    assert found == loc
    assert message in text


async def test_a_batch_is_checked_as_a_whole(tcp: httpx.AsyncClient):
    """Two new tcp services on one port in one apply: refused, whichever comes first."""
    documents = [
        {"kind": "Service", "name": n, "spec": {"protocol": "tcp", "port": 7500}}
        for n in ("x", "y")
    ]
    response = await tcp.post("/api/v1/apply", json={"documents": documents})
    assert response.status_code == 409, response.text


async def test_routes_on_a_tls_gateway_pass_connections_through(tcp: httpx.AsyncClient):
    """A tls gateway's routes are SNI names and destinations: HTTP settings are refused, from
    the route's side and from the gateway's (turning tls), and one SNI name takes one route."""
    await ok(tcp, "gateways", "sni", {"port": 9443, "protocol": "tls"})
    one = {"gateways": ["sni"], "hosts": ["a.example.com"], "destinations": [{"service": "echo"}]}
    await ok(tcp, "routes", "to-a", one)
    found, message = await _refused(tcp, "routes", "to-b", {**one, "timeout": "1s"})
    assert found == ["body", "spec", "timeout"]
    assert "tls gateway" in message
    _, conflict = await _refused(tcp, "routes", "to-a-again", one, status=409)
    assert "to-a" in conflict
    await ok(tcp, "gateways", "web-edge", {"port": 9080})
    await ok(
        tcp,
        "routes",
        "slow",
        {"gateways": ["web-edge"], "timeout": "1s", "destinations": [{"service": "web"}]},
    )
    found, message = await _refused(tcp, "gateways", "web-edge", {"port": 9080, "protocol": "tls"})
    assert found == ["body", "spec", "protocol"]
    assert "slow" in message
