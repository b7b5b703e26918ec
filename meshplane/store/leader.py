"""Which replica runs the singleton jobs: the one holding a PostgreSQL advisory lock.

The leader renews certificates and runs root rotations (certs/authority.py); every replica
serves proxies and the API alike. The lock is a session lock on a connection of the leader's
own (`Leadership`, a thread, like the revision listener): PostgreSQL releases it the moment that
session ends, so when the leader is killed its socket closes and another replica, trying every
`TRY_EVERY_S`, takes over within about a second. A leader whose connection fails steps down at
once, before it could know whether the lock is still its own. On SQLite one server owns the
database (server_lock.py), so it leads (`SoleLeader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from meshplane.store.database import Database
from meshplane.store.session_thread import SessionThread

__all__ = ["TRY_EVERY_S", "Leadership", "LeadershipSource", "SoleLeader"]

log = logging.getLogger(__name__)

TRY_EVERY_S = 0.5  # how often a follower tries the lock, and the leader checks its session
_LOCK_CLASS = 0x6D70  # "mp": the advisory lock's first key; the second is the schema's hash
_TRY = "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))"


class LeadershipSource(Protocol):
    @property
    def leading(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SoleLeader:
    """The only server of its database leads from the start."""

    def __init__(self, on_change: Callable[[bool], None]) -> None:
        self._on_change = on_change
        self.leading = False

    def start(self) -> None:
        self.leading = True
        self._on_change(True)

    def stop(self) -> None:
        self.leading = False


class Leadership(SessionThread):
    """A thread holding (or trying every `TRY_EVERY_S` to take) the leader's lock; calls
    `on_change(leading)` on `loop` each time this replica becomes or stops being the leader."""

    lost_message = "leader lock: session lost"
    back_message = "leader lock: session back"

    def __init__(
        self,
        database: Database,
        on_change: Callable[[bool], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(database, "meshplane-leader")
        self._on_change = on_change
        self._loop = loop
        self.leading = False

    def stop(self, within: float = TRY_EVERY_S * 6) -> None:
        """Stop trying; a leader's session ends, which hands the lock to another replica."""
        super().stop(within)
        self._set(False)

    def lost(self) -> None:
        self._set(False)  # the lock may be gone with the session: step down first

    def hold(self, connection: Any) -> None:
        self.established()
        while not self.stopping.is_set():
            if self.leading:
                connection.execute("SELECT 1")  # the session (and so the lock) still lives
            elif connection.execute(_TRY, (_LOCK_CLASS,)).fetchone()[0]:
                self._set(True)
            self.stopping.wait(TRY_EVERY_S)

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        if leading:
            log.info("leader: this replica runs the singleton jobs (renewals, rotations)")
        else:
            log.info("leader: no longer this replica")
        with contextlib.suppress(RuntimeError):  # the loop closed: the control plane stopped
            self._loop.call_soon_threadsafe(self._on_change, leading)
