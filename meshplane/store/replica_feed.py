"""The change feed between replicas: several `meshplane serve` on one PostgreSQL database.

A commit notifies in its own transaction (`notify_revision`, run by `repo.bump_revision`):
PostgreSQL delivers the notice at commit, and never for a write rolled back. Each replica
listens on a connection of its own (`RevisionListener`, a thread: psycopg waits for notices
synchronously) and hands each revision to its change feed on the control plane's loop, which
wakes the builder at once; the builder reads what changed from the change log. A notice is a
hint, not the truth: one sent while the listening connection was down is lost, so the control
plane also publishes the newest stored revision every `CHECK_EVERY_S` (`follow_revisions`), and
after a reconnect the next check catches up.

The certificate authority's writes notify on the same channel (`notify_ca`, payload "<schema>
ca <generation>"), and the listener hands those to the CA, which reads what changed.

Notices are database-wide while a mesh lives in one schema (the tests give each its own), so a
notice names its schema and a listener takes only its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from meshplane.store.database import Database
from meshplane.store.session_thread import SessionThread

__all__ = [
    "CHECK_EVERY_S",
    "RevisionListener",
    "follow_revisions",
    "notify_ca",
    "notify_revision",
]

log = logging.getLogger(__name__)

CHANNEL = "meshplane_revision"
# How often each replica reads the newest revision, for notices it may have missed.
CHECK_EVERY_S = 1.0
_NOTIFY = text("SELECT pg_notify(:channel, current_schema() || :what)")
_CA = " ca"  # between the schema and the number in a CA write's notice


def notify_revision(connection: Connection, revision: int) -> None:
    """Tell every replica, once this transaction commits, that `revision` is committed."""
    connection.execute(_NOTIFY, {"channel": CHANNEL, "what": f" {revision}"})


def notify_ca(connection: Connection, generation: int) -> None:
    """Tell every replica, once this transaction commits, that the CA's `generation` is."""
    connection.execute(_NOTIFY, {"channel": CHANNEL, "what": f"{_CA} {generation}"})


def _announced(payload: str, schema: str) -> tuple[bool, int] | None:
    """(is a CA generation, the number) a notice announces, if it is for `schema`."""
    where, _, number = payload.rpartition(" ")
    if not number.isdigit():
        return None
    if where == schema:
        return False, int(number)
    return (True, int(number)) if where == schema + _CA else None


class RevisionListener(SessionThread):
    """A thread listening for other replicas' commits; `publish(revision)` is called on `loop`
    for each (the change feed's, which wakes the builder), and `on_ca(generation)` for each CA
    write."""

    lost_message = "not hearing other replicas' commits"
    back_message = "hearing other replicas' commits again"

    def __init__(
        self,
        database: Database,
        publish: Callable[[int], None],
        loop: asyncio.AbstractEventLoop,
        on_ca: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(database, "meshplane-listen")
        self._publish = publish
        self._on_ca = on_ca
        self._loop = loop
        self.listening = threading.Event()  # set while a connection listens (tests wait on it)

    def stop(self, within: float = CHECK_EVERY_S * 3) -> None:
        """Stop within about `CHECK_EVERY_S` (the thread wakes that often to look)."""
        super().stop(within)

    def lost(self) -> None:
        self.listening.clear()

    def hold(self, connection: Any) -> None:
        connection.execute(f"LISTEN {CHANNEL}")
        schema = connection.execute("SELECT current_schema()").fetchone()[0]
        self.listening.set()
        self.established()
        while not self.stopping.is_set():
            for notice in connection.notifies(timeout=CHECK_EVERY_S):
                announced = _announced(notice.payload, schema)
                if announced is not None:
                    self._hand_over(*announced)

    def _hand_over(self, ca: bool, number: int) -> None:
        target = self._on_ca if ca else self._publish
        if target is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the control plane stopped
            self._loop.call_soon_threadsafe(target, number)


async def follow_revisions(
    newest: Callable[[], Any], publish: Callable[[int], None], every: float = CHECK_EVERY_S
) -> None:
    """Publish the newest stored revision every `every` seconds (forever, until cancelled), for
    the notices a listener missed; a failed read is tried again at the next tick."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            publish(await newest())
