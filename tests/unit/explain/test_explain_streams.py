"""Explain for connections: a tcp gateway, a tls gateway by SNI, a sidecar to a tcp service
(the example mesh the translation tests hold to Envoy, so the answers are what Envoy does)."""

from __future__ import annotations

from typing import Any

from meshplane.cli.explain import render
from meshplane.explain import ExplainRequest, explain
from tests.unit.translate.meshes import EXAMPLES

TCP = EXAMPLES["tcp"].mesh


def ask(**fields: Any) -> Any:
    return explain(TCP, ExplainRequest.model_validate(fields))


def test_a_tls_gateway_routes_by_sni_without_terminating() -> None:
    shop = ask(gateway="passthrough", host="shop.example.com")
    assert (shop.protocol, shop.route, shop.virtual_host) == ("tls", "to-shop", "shop.example.com")
    assert shop.status is None
    assert [d.cluster for d in shop.destinations] == ["db"]
    assert "unterminated" in shop.summary
    other = ask(gateway="passthrough", host="api.example.com")
    assert other.route == "to-any-example"
    assert [d.percent for d in other.destinations] == [50, 50]
    rest = ask(gateway="passthrough", host="elsewhere.org")
    assert rest.route == "to-rest"
    chosen = [c.route for c in rest.candidates if c.chosen]
    assert chosen == ["to-rest"]
    text = render(rest.model_dump(mode="json"))
    assert "SNI 'elsewhere.org'" in text


def test_a_tcp_gateway_forwards_every_connection_to_its_route() -> None:
    answer = ask(gateway="db-edge", host="anything")
    assert (answer.protocol, answer.route, answer.outcome) == ("tcp", "to-db", "forwarded")
    assert [d.cluster for d in answer.destinations] == ["db"]
    idle = ask(gateway="idle", host="anything")
    assert (idle.outcome, idle.status, idle.route) == ("no_route", None, None)
    assert "refused" in idle.summary


def test_a_sidecar_connection_to_a_tcp_service_takes_its_split() -> None:
    answer = ask(source="web", host="echo")
    assert (answer.protocol, answer.route) == ("tcp", "echo-split")
    assert [(d.cluster, d.percent) for d in answer.destinations] == [
        ("echo|version=v1", 90),
        ("echo|version=v2", 10),
    ]
    assert "port 7000" in answer.proxy
    plain = ask(source="web", host="db")  # a tcp service without a route: the service itself
    assert plain.route is None
    assert [d.cluster for d in plain.destinations] == ["db"]
