"""Run whole transactions on worker threads, so the event loop never waits on the database.

A transaction here is a plain function over a SQLAlchemy `Connection`; `Database` runs it on a
thread, begins before it and commits after it (rolls back if it raises), and hands the result
back to the event loop: one thread hop per transaction, however many statements it runs.

Writes share one thread. They would serialise anyway (SQLite has one writer; on PostgreSQL every
write locks the revision row first), and queueing them in-process keeps a burst of writers from
sleeping in SQLite's busy handler. Reads get a few threads of their own, so a slow read never
holds up a write.

This is also the one place where the drivers' connectivity errors become `Unavailable` (the
API answers 503): a refused or lost connection, a server shutting down, the pool's timeout.
Any other database error (a constraint, a bug) stays what it is. An outage is logged twice,
not per call: a warning when a transaction first finds the database unreachable, and one line
when one succeeds again. A transaction that fails is rolled back whole, so nothing is ever
half-written, outage or not.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from meshplane.errors import Unavailable
from meshplane.store.engine import WRITE, create_engine, migrate

__all__ = ["Database", "Reachability", "open_database", "unreachable_reason"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_READERS = 4
_UNREACHABLE = "the database is unreachable; try again shortly"
# SQLSTATE classes of PostgreSQL errors that mean "no usable connection": 08 connection
# exception, 57P operator intervention (shutting down, starting up, crashed), 53300 too many
# connections. psycopg leaves sqlstate None when no server answered at all (refused, lost).
_PG_UNREACHABLE = ("08", "57P", "53300")
# SQLite's equivalents: the file cannot be opened, or reading and writing it fails.
_SQLITE_UNREACHABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR")


class Database:
    """An Engine and the threads its transactions run on; `dispose` when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="meshplane-db-write")
        self._readers = ThreadPoolExecutor(_READERS, thread_name_prefix="meshplane-db-read")
        # Pings have a thread of their own: one that hangs on a dead network never holds up
        # the readers, and later pings queue behind it and time out, which is the truth.
        self._pinger = ThreadPoolExecutor(1, thread_name_prefix="meshplane-db-ping")
        self._reachability = Reachability()

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction; committed unless it raises or rolls back itself.

        On SQLite the transaction begins IMMEDIATE (it takes the write lock before reading), so a
        write in another process makes it wait rather than fail.
        """
        run = functools.partial(self._transaction, work, {WRITE: True})
        return await self._run(self._writer, run)

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
        return await self._run(self._readers, run)

    async def ping(self, within: float) -> None:
        """Return once the database answers a trivial query; Unavailable if it does not within
        `within` seconds (a slow answer alone does not count as an outage in the log)."""
        run = functools.partial(self._transaction, _select_one, {})
        try:
            async with asyncio.timeout(within):
                await self._run(self._pinger, run)
        except TimeoutError:
            raise Unavailable(_UNREACHABLE) from None

    async def _run(self, executor: Executor, call: Callable[[], T]) -> T:
        """Run `call` on `executor`, mapping connectivity errors to Unavailable and telling
        `_reachability` how it went. Any other error
        came after a connection was had: the database answered, if only to refuse."""
        started = time.monotonic()
        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, call)
        except Exception as exc:
            reason = unreachable_reason(exc)
            if reason is None:
                self._reachability.answered(started)
                raise
            self._reachability.failed(started, reason)
            # Not chained: the driver's text may name the host or the URL's credentials.
            raise Unavailable(_UNREACHABLE) from None
        self._reachability.answered(started)
        return result

    def session_connection(self) -> Any:
        """A driver connection in autocommit, made as the pool makes them (same URL and
        options) but out of the pool, for a thread that holds a session (LISTEN, a lock).
        Blocking: call it on that thread."""
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()
        assert connection is not None
        connection.autocommit = True
        return connection

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
        self._pinger.shutdown(wait=False, cancel_futures=True)
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


def _select_one(connection: Connection) -> None:
    connection.execute(text("SELECT 1"))


def unreachable_reason(exc: BaseException) -> str | None:
    """A short reason if `exc` means the database cannot be reached, else None.

    The reason names the error's class and SQLSTATE or SQLite code, never the driver's text.
    """
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return type(exc).__name__  # the pool's: a connection found dead, or none free in time
    driver = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return f"{type(driver).__name__} (connection lost)"
    if isinstance(driver, psycopg.OperationalError):
        state = driver.sqlstate
        if state is None or state.startswith(_PG_UNREACHABLE):
            return f"{type(driver).__name__} sqlstate={state}"
    if isinstance(driver, sqlite3.OperationalError):
        code = getattr(driver, "sqlite_errorname", "")
        if code.startswith(_SQLITE_UNREACHABLE):
            return f"{type(driver).__name__} {code}"
    return None


class Reachability:
    """Whether the database answered lately; logs once when an outage starts and once when it
    ends, whatever the number of calls in between.

    Each report carries when its transaction started: one that began before the latest change
    of state says nothing about the database now (it ran on an old connection, or the outage
    began after it), so it changes nothing. Reports come from the API's loop and the control
    plane's (api/core_loop.py): a lock keeps each whole.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None  # time.monotonic() of the first failure
        self._changed = float("-inf")

    def failed(self, started: float, reason: str) -> None:
        with self._lock:
            if self._down_since is not None or started < self._changed:
                return
            self._down_since = self._changed = time.monotonic()
        log.warning(
            "database unreachable since %s; answering 503 until it is back reason=%s",
            datetime.now(UTC).isoformat(timespec="seconds"),
            reason,
        )

    def answered(self, started: float) -> None:
        with self._lock:
            if self._down_since is None or started < self._changed:
                return
            now = time.monotonic()
            down_since, self._down_since, self._changed = self._down_since, None, now
        log.info("database reachable again after %.0f s", now - down_since)


def open_database(url: str, *, connect_args: Mapping[str, Any] | None = None) -> Database:
    """A Database for `url` (any form `engine.normalise_url` accepts); not yet migrated."""
    return Database(create_engine(url, connect_args=connect_args))
