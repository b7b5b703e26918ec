"""The change log as the mesh's history: what each change did and why, the mesh at any retained
revision, differences, pruning that keeps every retained revision exact, rollback and prune
(SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, delete, select

import meshplane.store
from meshplane.errors import Conflict, InvalidMesh, NotFound
from meshplane.model import EndpointSpec, RouteSpec, ServiceSpec, Spec
from meshplane.store import ChangeFeed, Document, Store, canonical, revisions
from meshplane.store.tables import ChangeRow

SVC = ServiceSpec()


def _route(service: str, weight_v2: int = 0) -> RouteSpec:
    destinations: list[dict[str, Any]] = [{"service": service, "weight": 100 - weight_v2}]
    if weight_v2:
        destinations.append({"service": f"{service}-v2", "weight": weight_v2})
    return RouteSpec.model_validate({"hosts": [service], "destinations": destinations})


def _endpoint(service: str, last: int = 1) -> EndpointSpec:
    return EndpointSpec(service=service, address=f"10.0.0.{last}", port=80)


async def _specs(store: Store, revision: int | None = None) -> dict[tuple[str, str], Any]:
    """Every resource's stored spec, now or (`revision`) as rebuilt from the history."""
    at = await store.revision() if revision is None else revision
    return {(s.kind, s.name): s.spec for s in await store.mesh_at(at)}


async def _writes(store: Store) -> dict[int, dict[tuple[str, str], Any]]:
    """A history of creates, updates, deletes and a batch; the mesh after each revision."""
    seen = {0: await _specs(store)}
    steps: list[tuple[str, str, Spec | None]] = [
        ("services", "web", SVC),
        ("services", "web-v2", SVC),
        ("endpoints", "web-1", _endpoint("web")),
        ("routes", "web", _route("web")),
        ("routes", "web", _route("web", 20)),
        ("endpoints", "web-1", None),
        ("services", "db", ServiceSpec(protocol="tcp")),
        ("endpoints", "web-1", _endpoint("web", 2)),
    ]
    for kind, name, spec in steps:
        if spec is None:
            await store.delete(kind, name)
        else:
            await store.put(kind, name, spec)
        seen[await store.revision()] = await _specs(store)
    batch = [Document("services", "cache", SVC), Document("routes", "web", _route("web", 50))]
    await store.apply(batch, message="canary to half")
    seen[await store.revision()] = await _specs(store)
    return seen


async def test_each_change_says_what_it_did_and_why(store: Store):
    await store.put("services", "web", SVC, by="deploy", message="first")
    await store.put("services", "web", ServiceSpec(protocol="http2"))
    await store.delete("services", "web", message="gone")
    await store.put("services", "web", SVC)
    entries = await store.history()
    assert [(e.revision, e.outcome, e.op, e.message) for e in entries] == [
        (4, "created", "put", None),
        (3, "deleted", "delete", "gone"),
        (2, "configured", "put", None),
        (1, "created", "put", "first"),
    ]
    assert entries[-1].by == "deploy"
    assert entries[0].at is not None
    assert await store.history(since=entries[0].at) == entries[:1]
    assert await store.history(until=entries[1].at) == entries[1:]


async def test_the_mesh_at_every_revision_is_rebuilt_exactly(store: Store):
    seen = await _writes(store)
    for revision, specs in seen.items():
        assert await _specs(store, revision) == specs, revision
    only = await store.mesh_at(5, kind="routes", name="web")
    assert [s.spec["destinations"][1]["weight"] for s in only] == [20]
    with pytest.raises(NotFound, match="does not exist yet"):
        await store.mesh_at(len(seen))


async def test_differences_hold_only_what_differs_at_both_ends(store: Store):
    seen = await _writes(store)
    last = max(seen)
    found = await store.differences(last - 1, last)
    assert [(d.kind, d.name, d.op) for d in found] == [
        ("routes", "web", "configured"),
        ("services", "cache", "created"),
    ]
    assert found[0].before is not None
    assert found[0].after is not None
    assert found[0].before.spec["destinations"][1]["weight"] == 20
    assert found[0].after.spec["destinations"][1]["weight"] == 50
    # web-1 was deleted and put back between 5 and 8, at another address; db came and stayed.
    between = {(d.kind, d.name): d.op for d in await store.differences(5, 8)}
    assert between == {("endpoints", "web-1"): "configured", ("services", "db"): "created"}
    assert all(d.op == "created" for d in await store.differences(0, last))


async def test_pruning_keeps_every_retained_revision_exact(store: Store, monkeypatch):
    monkeypatch.setattr(revisions, "PRUNE_EVERY", 5)
    store = Store(store.database, store.feed, history_revisions=4)
    seen = await _writes(store)  # revisions 1..9, pruned at 5 (history from 1)
    for i in range(6):  # revisions 10..15, pruned at 10 (from 6) and 15 (from 11)
        await store.put("services", "web", ServiceSpec(connect_timeout=f"{i + 2}s"))
        seen[await store.revision()] = await _specs(store)
    start, current = await store.history_range()
    assert (start, current) == (11, 15)
    for revision in range(start, current + 1):
        assert await _specs(store, revision) == seen[revision], revision
    with pytest.raises(NotFound, match="starts at revision 11"):
        await store.mesh_at(10)
    assert min(e.revision for e in await store.history(limit=1000)) == 12
    log = Store(store.database, ChangeFeed(current))  # reads the log, as a restarted process
    assert await log.changes_since(10) is None
    assert [c.revision for c in await log.changes_since(11) or []] == [12, 13, 14, 15]


