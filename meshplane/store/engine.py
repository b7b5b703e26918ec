"""Turn a database URL into a ready Engine, and bring its schema to the newest migration.

Users write the URLs they know (`sqlite:///mesh.db`, `postgres://user@host/db`); the store speaks
the standard library's sqlite3 and psycopg 3, so the URL is normalised to those here, once.

The engine is synchronous on purpose: `Database` runs each whole transaction on a worker thread,
one hop per transaction. An async driver costs a thread or loop hop per statement (about 1 ms
each through aiosqlite on 2 cores), which made a write ten times slower than its SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy import create_engine as sqlalchemy_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, InvalidatePoolError

__all__ = ["create_engine", "migrate", "normalise_url"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
# Earlier releases used async drivers; their URLs keep working.
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "sqlite+aiosqlite": "sqlite+pysqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
}
# How long a SQLite writer waits for another writer's lock before failing, in milliseconds.
_SQLITE_BUSY_TIMEOUT_MS = 5000
# How long connecting to PostgreSQL may take, in seconds, unless the URL says otherwise. libpq
# waits for the operating system by default (minutes when packets vanish), and every call
# waiting on it would hang instead of answering 503.
_POSTGRES_CONNECT_TIMEOUT_S = 5
# A pooled PostgreSQL connection idle at least this long (seconds) is pinged before it is used:
# the server may have restarted meanwhile, and a dead connection would fail its caller's call
# (a 503) although the database answers. Busy connections are reused without the round trip.
_PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "meshplane_idle_since"


def normalise_url(url: str) -> URL:
    """Return `url` with the driver this store uses for its database.

    Raises ValueError for a URL that is not SQLite or PostgreSQL (or names another driver).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r}") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}; "
            "use sqlite:///FILE or postgresql://USER@HOST/DB"
        )
    return parsed.set(drivername=driver)


def create_engine(url: str, *, connect_args: Mapping[str, Any] | None = None) -> Engine:
    """Create the engine for `url` (any form `normalise_url` accepts); the caller disposes it.

    On SQLite every connection gets WAL (readers never block the writer), foreign keys (off by
    default there) and a busy timeout (a second writer waits instead of failing at once), and
    SQLAlchemy rather than the sqlite3 module emits BEGIN, so a read-only transaction is one
    snapshot too. On PostgreSQL a connection attempt gives up after a few seconds unless the
    URL sets `connect_timeout`, and a pooled connection is pinged after it sat idle.
    `connect_args` go to the driver, e.g. psycopg's `options`.
    """
    normalised = normalise_url(url)
    arguments = dict(connect_args or {})
    if normalised.get_backend_name() == "postgresql" and "connect_timeout" not in normalised.query:
        arguments.setdefault("connect_timeout", _POSTGRES_CONNECT_TIMEOUT_S)
    engine = sqlalchemy_engine(normalised, connect_args=arguments)
    if normalised.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection that sat idle before handing it out; if the ping fails, the
    pool drops every connection it holds (they all predate the restart) and connects afresh."""

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise InvalidatePoolError("a pooled connection failed its ping") from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the driver from issuing its own (lazy, DML-only) BEGIN; _sqlite_on_begin does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL is safe from corruption; it skips an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


# Execution option marking a transaction that will write: on SQLite it starts with
# BEGIN IMMEDIATE, taking the write lock first (waiting up to the busy timeout). A deferred
# transaction that read first cannot wait for it and fails with "database is locked" when
# another writer committed meanwhile.
WRITE = "meshplane_write"


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


# PostgreSQL advisory lock key held while migrating: replicas starting together migrate one
# after the other, and the later ones find the schema current.
_MIGRATION_LOCK = 0x6D657368_706C616E & 0x7FFFFFFF_FFFFFFFF  # "meshplan"


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest migration, in one transaction; a no-op when current.

    On PostgreSQL the transaction first takes an advisory lock, so replicas starting at once
    do not run the same migration twice. Blocking: from async code, use `Database.migrate`.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        _upgrade(connection)
    log.info("migrated database=%s", engine.url.render_as_string(hide_password=True))
