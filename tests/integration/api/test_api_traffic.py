"""Traffic-policy validation through the API (SQLite and PostgreSQL), and POST /explain.

A bad field is a 422 whose `loc` names it; a rule that needs the rest of the mesh (subsets that
exist, sticky sessions on a hash load balancer) is a 422 too; a route another one hides is a 409
naming both. A refused write changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

EDGE = {"gateways": ["edge"]}


async def put(api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any]):
    return await api.put(f"/api/v1/{plural}/{name}", json={"spec": spec})


async def ok(api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any]) -> None:
    response = await put(api, plural, name, spec)
    assert response.status_code in (200, 201), response.text


@pytest.fixture
async def shop(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A gateway and a service `shop` with a v1 and a v2 endpoint, plus an empty service."""
    await ok(api, "gateways", "edge", {"port": 8000})
    await ok(api, "services", "shop", {})
    await ok(api, "services", "empty", {})
    for version in ("v1", "v2"):
        endpoint = {"service": "shop", "address": "10.0.0.1", "port": 80}
        await ok(api, "endpoints", f"shop-{version}", {**endpoint, "labels": {"version": version}})
    return api


def route(**fields: Any) -> dict[str, Any]:
    return {**EDGE, "destinations": [{"service": "shop"}], **fields}


def error(response: httpx.Response) -> tuple[list[Any], str]:
    (detail,) = response.json()["detail"]
    return detail["loc"], detail["msg"]


@pytest.mark.parametrize(
    ("spec", "loc", "message"),
    [
        (
            {**EDGE, "destinations": [{"service": "shop", "weight": 0}]},
            ["body", "spec"],
            "at least one destination needs a weight above 0",
        ),
        (EDGE, ["body", "spec"], "give exactly one of 'destinations', 'redirect'"),
        (
            route(redirect={"path": "/x"}),
            ["body", "spec"],
            "give exactly one of 'destinations', 'redirect'",
        ),
        (
            {**EDGE, "redirect": {"status": 302}},
            ["body", "spec", "redirect"],
            "must change at least one of",
        ),
        (
            {**EDGE, "direct_response": {"status": 200}, "retries": {}},
            ["body", "spec"],
            "retries: only a route with destinations forwards requests",
        ),
        (
            route(timeout="1s", retries={"per_try_timeout": "2s"}),
            ["body", "spec"],
            "retries.per_try_timeout: longer than the route's timeout",
        ),
        (
            route(match={"regex": "^/a"}, rewrite={"prefix": "/b"}),
            ["body", "spec"],
            "a prefix rewrite needs a 'prefix' or 'path' match",
        ),
        (
            route(match={"query": [{"name": "debug", "present": False}]}),
            ["body", "spec", "match", "query", 0, "present"],
            "Input should be True",
        ),
        (
            route(request_headers={"set": {"host": "x"}}),
            ["body", "spec", "request_headers"],
            "cannot change host",
        ),
        (
            route(request_headers={"set": {"x-a": "1"}, "remove": ["x-a"]}),
            ["body", "spec", "request_headers"],
            "x-a appears more than once",
        ),
        (route(fault={}), ["body", "spec", "fault"], "give 'delay', 'abort' or both"),
        (
            route(fault={"abort": {"status": 503, "percent": 101}}),
            ["body", "spec", "fault", "abort", "percent"],
            "less than or equal to 100",
        ),
        (
            route(rate_limit={"requests": 10, "per": "10ms"}),
            ["body", "spec", "rate_limit", "per"],
            "greater than or equal to 0.05",
        ),
        (
            route(sticky={"header": "x-user", "cookie": {"name": "s"}}),
            ["body", "spec", "sticky"],
            "give exactly one of 'header' and 'cookie'",
        ),
        (
            route(mirrors=[{"service": "nope"}]),
            ["body", "spec", "mirrors", 0, "service"],
            "service 'nope' does not exist",
        ),
    ],
)
async def test_bad_route_fields_are_422_naming_the_field(
    shop: httpx.AsyncClient, spec: dict[str, Any], loc: list[Any], message: str
):
    response = await put(shop, "routes", "r", spec)
    assert response.status_code == 422, response.text
    got_loc, got_message = error(response)
    assert got_loc == loc
    assert message in got_message
    assert (await shop.get("/api/v1/routes/r")).status_code == 404


@pytest.mark.parametrize(
    ("spec", "loc", "message"),
    [
        (
            {"lb_policy": "fastest"},
            ["body", "spec", "lb_policy"],
            "'round_robin', 'least_request', 'random', 'ring_hash' or 'maglev'",
        ),
        (
            {"circuit_breaker": {"max_retries": 3, "retry_budget": {}}},
            ["body", "spec", "circuit_breaker"],
            "give max_retries or retry_budget, not both",
        ),
        (
            {"outlier_detection": {"max_ejection_percent": 120}},
            ["body", "spec", "outlier_detection", "max_ejection_percent"],
            "less than or equal to 100",
        ),
        (
            {"health_check": {"path": "healthz"}},
            ["body", "spec", "health_check", "path"],
            "must start with '/'",
        ),
        (
            {"protocol": "tcp", "rate_limit": {"requests": 5}},
            ["body", "spec"],
            "rate_limit: HTTP policies, not for a tcp service",
        ),
    ],
)
async def test_bad_service_fields_are_422_naming_the_field(
    api: httpx.AsyncClient, spec: dict[str, Any], loc: list[Any], message: str
):
    response = await put(api, "services", "s", spec)
    assert response.status_code == 422, response.text
    assert error(response)[0] == loc
    assert message in error(response)[1]


