"""Fixtures shared across test packages: a migrated Store on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url

from meshplane.certs import SecretBox
from meshplane.store import ChangeFeed, Store, create_engine, open_database

# What the test stores seal edge certificates' keys with (the control plane's SecretBox).
TEST_SEALER = SecretBox(b"meshplane-tests-secret-key")

POSTGRES_URL_ENV = "MESHPLANE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test PostgreSQL URL; fails under CI when unset (CI must cover PostgreSQL), else skips."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{POSTGRES_URL_ENV} is not set; CI must run the PostgreSQL tests")
    pytest.skip(f"{POSTGRES_URL_ENV} is not set")


@contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the test database, dropped afterwards (with everything in it).

    A schema per test instead of dropping tables: tests (and people) sharing the database cannot
    see each other's rows, and teardown is one DROP SCHEMA.
    """
    schema = f"meshplane_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


@asynccontextmanager
async def _postgres_store(url: str) -> AsyncIterator[Store]:
    with _postgres_schema(url) as schema:
        async with schema_store(url, schema) as store:
            yield store


@asynccontextmanager
async def schema_store(url: str, schema: str) -> AsyncIterator[Store]:
    """A migrated Store of its own (engine, pool, feed) on `schema`: one replica's, when several
    share a schema."""
    database = open_database(url, connect_args={"options": f"-c search_path={schema}"})
    store = Store(database, ChangeFeed(), sealer=TEST_SEALER)
    try:
        await database.migrate()
        yield store
    finally:
        await store.close()


def schema_url(url: str, schema: str) -> str:
    """`url` with `schema` first on its search path (a URL for `meshplane serve`)."""
    with_schema = make_url(url).update_query_dict({"options": f"-c search_path={schema}"})
    return with_schema.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for a `meshplane serve` process, as a URL, on each supported database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mesh.db'}"
        return
    url = postgres_url()
    with _postgres_schema(url) as schema:
        yield schema_url(url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty Store at revision 0, on each supported database."""
    if request.param == "postgres":
        async with _postgres_store(postgres_url()) as store:
            yield store
        return
    store = Store(
        open_database(f"sqlite:///{tmp_path / 'mesh.db'}"), ChangeFeed(), sealer=TEST_SEALER
    )
    try:
        await store.database.migrate()
        yield store
    finally:
        await store.close()
