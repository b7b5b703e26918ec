"""Run whole transactions on worker threads, so the event loop never waits on the database.

A transaction here is a plain function over a SQLAlchemy `Connection`; `Database` runs it on a
thread, begins before it and commits after it (rolls back if it raises), and hands the result
back to the event loop: one thread hop per transaction, however many statements it runs.

Writes share one thread. They would serialise anyway (SQLite has one writer; on PostgreSQL every
write locks the revision row first), and queueing them in-process keeps a burst of writers from
sleeping in SQLite's busy handler. Reads get a few threads of their own, so a slow read never
holds up a write.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from meshplane.store.engine import WRITE, create_engine, migrate

__all__ = ["Database", "open_database"]

T = TypeVar("T")

_READERS = 4


class Database:
    """An Engine and the threads its transactions run on; `dispose` when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="meshplane-db-write")
        self._readers = ThreadPoolExecutor(_READERS, thread_name_prefix="meshplane-db-read")

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction; committed unless it raises or rolls back itself.

        On SQLite the transaction begins IMMEDIATE (it takes the write lock before reading), so a
        write in another process makes it wait rather than fail.
        """
        run = functools.partial(self._transaction, work, {WRITE: True})
        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def read(self, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
        """Run `work` in one read transaction.

        `snapshot` makes every statement in it see one consistent state. SQLite's transaction
        already does (WAL readers read one snapshot); PostgreSQL's default READ COMMITTED takes a
        new snapshot per statement, so ask for REPEATABLE READ there.
        """
        options: dict[str, Any] = {}
        if snapshot and self.postgres:
            options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        run = functools.partial(self._transaction, work, options)
        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def migrate(self) -> None:
        """Bring the schema up to the newest migration (see `engine.migrate`)."""
        await asyncio.get_running_loop().run_in_executor(
            self._writer, functools.partial(migrate, self.engine)
        )

    async def dispose(self) -> None:
        """Close every pooled connection and stop the threads; unusable afterwards."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.engine.dispose()

    def _transaction(self, work: Callable[[Connection], T], options: Mapping[str, Any]) -> T:
        with self.engine.connect() as connection:
            if options:
                connection.execution_options(**options)
            connection.begin()
            try:
                result = work(connection)
            except BaseException:
                connection.rollback()
                raise
            if connection.in_transaction():
                connection.commit()
            return result


def open_database(url: str, *, connect_args: Mapping[str, Any] | None = None) -> Database:
    """A Database for `url` (any form `engine.normalise_url` accepts); not yet migrated."""
    return Database(create_engine(url, connect_args=connect_args))
