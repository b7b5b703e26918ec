"""Which database errors mean "unreachable" (Unavailable, HTTP 503) and which stay what they
are, and how an outage is logged: once when it starts, once when it ends."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from meshplane.errors import Unavailable
from meshplane.store import Store, open_database
from meshplane.store.database import Reachability, unreachable_reason
from tests.support.ports import free_port


async def test_a_refused_connection_is_unavailable_without_the_credentials(
    caplog: pytest.LogCaptureFixture,
):
    database = open_database(f"postgresql://mesh:s3cret-pw@127.0.0.1:{free_port()}/mesh")
    try:
        for _ in range(3):
            with pytest.raises(Unavailable) as raised:
                await database.read(lambda c: c.execute(text("SELECT 1")).scalar())
            assert raised.value.__cause__ is None
            assert raised.value.__suppress_context__
            assert str(raised.value).startswith("the database is unreachable; ")
    finally:
        await database.dispose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "database unreachable since" in warnings[0].getMessage()
    assert "s3cret" not in caplog.text
    assert "127.0.0.1" not in caplog.text  # no driver text at all
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'missing' / 'mesh.db'}")
    try:
        with pytest.raises(Unavailable):
            await database.read(lambda c: c.execute(text("SELECT 1")).scalar())
    finally:
        await database.dispose()


def _duplicate(connection: Connection) -> None:
    connection.exec_driver_sql("CREATE TEMPORARY TABLE once (x INTEGER PRIMARY KEY)")
    for _ in range(2):
        connection.exec_driver_sql("INSERT INTO once (x) VALUES (1)")


async def test_errors_that_are_not_about_connectivity_stay_what_they_are(store: Store):
    with pytest.raises(sa_exc.IntegrityError):
        await store.database.write(_duplicate)
    with pytest.raises(sa_exc.DBAPIError):  # SQLite: OperationalError; PostgreSQL: Programming
        await store.database.read(lambda c: c.execute(text("SELECT * FROM no_such_table")).all())
    assert await store.revision() == 0  # the failed write left nothing behind


async def test_ping_answers_when_the_database_does(store: Store):
    await store.database.ping(2.0)


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.DisconnectionError("connection found dead"),
    ],
)
def test_the_pools_errors_are_unreachable(error: Exception):
    assert unreachable_reason(error) == type(error).__name__


def test_a_busy_sqlite_database_is_not_unreachable():
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"
    assert unreachable_reason(sa_exc.OperationalError("BEGIN", {}, busy)) is None


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    reachability = Reachability()
    before = -1.0  # a transaction that started before the outage was seen
    reachability.failed(0.0, "OperationalError sqlstate=None")
    for _ in range(5):
        reachability.failed(1e9, "OperationalError sqlstate=None")
    reachability.answered(before)  # says nothing about now
    reachability.answered(1e9)
    reachability.answered(1e9)
    reachability.failed(before, "OperationalError sqlstate=None")  # stale: began before recovery
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("database unreachable since ")
    assert messages[1].startswith("database reachable again after ")
