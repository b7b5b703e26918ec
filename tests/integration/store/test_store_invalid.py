"""A stored spec that no longer validates (an older version's row, a hand edit) breaks no read:
it is reported, kept out of the Mesh with what refers to it, and fixed by a PUT or a DELETE; on
SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from meshplane.errors import Conflict, InvalidMesh, PreconditionFailed
from meshplane.model import Change, EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec
from meshplane.store import ChangeFeed, InvalidResource, Store, StoredInvalid
from meshplane.store.tables import ChangeRow, MeshStateRow, RefRow, ResourceRow
from tests.support.stored import BAD_VALUE, UNKNOWN_FIELD, spoil


def _route(*services: str, gateway: str = "edge") -> RouteSpec:
    return RouteSpec.model_validate(
        {"gateways": [gateway], "destinations": [{"service": s} for s in services]}
    )


def _spoil(store: Store, kind: str, name: str, spec: Any) -> int:
    return spoil(store.database.engine, kind, name, spec)


def _refs(store: Store, kind: str, name: str) -> set[tuple[str, str]]:
    with store.database.engine.begin() as connection:
        rows = connection.execute(
            select(RefRow.to_kind, RefRow.to_name).where(
                RefRow.from_kind == kind, RefRow.from_name == name
            )
        )
        return {(k, n) for k, n in rows}


async def _mesh(store: Store) -> None:
    """web and api behind gateway edge, web with an endpoint and a policy."""
    await store.put("services", "web", ServiceSpec())
    await store.put("services", "api", ServiceSpec())
    await store.put("gateways", "edge", GatewaySpec(port=8000))
    await store.put("endpoints", "web-1", EndpointSpec(service="web", address="10.0.0.1", port=80))
    await store.put("routes", "web", _route("web"))
    await store.put(
        "routes",
        "api",
        RouteSpec.model_validate({"hosts": ["api"], "destinations": [{"service": "api"}]}),
    )


async def test_load_leaves_it_out_with_its_referrers_and_logs_it_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await _mesh(store)
    version = _spoil(store, "services", "web", UNKNOWN_FIELD)
    caplog.set_level(logging.WARNING, logger="meshplane.store")

    mesh = await store.load_mesh()
    assert set(mesh.services) == {"api"}
    assert set(mesh.routes) == {"api"}
    assert not mesh.endpoints
    assert set(mesh.gateways) == {"edge"}
    assert set(mesh.invalid) == {("services", "web")}
    assert set(mesh.left_out) == {("endpoints", "web-1"), ("routes", "web")}

    [report] = await store.invalid_resources()
    assert report.resource.key == ("services", "web")
    assert report.resource.version == version
    assert report.resource.reason == "no_such_field: Extra inputs are not permitted"
    assert report.left_out == (("endpoints", "web-1"), ("routes", "web"))

    await store.load_mesh()  # found again: not logged again
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "kind=services name=web" in warnings[0]
    assert "no_such_field: Extra inputs are not permitted" in warnings[0]


async def test_reads_answer_the_valid_ones_and_name_the_invalid_one(store: Store) -> None:
    await _mesh(store)
    version = _spoil(store, "services", "web", BAD_VALUE)
    with pytest.raises(StoredInvalid) as caught:
        await store.get("services", "web")
    message = str(caught.value)
    assert f"service 'web' is stored (version {version})" in message
    assert "protocol: Input should be" in message
    assert "PUT a valid spec over it or DELETE it" in message
    assert isinstance(caught.value, Conflict)

    valid, invalid = await store.listing("services")
    assert [r.name for r in valid] == ["api"]
    assert [(r.name, r.version) for r in invalid] == [("web", version)]
    assert [r.name for r in await store.list("services")] == ["api"]
    # The reads found it, before any full load: it is reported.
    assert [r.resource.name for r in await store.invalid_resources()] == ["web"]


async def test_put_over_it_rewrites_its_references_and_honours_if_match(store: Store) -> None:
    await _mesh(store)
    version = _spoil(store, "routes", "web", UNKNOWN_FIELD)
    await store.load_mesh()
    with pytest.raises(PreconditionFailed):
        await store.put("routes", "web", _route("api"), if_match=version - 1)

    fixed, created = await store.put("routes", "web", _route("api"), if_match=version)
    assert not created
    assert fixed.version > version
    # The old references (to service web) are gone, so web may now be deleted.
    assert _refs(store, "routes", "web") == {("gateways", "edge"), ("services", "api")}
    assert await store.invalid_resources() == []
    assert (await store.load_mesh()).routes["web"] == _route("api")
    await store.delete("endpoints", "web-1")
    await store.delete("services", "web")


async def test_delete_it_once_nothing_refers_to_it(store: Store) -> None:
    await _mesh(store)
    _spoil(store, "services", "web", BAD_VALUE)
    assert len(await store.invalid_resources()) == 1
    with pytest.raises(Conflict, match="still referenced by endpoints/web-1, routes/web"):
        await store.delete("services", "web")
    await store.delete("routes", "web")
    await store.delete("endpoints", "web-1")
    await store.delete("services", "web")
    assert await store.invalid_resources() == []
    mesh = await store.load_mesh()
    assert not mesh.invalid
    assert not mesh.left_out


async def test_a_write_referring_to_it_is_refused_naming_the_field(store: Store) -> None:
    await _mesh(store)
    _spoil(store, "services", "web", BAD_VALUE)
    # The route rules read their neighbourhood, which finds it even before any load.
    with pytest.raises(InvalidMesh) as caught:
        await store.put("routes", "more", _route("api", "web"))
    assert caught.value.field == "destinations[1].service"
    assert "service 'web' is stored but its spec no longer validates" in str(caught.value)
    await store.load_mesh()
    endpoint = EndpointSpec(service="web", address="10.0.0.2", port=80)
    with pytest.raises(InvalidMesh) as caught:
        await store.put("endpoints", "web-2", endpoint)
    assert caught.value.field == "service"
    await store.put("endpoints", "api-1", EndpointSpec(service="api", address="10.0.0.3", port=80))


async def test_a_write_next_to_an_invalid_neighbour_is_checked_without_it(store: Store) -> None:
    await _mesh(store)
    _spoil(store, "routes", "web", UNKNOWN_FIELD)  # on gateway edge
    await store.put("routes", "api-on-edge", _route("api"))
    await store.put("services", "api", ServiceSpec(protocol="http2"))  # routes send to it
    await store.put("gateways", "edge", GatewaySpec(port=8001))


async def test_the_change_log_yields_it_as_invalid_and_a_fix_clears_it(store: Store) -> None:
    await _mesh(store)
    revision = await store.revision()
    reader = Store(store.database, ChangeFeed(revision))  # reads the log, as another replica
    await reader.load_mesh()
    # Another writer (an older version, say) commits a spec this one no longer accepts.
    with store.database.engine.begin() as connection:
        connection.execute(update(MeshStateRow).values(revision=revision + 1))
        connection.execute(
            update(ResourceRow)
            .where(ResourceRow.kind == "services", ResourceRow.name == "api")
            .values(spec=BAD_VALUE, version=revision + 1)
        )
        connection.execute(
            insert(ChangeRow).values(
                revision=revision + 1, kind="services", name="api", spec=BAD_VALUE, source="api"
            )
        )
    reader.feed.publish(revision + 1)  # as the other writer's notification would
    [change] = await reader.changes_since(revision) or []
    assert change.spec is None
    assert change.invalid is not None
    assert change.invalid.startswith("protocol: Input should be")
    assert [r.resource for r in await reader.invalid_resources()] == [
        InvalidResource("services", "api", revision + 1, change.invalid)
    ]
    store.feed.publish(revision + 1)
    await store.put("services", "api", ServiceSpec())
    reader.feed.publish(revision + 2)
    assert await reader.changes_since(revision + 1) == [
        Change(revision + 2, "services", "api", ServiceSpec())
    ]
    assert await reader.invalid_resources() == []


async def test_a_kind_this_version_does_not_know_is_reported_and_ignored(store: Store) -> None:
    await _mesh(store)
    revision = await store.revision()
    with store.database.engine.begin() as connection:
        connection.execute(
            insert(ResourceRow).values(
                kind="widgets",
                name="w",
                spec={},
                version=revision,
                source="api",
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
    mesh = await store.load_mesh()
    assert set(mesh.services) == {"web", "api"}
    [report] = await store.invalid_resources()
    assert report.resource == InvalidResource("widgets", "w", revision, "unknown kind 'widgets'")