async def test_rollback_puts_back_what_operators_wrote_as_a_new_revision(store: Store):
    seen = await _writes(store)
    await store.put("endpoints", "web-auto", _endpoint("web", 9), source="auto")
    revision, applied = await store.rollback(4, by="oncall")
    assert revision == max(seen) + 2
    assert {(a.kind, a.name): a.outcome for a in applied} == {
        ("routes", "web"): "configured",
        ("endpoints", "web-1"): "configured",
        ("services", "db"): "deleted",
        ("services", "cache"): "deleted",
    }
    now = await _specs(store)
    assert now.pop(("endpoints", "web-auto"))["address"] == "10.0.0.9"  # auto: left alone
    assert now == seen[4]
    (entry, *_) = await store.history()
    assert (entry.revision, entry.by, entry.message) == (
        revision,
        "oncall",
        "rollback to revision 4",
    )
    assert await store.rollback(4) == (revision, [])  # nothing left to do


async def test_a_rollback_that_would_strand_auto_endpoints_needs_cascade(store: Store):
    await store.put("services", "web", SVC)
    await store.put("services", "new", SVC)
    await store.put("endpoints", "new-auto", _endpoint("new"), source="auto")
    with pytest.raises(
        Conflict, match="endpoints/new-auto refer to it now; roll back with cascade"
    ):
        await store.rollback(1)
    assert await store.revision() == 3
    _, applied = await store.rollback(1, cascade=True)
    assert {(a.kind, a.name, a.outcome) for a in applied} == {
        ("services", "new", "deleted"),
        ("endpoints", "new-auto", "deleted"),
    }
    assert set(await _specs(store)) == {("services", "web")}


async def test_a_dry_run_checks_everything_and_writes_nothing(store: Store):
    await store.put("services", "web", SVC)
    batch = [Document("routes", "web", _route("web")), Document("services", "web", SVC)]
    revision, applied = await store.apply(batch, dry_run=True)
    assert revision == 2
    assert [(a.name, a.outcome, a.before) for a in applied] == [
        ("web", "created", None),
        ("web", "unchanged", canonical(SVC)),
    ]
    assert applied[0].after == _route("web").model_dump(mode="json", exclude_none=True)
    assert await store.revision() == 1
    bad = [Document("routes", "web", _route("nowhere"))]
    with pytest.raises(InvalidMesh, match="service 'nowhere' does not exist"):
        await store.apply(bad, dry_run=True)
    rolled, _ = await store.rollback(0, dry_run=True)
    assert (rolled, await store.revision()) == (2, 1)


async def test_prune_deletes_what_the_documents_no_longer_hold(store: Store):
    for name in ("web", "api", "old"):
        await store.put("services", name, SVC)
    await store.put("routes", "old", _route("old"))
    await store.put("endpoints", "old-auto", _endpoint("old"), source="auto")
    keep = [Document("services", "web", SVC), Document("services", "api", SVC)]
    with pytest.raises(Conflict, match=r"document 2 \(services/old\).*routes/old"):
        await store.apply(keep, prune=["services"])
    assert await store.revision() == 5
    keep.append(Document("services", "old", SVC))
    _, applied = await store.apply(keep, prune=["services", "routes"], message="sync")
    assert [(a.kind, a.name, a.outcome) for a in applied] == [
        ("services", "web", "unchanged"),
        ("services", "api", "unchanged"),
        ("services", "old", "unchanged"),
        ("routes", "old", "deleted"),
    ]
    assert ("endpoints", "old-auto") in await _specs(store)  # auto-registered: never pruned


async def test_the_migration_fills_what_each_logged_change_did(store: Store):
    await _writes(store)

    def ops(connection: Connection) -> list[tuple[int, str, str, str | None]]:
        columns = (ChangeRow.revision, ChangeRow.kind, ChangeRow.name, ChangeRow.op)
        return sorted(tuple(r) for r in connection.execute(select(*columns)))  # type: ignore[misc]

    def migrate_again(connection: Connection, prune_below: int = 0) -> None:
        config = Config()
        migrations = Path(meshplane.store.__file__).parent / "migrations"
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
        connection.execute(delete(ChangeRow).where(ChangeRow.revision < prune_below))
        command.upgrade(config, "head")

    written = await store.database.write(ops)
    await store.database.write(migrate_again)
    assert await store.database.write(ops) == written
    assert await store.history_range() == (0, 9)
    # A log pruned by an older version: its first rows' effect is unknown, and history
    # starts where it is whole.
    await store.database.write(lambda c: migrate_again(c, prune_below=5))
    after = await store.database.write(ops)
    assert [op for _, kind, _, op in after if kind == "routes"] == [None, "configured"]
    assert [op for _, _, name, op in after if name == "web-1"] == ["deleted", "created"]
    assert await store.history_range() == (4, 9)
    with pytest.raises(NotFound, match="what the history knows of routes/web"):
        await store.mesh_at(4)
    assert [s.name for s in await store.mesh_at(5, kind="routes")] == ["web"]


async def test_a_rollback_leaves_what_was_auto_registered_then(store: Store):
    await store.put("services", "web", SVC)
    await store.put("endpoints", "web-1", _endpoint("web"), source="auto")
    await store.put("endpoints", "web-1", _endpoint("web", 3))  # an operator takes it over
    _, applied = await store.rollback(2)
    assert applied == []
    assert (await store.get("endpoints", "web-1")).spec == _endpoint("web", 3)
