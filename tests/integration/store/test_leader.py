"""One replica leads: of two on one PostgreSQL schema exactly one holds the leader's lock, the
other takes over within seconds when the leader stops or its session is cut, and a leader
whose session is cut steps down; replicas of another schema elect their own leader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from meshplane.store import Leadership, Store, create_engine
from tests.conftest import _postgres_schema, postgres_url, schema_store

pytestmark = pytest.mark.postgres


class Candidate:
    """A replica's leadership and what it was told of it."""

    def __init__(self, store: Store) -> None:
        self.told: list[bool] = []
        self.leadership = Leadership(store.database, self.told.append, asyncio.get_running_loop())

    @property
    def leading(self) -> bool:
        return bool(self.told) and self.told[-1]


@contextlib.asynccontextmanager
async def _candidate(schema: str) -> AsyncIterator[Candidate]:
    async with schema_store(postgres_url(), schema) as store:
        candidate = Candidate(store)
        candidate.leadership.start()
        try:
            yield candidate
        finally:
            await asyncio.to_thread(candidate.leadership.stop)


async def _until(condition: object, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_one_leads_and_the_other_takes_over_when_it_stops() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _candidate(schema) as a:
            await _until(lambda: a.leading)
            async with _candidate(schema) as b:
                await asyncio.sleep(1.5)  # three tries of the lock
                assert (a.leading, b.leading) == (True, False)
                await asyncio.to_thread(a.leadership.stop)
                loop = asyncio.get_running_loop()
                stopped = loop.time()
                await _until(lambda: b.leading, 5)
                assert loop.time() - stopped < 2.0
                assert a.told == [True, False]


async def test_a_leader_whose_session_is_cut_steps_down_and_one_leads_again() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _candidate(schema) as a, _candidate(schema) as b:
            await _until(lambda: a.leading or b.leading)
            leader, other = (a, b) if a.leading else (b, a)
            engine = create_engine(postgres_url())
            try:
                with engine.begin() as connection:
                    connection.execute(
                        text("SELECT pg_terminate_backend(:pid)"),
                        {"pid": leader.leadership.backend_pid},
                    )
            finally:
                engine.dispose()
            await _until(lambda: False in leader.told)
            await _until(lambda: a.leading != b.leading and (a.leading or b.leading))
            assert other.leading or leader.told[-1]


async def test_each_schema_elects_its_own_leader() -> None:
    with _postgres_schema(postgres_url()) as one, _postgres_schema(postgres_url()) as two:
        async with _candidate(one) as a, _candidate(two) as b:
            await _until(lambda: a.leading and b.leading)
