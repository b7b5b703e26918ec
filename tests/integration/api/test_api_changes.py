"""GET /api/v1/changes: who wrote what, and when, for every write (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from meshplane.store import Store, TokenRepo
from tests.support.tokens import bearer


async def _editor(store: Store) -> dict[str, str]:
    token = await TokenRepo(store.database).create(
        "deploy", "editor", expires_at=None, created_by="test", now=datetime.now(UTC)
    )
    return bearer(token)


async def test_every_write_is_listed_with_its_token_and_time(
    api: httpx.AsyncClient, store: Store
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    deploy = await _editor(store)
    assert (await api.put("/api/v1/services/a", json={"spec": {}})).status_code == 201
    batch = [
        {"kind": "service", "name": "b", "spec": {}},
        {"kind": "service", "name": "c", "spec": {}},
    ]
    applied = await api.post("/api/v1/apply", json={"documents": batch}, headers=deploy)
    assert applied.status_code == 200, applied.text
    assert (await api.delete("/api/v1/services/a", headers=deploy)).status_code == 204

    listed = await api.get("/api/v1/changes")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["revision"], i["kind"], i["name"], i["op"], i["by"]) for i in items] == [
        (3, "services", "a", "delete", "deploy"),
        (2, "services", "b", "put", "deploy"),
        (2, "services", "c", "put", "deploy"),
        (1, "services", "a", "put", "admin"),
    ]
    assert all(start <= datetime.fromisoformat(i["at"]) <= datetime.now(UTC) for i in items)
    assert listed.json()["next_before"] is None

    only_admin = (await api.get("/api/v1/changes", params={"by": "admin"})).json()["items"]
    assert [(i["revision"], i["name"]) for i in only_admin] == [(1, "a")]
    only_a = (await api.get("/api/v1/changes", params={"kind": "service", "name": "a"})).json()
    assert [i["op"] for i in only_a["items"]] == ["delete", "put"]


async def test_pages_hold_whole_revisions(api: httpx.AsyncClient) -> None:
    for name in ("a", "b"):
        assert (await api.put(f"/api/v1/services/{name}", json={"spec": {}})).status_code == 201
    batch: list[dict[str, object]] = [
        {"kind": "service", "name": n, "spec": {}} for n in ("c", "d", "e")
    ]
    assert (await api.post("/api/v1/apply", json={"documents": batch})).status_code == 200
    seen: list[tuple[int, str]] = []
    before = None
    for _ in range(10):
        params = {"limit": 2} | ({"before": before} if before else {})
        page = (await api.get("/api/v1/changes", params=params)).json()
        seen += [(i["revision"], i["name"]) for i in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    # Revision 3 (three resources) comes whole in a page of 2; nothing is skipped or repeated.
    assert seen == [(3, "c"), (3, "d"), (3, "e"), (2, "b"), (1, "a")]


async def test_an_unknown_kind_is_named(api: httpx.AsyncClient) -> None:
    refused = await api.get("/api/v1/changes", params={"kind": "widget"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "kind"]


async def test_the_history_keeps_why_and_the_mesh_at_each_revision(
    api: httpx.AsyncClient,
) -> None:
    why = {"X-Change-Message": "new shop"}
    assert (await api.put("/api/v1/services/a", json={"spec": {}}, headers=why)).status_code == 201
    body = {"documents": [{"kind": "service", "name": "a", "spec": {"protocol": "http2"}}]}
    applied = await api.post("/api/v1/apply", json={**body, "message": "h2"}, headers=why)
    assert applied.status_code == 200, applied.text
    items = (await api.get("/api/v1/changes")).json()["items"]
    assert [(i["revision"], i["outcome"], i["message"]) for i in items] == [
        (2, "configured", "h2"),  # the body's message wins over the header
        (1, "created", "new shop"),
    ]
    since = items[0]["at"]
    assert len((await api.get("/api/v1/changes", params={"since": since})).json()["items"]) == 1
    naive = await api.get("/api/v1/changes", params={"since": since[:19]})
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["query", "since"]

    then = await api.get("/api/v1/revisions/1", params={"kind": "service"})
    assert then.status_code == 200, then.text
    assert then.json()["history_start"] == 0
    assert [(r["name"], r["spec"]["protocol"]) for r in then.json()["resources"]] == [("a", "http")]
    assert (await api.get("/api/v1/revisions/3")).status_code == 404

    last = (await api.get("/api/v1/diff")).json()
    assert (last["from_revision"], last["to_revision"]) == (1, 2)
    (change,) = last["changes"]
    assert (change["op"], change["before"]["spec"]["protocol"]) == ("configured", "http")
    backwards = await api.get("/api/v1/diff", params={"from": 2, "to": 1})
    assert backwards.status_code == 422


async def test_rollback_and_dry_runs_over_the_api(api: httpx.AsyncClient) -> None:
    assert (await api.put("/api/v1/services/a", json={"spec": {}})).status_code == 201
    documents = [{"kind": "service", "name": "b", "spec": {}}]
    dry = await api.post("/api/v1/apply", params={"dry_run": True}, json={"documents": documents})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    (b,) = dry.json()["documents"]
    assert (b["outcome"], b["before"], b["after"]["protocol"]) == ("created", None, "http")
    pruned = await api.post(
        "/api/v1/apply", json={"documents": documents, "prune": ["service"], "message": "sync"}
    )
    assert [(d["name"], d["outcome"]) for d in pruned.json()["documents"]] == [
        ("b", "created"),
        ("a", "deleted"),
    ]
    unknown = await api.post("/api/v1/apply", json={"documents": [], "prune": ["nope"]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "prune", 0]

    rolled = await api.post("/api/v1/rollback", json={"revision": 1})
    assert rolled.status_code == 200, rolled.text
    answer = rolled.json()
    assert answer["revision"] == 3
    assert [(d["name"], d["outcome"]) for d in answer["documents"]] == [
        ("a", "created"),
        ("b", "deleted"),
    ]
    assert "auto-registered endpoints are not rolled back" in answer["not_rolled_back"]
    history = (await api.get("/api/v1/changes", params={"limit": 2})).json()["items"]
    assert {i["message"] for i in history} == {"rollback to revision 1"}
    too_old = await api.post("/api/v1/rollback", json={"revision": 9})
    assert too_old.status_code == 422
    assert too_old.json()["detail"][0]["loc"] == ["body", "revision"]


async def test_validate_envoy_needs_an_envoy_to_ask(api: httpx.AsyncClient) -> None:
    body = {"documents": [{"kind": "service", "name": "a", "spec": {}}]}
    answer = await api.post("/api/v1/apply", params={"validate_envoy": True}, json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "validate_envoy"]
    assert "no Envoy binary" in answer.json()["detail"][0]["msg"]
    assert (await api.get("/api/v1/changes")).json()["items"] == []
