"""Migrations: idempotent, and in agreement with the models."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from meshplane.model import ServiceSpec
from meshplane.store import Store, open_store
from meshplane.store.tables import Base


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrating_twice_changes_nothing(store: Store):
    await store.put("services", "b", ServiceSpec())
    await store.database.migrate()
    await store.database.migrate()
    assert (await store.get("services", "b")).version == 1
    assert await store.revision() == 1


async def test_migrations_match_the_models(store: Store):
    with store.database.engine.connect() as connection:
        assert _differences(connection) == []
        tables = set(inspect(connection).get_table_names())
    assert tables == {
        "alembic_version",
        "resources",
        "refs",
        "mesh_state",
        "changes",
        "ca_authorities",
        "ca_leaves",
        "api_tokens",
        "token_revocations",
        "route_slots",
        "replicas",
    }


async def test_open_store_creates_the_database_and_reopens_it(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'mesh.db'}"
    store = await open_store(url)
    try:
        await store.put("services", "b", ServiceSpec())
    finally:
        await store.close()
    store = await open_store(url.replace("sqlite:", "sqlite+pysqlite:"))
    try:
        assert store.feed.latest == 1
        assert (await store.get("services", "b")).version == 1
    finally:
        await store.close()
