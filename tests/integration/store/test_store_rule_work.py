"""A write's rule check reads the routes beside it through the route-slot index, not every route
of its gateway or host, and still finds everything comparing the whole mesh would; on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select

import meshplane.store
from meshplane.errors import Conflict
from meshplane.model import Change, GatewaySpec, Mesh, RouteSpec, ServiceSpec, Spec, check_write
from meshplane.store import Store
from meshplane.store.mesh_rules import check_mesh_rules
from meshplane.store.repo import bump_revision, put_resource
from meshplane.store.tables import RouteSlotRow


def _route(
    hosts: list[str] | None = None,
    gateways: tuple[str, ...] = ("edge",),
    timeout: str | None = None,
    **match: Any,
) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "gateways": list(gateways),
            "hosts": hosts or [],
            "match": match,
            "destinations": [{"service": "shop"}],
            "timeout": timeout,
        }
    )


async def _routes_read(store: Store, name: str, spec: RouteSpec) -> int:
    """How many stored routes the rule check of writing `spec` over route `name` reads."""

    old = (await store.get("routes", name)).spec

    def check(connection: Connection) -> int:
        read = check_mesh_rules(connection, "routes", name, spec, old, revision=10**6)
        connection.rollback()
        return read

    return await store.database.write(check)


async def _add_unrelated(store: Store, start: int, stop: int) -> None:
    """Routes that cannot hide route 'mine' (prefix /mine on edge's host a.example) nor be
    hidden by it: other paths on its host, its path on other hosts and on the sidecars. Written
    as `Store.put` writes them, in one transaction to be quick."""
    now = datetime.now(UTC)

    def write(connection: Connection) -> None:
        for i in range(start, stop):
            spec = [
                _route(prefix=f"/other/{i}"),
                _route([f"h{i}.example"], prefix="/mine"),
                _route([f"h{i}.example"], gateways=(), prefix="/mine"),
            ][i % 3]
            revision = bump_revision(connection)
            put_resource(
                connection,
                "routes",
                f"u{i}",
                spec,
                revision=revision,
                if_match=None,
                source="api",
                now=now,
            )

    await store.database.write(write)


async def test_a_route_write_reads_the_same_routes_with_10_or_1000_unrelated_ones(store: Store):
    await store.put("services", "shop", ServiceSpec())
    await store.put("gateways", "edge", GatewaySpec(port=8080, hosts=["a.example"]))
    await store.put("routes", "mine", _route(prefix="/mine"))
    # Beside it: same host and path condition, so it could hide 'mine' or be hidden by it.
    await store.put("routes", "twin", _route(["a.example"], prefix="/mine", methods=["GET"]))
    changed = _route(prefix="/mine", timeout="7s")

    await _add_unrelated(store, 0, 10)
    with_10 = await _routes_read(store, "mine", changed)
    await _add_unrelated(store, 10, 1000)
    with_1000 = await _routes_read(store, "mine", changed)

    assert with_10 == with_1000 == 2  # 'mine' itself and 'twin'
    await store.put("routes", "mine", changed)
    with pytest.raises(Conflict, match=r"route 'twin' can never match .* route 'mine' comes first"):
        await store.put("routes", "mine", _route(prefix="/mine", methods=["GET"]))


async def test_a_gateway_write_reads_only_the_routes_of_the_hosts_it_moves(store: Store):
    old = GatewaySpec(port=8080, hosts=["a.example"])
    await store.put("services", "shop", ServiceSpec())
    await store.put("gateways", "edge", old)
    await store.put("routes", "any-host", _route(prefix="/"))
    for i in range(20):
        await store.put("routes", f"on-{i}", _route([f"h{i}.example"], prefix="/", methods=["GET"]))

    async def check(gateway: GatewaySpec) -> int:
        def work(connection: Connection) -> int:
            read = check_mesh_rules(connection, "gateways", "edge", gateway, old, revision=10**6)
            connection.rollback()
            return read

        return await store.database.write(work)

    assert await check(GatewaySpec(port=9090, hosts=["a.example"])) == 0
    # 'any-host' moves to h3.example, where 'on-3' is.
    assert await check(GatewaySpec(port=8080, hosts=["h3.example"])) == 2


# Few values, so routes often share a slot and often cover one another.
_GATEWAY_HOSTS = [["a.example"], ["a.example", "b.example"], ["b.example"], ["*"]]


def _random_route(rng: random.Random) -> RouteSpec:
    gateways = rng.choice([("edge",), ("edge",), ("edge",), (), ("edge", "side")])
    hosts = rng.sample(["a.example", "b.example", "shop"], rng.randint(0 if gateways else 1, 2))
    path = rng.choice([{"prefix": "/"}, {"prefix": "/"}, {"prefix": "/x"}, {"path": "/x"}])
    methods = rng.sample(["GET", "POST"], rng.randint(0, 2))
    return _route(hosts, gateways, **path, methods=methods)


async def test_a_write_is_refused_exactly_when_the_whole_mesh_says_so(store: Store):
    rng = random.Random(7)
    whole = Mesh()
    revision = 0

    async def write(kind: str, name: str, spec: Spec) -> None:
        nonlocal whole, revision
        revision += 1
        after = whole.with_changes([Change(revision, kind, name, spec)])
        expected = "; ".join(p.message for p in check_write(whole, after, kind, name))
        if expected:
            with pytest.raises(Conflict) as refused:
                await store.put(kind, name, spec)
            assert str(refused.value) == expected
        else:
            await store.put(kind, name, spec)
            whole = after

    await write("services", "shop", ServiceSpec())
    for gateway in ("edge", "side"):
        await write("gateways", gateway, GatewaySpec(port=8080, hosts=["a.example"]))
    refused = 0
    for _ in range(150):
        roll = rng.random()
        name = f"r{rng.randint(0, 7)}"
        if roll < 0.1:
            hosts = rng.choice(_GATEWAY_HOSTS)
            await write("gateways", rng.choice(["edge", "side"]), GatewaySpec(port=80, hosts=hosts))
        elif roll < 0.2 and name in whole.routes:
            await store.delete("routes", name)
            whole = whole.with_changes([Change(revision, "routes", name, None)])
        else:
            before = whole
            await write("routes", name, _random_route(rng))
            refused += whole is before
    assert refused > 10  # the sequence did exercise the rule


async def test_the_migration_fills_the_index_as_writes_do(store: Store):
    await store.put("services", "shop", ServiceSpec())
    for gateway in ("edge", "side"):
        await store.put("gateways", gateway, GatewaySpec(port=8080, hosts=["a.example"]))
    await store.put("routes", "any-host", _route(prefix="/"))
    await store.put(
        "routes", "two", _route(["b.example", "a.example"], ("edge", "side"), path="/x")
    )
    await store.put("routes", "sidecar", _route(["shop"], (), regex="^/x$"))

    def slots(connection: Connection) -> list[tuple[str, ...]]:
        columns = [RouteSlotRow.route, RouteSlotRow.scope, RouteSlotRow.host, RouteSlotRow.path]
        return sorted(tuple(row) for row in connection.execute(select(*columns)))

    def migrate_again(connection: Connection) -> list[tuple[str, ...]]:
        config = Config()
        migrations = Path(meshplane.store.__file__).parent / "migrations"
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        command.upgrade(config, "head")
        return slots(connection)

    written = await store.database.write(slots)
    assert len(written) == 1 + 4 + 1
    assert await store.database.write(migrate_again) == written


@pytest.fixture
async def older_overlap(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """r0 hides r1 and r2 on edge's b.example, and r1 would hide r2 without r0: written as a
    version without the shadowing rule would have written them."""
    await store.put("services", "shop", ServiceSpec())
    await store.put("gateways", "edge", GatewaySpec(port=8080, hosts=["a.example", "b.example"]))
    with monkeypatch.context() as unchecked:
        unchecked.setattr("meshplane.store.repo.check_mesh_rules", lambda *_: 0)
        await store.put("routes", "r0", _route(prefix="/", methods=["GET", "POST"]))
        await store.put("routes", "r1", _route(["b.example"], prefix="/", methods=["GET", "POST"]))
        await store.put("routes", "r2", _route(["b.example"], prefix="/", methods=["GET"]))
    return store


_R1_HIDES_R2 = r"route 'r2' can never match on gateway 'edge' host b.example: route 'r1' comes"


async def test_a_route_leaving_its_place_is_checked_where_it_was(older_overlap: Store):
    with pytest.raises(Conflict, match=_R1_HIDES_R2):
        await older_overlap.put("routes", "r0", _route(prefix="/y", methods=["GET"]))


async def test_a_gateway_dropping_a_host_is_checked_on_that_host(older_overlap: Store):
    with pytest.raises(Conflict, match=_R1_HIDES_R2):
        await older_overlap.put("gateways", "edge", GatewaySpec(port=8080, hosts=["a.example"]))
