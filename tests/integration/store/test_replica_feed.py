"""Replicas on one PostgreSQL database hear each other's commits: a commit notifies in its own
transaction, each replica's listener hands the revision to its change feed, a listener that
lost its connection listens again, notices for another schema are not taken, and a periodic
read of the newest revision catches what no notice announced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from meshplane.model import ServiceSpec
from meshplane.store import (
    RevisionListener,
    Store,
    create_engine,
    follow_revisions,
)
from tests.conftest import _postgres_schema, postgres_url, schema_store

pytestmark = pytest.mark.postgres


def _replica(schema: str) -> contextlib.AbstractAsyncContextManager[Store]:
    return schema_store(postgres_url(), schema)


@contextlib.asynccontextmanager
async def _listening(store: Store) -> AsyncIterator[RevisionListener]:
    listener = RevisionListener(store.database, store.feed.publish, asyncio.get_running_loop())
    listener.start()
    try:
        assert await asyncio.to_thread(listener.listening.wait, 10)
        yield listener
    finally:
        await asyncio.to_thread(listener.stop)


async def _put(store: Store, name: str) -> int:
    stored, _ = await store.put("services", name, ServiceSpec())
    return stored.version


async def test_a_commit_on_one_replica_wakes_the_other() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema) as a, _replica(schema) as b, _listening(b):
            revision = await _put(a, "web")
            async with asyncio.timeout(10):
                assert await b.feed.wait_beyond(0) == revision
            changes = await b.changes_since(0)  # from the change log: b did not commit it
            assert changes is not None
            assert [(c.kind, c.name) for c in changes] == [("services", "web")]


async def test_a_listener_that_lost_its_connection_listens_again() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema) as a, _replica(schema) as b, _listening(b) as listener:
            pid = listener.backend_pid
            admin = create_engine(postgres_url())
            try:
                with admin.begin() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            finally:
                admin.dispose()
            async with asyncio.timeout(20):
                while not listener.listening.is_set() or listener.backend_pid == pid:
                    await asyncio.sleep(0.05)
            revision = await _put(a, "web")
            async with asyncio.timeout(10):
                assert await b.feed.wait_beyond(0) == revision


async def test_notices_for_another_schema_are_not_taken() -> None:
    url = postgres_url()
    with _postgres_schema(url) as mine, _postgres_schema(url) as other:
        async with _replica(mine) as b, _replica(other) as elsewhere, _listening(b):
            await _put(elsewhere, "web")
            await _put(elsewhere, "api")
            ours = await _put(b, "db")  # b's own commit, also heard: the feed moves once
            await asyncio.sleep(1.0)  # time for the other schema's notices to arrive, if taken
            assert b.feed.latest == ours == 1


async def test_the_periodic_check_catches_a_revision_no_notice_announced() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema) as a, _replica(schema) as b:
            revision = await _put(a, "web")  # nobody listens: the notice is lost
            follow = asyncio.create_task(follow_revisions(b.revision, b.feed.publish, every=0.05))
            try:
                async with asyncio.timeout(10):
                    assert await b.feed.wait_beyond(0) == revision
            finally:
                follow.cancel()
