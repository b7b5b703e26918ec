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
