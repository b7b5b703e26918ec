"""Explain's matching and answers, on meshes built in memory (the e2e tests hold it to Envoy)."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.explain import ExplainRequest, explain
from meshplane.explain.destinations import cluster_name as _cluster_name
from meshplane.explain.matching import Request, normalise_host, pick_virtual_host
from meshplane.xds.translate.names import cluster_name
from tests.support.meshes import endpoint, gateway, mesh, route, service

MESH = mesh(
    service("web"),
    service("api", lb_policy="least_request", circuit_breaker={"max_requests": 10}),
    endpoint("api-1", "api", "10.0.0.1", 80, labels={"v": "1"}, zone="a"),
    endpoint("api-2", "api", "10.0.0.2", 80, labels={"v": "2"}),
    gateway("edge", 8080, hosts=["*", "shop.example", "*.example", "*.api.example"]),
    route(
        "split",
        gateways=["edge"],
        hosts=["shop.example"],
        match={"prefix": "/v/"},
        rewrite={"regex": {"pattern": "^/v/(\\w+)$", "substitution": "/items/\\1"}},
        destinations=[
            {"service": "api", "labels": {"v": "1"}, "weight": 3},
            {"service": "api", "labels": {"v": "2"}, "weight": 1},
            {"service": "api", "labels": {"v": "1"}, "weight": 4},
            {"service": "web", "weight": 0},
        ],
    ),
    route("gone", gateways=["edge"], match={"path": "/gone"}, destinations=[{"service": "web"}]),
    route("root", gateways=["edge"], destinations=[{"service": "web"}], timeout="1s"),
)


def ask(**fields: Any) -> Any:
    return explain(MESH, ExplainRequest.model_validate({"gateway": "edge", **fields}))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("shop.example", "shop.example"),
        ("x.example", "*.example"),
        ("deep.x.example", "*.example"),
        ("v1.api.example", "*.api.example"),  # the longest wildcard wins
        ("example", "*"),
        ("other.org", "*"),
    ],
)
def test_virtual_hosts_are_picked_like_envoy(host: str, expected: str):
    assert pick_virtual_host(host, ["*", "shop.example", "*.example", "*.api.example"]) == expected
    assert pick_virtual_host(host, ["shop.example"]) in (None, "shop.example")


def test_hosts_lose_their_port_and_case():
    assert normalise_host("Shop.Example:8080") == "shop.example"
    assert normalise_host("[::1]:80") == "[::1]"
    assert normalise_host("10.0.0.1") == "10.0.0.1"


def test_query_parameters_are_decoded_first_values():
    request = Request.of("h", "/p?a=1&a=2&b=x%20y&flag", "get", {"X-A": "1"})
    assert request.query == {"a": "1", "b": "x y", "flag": ""}
    assert (request.path, request.method, request.headers) == ("/p", "GET", {"x-a": "1"})


def test_cluster_names_agree_with_the_translator():
    for service_name, labels in [("api", {}), ("api", {"v": "1", "a": "b"})]:
        assert _cluster_name(service_name, labels) == cluster_name(service_name, labels)


def test_weighted_destinations_merge_per_cluster_and_skip_weight_zero():
    answer = ask(host="shop.example:8080", path="/v/42?x=1")
    assert (answer.route, answer.outcome, answer.status) == ("split", "forwarded", None)
    shares = [(d.cluster, d.weight, d.percent) for d in answer.destinations]
    assert shares == [("api|v=1", 7, 87.5), ("api|v=2", 1, 12.5)]
    assert [e.address for e in answer.destinations[0].endpoints] == ["10.0.0.1:80"]
    assert answer.destinations[0].endpoints[0].zone == "a"
    policies = answer.destinations[0].policies
    assert (policies.lb_policy, policies.circuit_breaker.max_requests) == ("least_request", 10)
    assert answer.path == "/items/42?x=1"


def test_other_hosts_routes_are_listed_with_why():
    answer = ask(host="other.org", path="/gone")
    assert answer.route == "gone"
    reasons = {c.route: c.reasons for c in answer.candidates}
    assert reasons["root"] == [
        "matches too, but 'gone' comes first: an exact path comes before a prefix"
    ]
    assert reasons["split"] == ["serves host shop.example, not this one"]


def test_a_route_whose_services_are_gone_answers_503_itself():
    example = mesh(
        gateway("edge", 8080),
        route("ghostly", gateways=["edge"], timeout="1s", destinations=[{"service": "ghost"}]),
    )
    answer = explain(example, ExplainRequest(gateway="edge", host="x"))
    assert (answer.route, answer.outcome, answer.status) == ("ghostly", "unavailable", 503)
    assert answer.policies is not None
    assert answer.policies.timeout == 1.0


def test_unknown_gateway_or_source_is_refused():
    with pytest.raises(ValueError, match="gateway 'nope' does not exist"):
        explain(MESH, ExplainRequest(gateway="nope", host="x"))
    with pytest.raises(ValueError, match="service 'nope' does not exist"):
        explain(MESH, ExplainRequest(source="nope", host="x"))


def test_sidecar_requests_to_unknown_hosts_are_404():
    answer = explain(MESH, ExplainRequest(source="web", host="elsewhere"))
    assert (answer.outcome, answer.status, answer.virtual_host) == ("no_route", 404, None)
    assert "no virtual host serves 'elsewhere'" in answer.summary