async def test_endpoint_zone_must_be_a_zone_name(api: httpx.AsyncClient):
    await ok(api, "services", "s", {})
    spec = {"service": "s", "address": "10.0.0.1", "port": 80, "zone": "Zone A"}
    response = await put(api, "endpoints", "e", spec)
    assert response.status_code == 422
    assert error(response)[0] == ["body", "spec", "zone"]


async def test_subset_no_endpoint_carries_is_422_unless_prepared_with_weight_zero(
    shop: httpx.AsyncClient,
):
    canary = [
        {"service": "shop", "labels": {"version": "v1"}, "weight": 90},
        {"service": "shop", "labels": {"version": "v3"}, "weight": 10},
    ]
    response = await put(shop, "routes", "canary", route(destinations=canary))
    assert response.status_code == 422
    loc, message = error(response)
    assert loc == ["body", "spec", "destinations", 1, "labels"]
    assert "no endpoint of service 'shop' carries version=v3" in message
    assert "version=v1, version=v2" in message
    # Weight 0 prepares the subset before its endpoints exist; an empty service is fine too.
    canary[1]["weight"] = 0
    await ok(shop, "routes", "canary", route(destinations=canary))
    await ok(
        shop,
        "routes",
        "empty",
        route(match={"prefix": "/e"}, destinations=[{"service": "empty", "labels": {"v": "1"}}]),
    )
    mirror = {"service": "shop", "labels": {"version": "v9"}}
    response = await put(
        shop, "routes", "mirrored", route(match={"prefix": "/m"}, mirrors=[mirror])
    )
    assert error(response)[0] == ["body", "spec", "mirrors", 0, "labels"]


async def test_sticky_sessions_need_a_hash_load_balancer_both_ways(shop: httpx.AsyncClient):
    sticky = route(sticky={"header": "x-user"})
    response = await put(shop, "routes", "sticky", sticky)
    assert response.status_code == 422
    loc, message = error(response)
    assert loc == ["body", "spec", "sticky"]
    assert "service 'shop' balances with round_robin" in message

    await ok(shop, "services", "shop", {"lb_policy": "ring_hash"})
    await ok(shop, "routes", "sticky", sticky)
    # Now the service cannot drop the hash policy while a sticky route depends on it.
    response = await put(shop, "services", "shop", {"lb_policy": "least_request"})
    assert response.status_code == 422
    loc, message = error(response)
    assert loc == ["body", "spec", "lb_policy"]
    assert "route 'sticky' uses sticky sessions" in message
    await ok(shop, "services", "shop", {"lb_policy": "maglev"})


async def test_a_route_another_one_hides_is_409_naming_both(shop: httpx.AsyncClient):
    await ok(shop, "routes", "a-all-methods", route(match={"prefix": "/api", "methods": ["GET"]}))
    # Same match on the same host: 'b' sorts after 'a' and could never be chosen.
    response = await put(
        shop, "routes", "b-copy", route(match={"prefix": "/api", "methods": ["GET"]})
    )
    assert response.status_code == 409
    message = response.json()["detail"]
    assert "route 'b-copy' can never match on gateway 'edge' host *:" in message
    assert "route 'a-all-methods' comes first" in message
    # The hidden route may also be the one already there.
    await ok(shop, "routes", "b-narrow", route(match={"prefix": "/api", "methods": ["DELETE"]}))
    response = await put(
        shop, "routes", "a-wide", route(match={"prefix": "/api", "methods": ["DELETE", "PUT"]})
    )
    assert response.status_code == 409
    assert "route 'b-narrow' can never match" in response.json()["detail"]
    # A header that must be present hides a route asking for one exact value of it.
    await ok(shop, "routes", "c-any", route(match={"headers": [{"name": "x-v", "present": True}]}))
    exact = {"headers": [{"name": "x-v", "exact": "2"}]}
    assert (await put(shop, "routes", "d-two", route(match=exact))).status_code == 409
    # Different hosts or a narrower match are fine.
    await ok(shop, "routes", "d-two", route(hosts=["other.example"], match=exact))
    await ok(shop, "routes", "e-deeper", route(match={"prefix": "/api/v2", "methods": ["GET"]}))


async def test_explain_names_the_route_and_why_the_others_lost(shop: httpx.AsyncClient):
    await ok(shop, "routes", "api", route(match={"prefix": "/api"}, timeout="2s"))
    await ok(shop, "routes", "root", route())
    response = await shop.post(
        "/api/v1/explain", json={"gateway": "edge", "host": "shop.example", "path": "/api/x"}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["route"], answer["outcome"], answer["virtual_host"]) == ("api", "forwarded", "*")
    assert answer["policies"]["timeout"] == "2s"
    (destination,) = answer["destinations"]
    assert (destination["service"], destination["percent"]) == ("shop", 100)
    assert [e["address"] for e in destination["endpoints"]] == ["10.0.0.1:80", "10.0.0.1:80"]
    assert answer["candidates"][1]["route"] == "root"
    assert "a longer prefix comes first" in answer["candidates"][1]["reasons"][0]

    response = await shop.post("/api/v1/explain", json={"gateway": "nope", "host": "x"})
    assert response.status_code == 422
    assert error(response)[0] == ["body", "gateway"]
    response = await shop.post("/api/v1/explain", json={"host": "x"})
    assert response.status_code == 422
