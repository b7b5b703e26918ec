"""POST /api/v1/apply: a batch of documents in one transaction, at one revision, all or none
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meshplane.store import Store

GATEWAY = {"kind": "gateway", "name": "edge", "spec": {"port": 8000}}
SERVICE = {"kind": "service", "name": "web", "spec": {"protocol": "http"}}
ENDPOINT = {
    "kind": "endpoint",
    "name": "web-1",
    "spec": {"service": "web", "address": "10.0.0.1", "port": 8080},
}
ROUTE = {
    "kind": "route",
    "name": "web",
    "spec": {"gateways": ["edge"], "destinations": [{"service": "web"}]},
}


async def _apply(api: httpx.AsyncClient, *documents: dict[str, Any]) -> httpx.Response:
    return await api.post("/api/v1/apply", json={"documents": list(documents)})


async def _names(store: Store) -> set[tuple[str, str]]:
    mesh = await store.load_mesh()
    return {("routes", n) for n in mesh.routes} | {("services", n) for n in mesh.services}


async def test_documents_that_refer_to_each_other_in_any_order_are_one_revision(
    api: httpx.AsyncClient, store: Store
) -> None:
    before = await store.revision()
    applied = await _apply(api, ROUTE, ENDPOINT, SERVICE, GATEWAY)  # referrers first
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["revision"] == before + 1
    assert [(d["kind"], d["name"], d["outcome"]) for d in body["documents"]] == [
        ("routes", "web", "created"),
        ("endpoints", "web-1", "created"),
        ("services", "web", "created"),
        ("gateways", "edge", "created"),
    ]
    assert {d["version"] for d in body["documents"]} == {before + 1}
    # One revision, four changes: what proxies are told about, all at once.
    changes = await store.changes_since(before)
    assert changes is not None
    assert {(c.revision, c.kind, c.name) for c in changes} == {
        (before + 1, "routes", "web"),
        (before + 1, "endpoints", "web-1"),
        (before + 1, "services", "web"),
        (before + 1, "gateways", "edge"),
    }

    slower = {**SERVICE, "spec": {"protocol": "http", "connect_timeout": "2s"}}
    again = await _apply(api, GATEWAY, slower, ENDPOINT, ROUTE)
    assert again.status_code == 200, again.text
    assert again.json()["revision"] == before + 2
    outcomes = {(d["kind"], d["name"]): d["outcome"] for d in again.json()["documents"]}
    assert outcomes == {
        ("gateways", "edge"): "unchanged",
        ("services", "web"): "configured",
        ("endpoints", "web-1"): "unchanged",
        ("routes", "web"): "unchanged",
    }
    assert (await _apply(api, GATEWAY)).json()["revision"] == before + 2  # nothing changed


@pytest.mark.parametrize(
    ("bad", "loc", "message"),
    [
        (
            {**ROUTE, "spec": {"gateways": ["edge"], "destinations": [{"service": "web"}],
                               "timeout": "fast"}},
            ["body", "documents", 3, "spec", "timeout"],
            "",
        ),
        (
            {**ROUTE, "spec": {"gateways": ["edge"], "destinations": [{"service": "nowhere"}]}},
            ["body", "documents", 3, "spec", "destinations", 0, "service"],
            "service 'nowhere' does not exist",
        ),
        (
            {"kind": "widget", "name": "web", "spec": {}},
            ["body", "documents", 3, "kind"],
            "unknown kind 'widget'",
        ),
    ],
    ids=["bad-field", "missing-reference", "unknown-kind"],
)  # fmt: skip
async def test_one_bad_document_writes_nothing_and_is_named(
    api: httpx.AsyncClient, store: Store, bad: dict[str, Any], loc: list[Any], message: str
) -> None:
    before = await store.revision()
    refused = await _apply(api, GATEWAY, SERVICE, ENDPOINT, bad)
    assert refused.status_code == 422, refused.text
    (error, *_) = refused.json()["detail"]
    assert error["loc"] == loc
    assert error["ctx"]["index"] == "3"
    assert error["ctx"]["name"] == "web"
    assert message in error["msg"]
    assert await store.revision() == before
    assert await _names(store) == set()


async def test_a_stale_version_or_a_hidden_route_refuses_the_whole_batch(
    api: httpx.AsyncClient, store: Store
) -> None:
    assert (await _apply(api, GATEWAY, SERVICE, ROUTE)).status_code == 200
    before = await store.revision()
    slower = {"protocol": "http", "connect_timeout": "2s"}
    stale = await _apply(api, {**SERVICE, "spec": slower, "version": before + 5})
    assert stale.status_code == 412
    assert stale.json()["detail"].startswith("document 0 (services/web): ")

    hidden = {**ROUTE, "name": "web-too"}  # the same match on the same host: never reached
    extra = {**SERVICE, "name": "other"}
    conflict = await _apply(api, extra, hidden)
    assert conflict.status_code == 409
    assert conflict.json()["detail"].startswith("document 1 (routes/web-too): ")
    assert await store.revision() == before
    assert ("services", "other") not in await _names(store)


async def test_a_document_twice_is_refused(api: httpx.AsyncClient, store: Store) -> None:
    refused = await _apply(api, SERVICE, GATEWAY, SERVICE)
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["ctx"] == {"index": "2", "kind": "services", "name": "web"}
    assert "appears twice" in error["msg"]
    assert await _names(store) == set()


def _route(name: str, prefix: str, **more: Any) -> dict[str, Any]:
    spec = {"gateways": ["edge"], "match": {"prefix": prefix}, "destinations": [{"service": "web"}]}
    return {"kind": "route", "name": name, "spec": {**spec, **more}}


async def test_the_batch_is_checked_as_a_whole_not_one_document_at_a_time(
    api: httpx.AsyncClient, store: Store
) -> None:
    # Two routes swap their paths: one at a time, the first would hide the second.
    assert (await _apply(api, GATEWAY, SERVICE, _route("a", "/a"), _route("b", "/b"))).is_success
    swapped = await _apply(api, _route("a", "/b"), _route("b", "/a"))
    assert swapped.status_code == 200, swapped.text
    # Sticky sessions off and a balancer that cannot keep them, together.
    ring = {**SERVICE, "spec": {"protocol": "http", "lb_policy": "ring_hash"}}
    sticky = _route("a", "/b", sticky={"cookie": {"name": "session"}})
    assert (await _apply(api, ring, sticky)).status_code == 200
    plain = {**SERVICE, "spec": {"protocol": "http", "lb_policy": "round_robin"}}
    both = await _apply(api, plain, _route("a", "/b"))
    assert both.status_code == 200, both.text
    # What would stay wrong after the whole batch is still refused.
    refused = await _apply(api, _route("a", "/b", sticky={"cookie": {"name": "session"}}))
    assert refused.status_code == 422
    assert "ring_hash or maglev" in refused.json()["detail"][0]["msg"]


async def test_a_first_import_checks_its_routes_against_one_another(
    api: httpx.AsyncClient, store: Store
) -> None:
    """Into a database holding nothing a neighbourhood is made of, a batch reads no
    neighbourhood before its writes (each would be empty); it is checked after them as any."""
    hiding = await _apply(api, GATEWAY, SERVICE, _route("a", "/a"), _route("b", "/a"))
    assert hiding.status_code == 409, hiding.text
    assert "route 'b' can never match" in hiding.json()["detail"]
    assert "route 'a' comes first" in hiding.json()["detail"]
    assert await _names(store) == set()
    both = await _apply(api, GATEWAY, SERVICE, _route("a", "/a"), _route("b", "/b"))
    assert both.status_code == 200, both.text
    again = await _apply(api, _route("c", "/b"))  # now something is stored: read before too
    assert again.status_code == 409, again.text
    assert "route 'c' can never match" in again.json()["detail"]
