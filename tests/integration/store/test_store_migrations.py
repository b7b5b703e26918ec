"""Migrations: idempotent, in agreement with the models, and safe from replicas starting
together."""

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from meshplane.model import ServiceSpec
from meshplane.store import Store, create_engine, migrate, open_store
from meshplane.store.tables import Base
from tests.conftest import _postgres_schema, postgres_url


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
        "edge_keys",
        "ca_leaves",
        "ca_state",
        "endpoint_holders",
        "api_tokens",
        "token_revocations",
        "route_slots",
        "service_ports",
        "replica_proxies",
        "replicas",
        "revision_messages",
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


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_one_after_the_other() -> None:
    """Several replicas migrating a fresh PostgreSQL schema at once all succeed: each migration
    transaction holds an advisory lock, so the later ones find the schema current."""
    url = postgres_url()
    with _postgres_schema(url) as schema:
        engines = [
            create_engine(url, connect_args={"options": f"-c search_path={schema}"})
            for _ in range(3)
        ]
        try:
            await asyncio.gather(*(asyncio.to_thread(migrate, engine) for engine in engines))
            with engines[0].connect() as connection:
                assert _differences(connection) == []
        finally:
            for engine in engines:
                engine.dispose()
