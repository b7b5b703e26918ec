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
import threading
from collections.abc import Callable
from typing import Protocol

from meshplane.store.database import Database, unreachable_reason

__all__ = ["TRY_EVERY_S", "Leadership", "LeadershipSource", "SoleLeader"]

log = logging.getLogger(__name__)

TRY_EVERY_S = 0.5  # how often a follower tries the lock, and the leader checks its session
_RECONNECT_S = (0.1, 5.0)  # first and longest wait before connecting again after a failure
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


class Leadership:
    """A thread holding (or trying every `TRY_EVERY_S` to take) the leader's lock; calls
    `on_change(leading)` on `loop` each time this replica becomes or stops being the leader."""

    def __init__(
        self,
        database: Database,
        on_change: Callable[[bool], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._database = database
        self._on_change = on_change
        self._loop = loop
        self._stopping = threading.Event()
        self.leading = False
        self.backend_pid: int | None = None  # the session holding or trying the lock
        self._failing = False
        self._wait = _RECONNECT_S[0]
        self._thread = threading.Thread(target=self._main, name="meshplane-leader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop trying; a leader's session ends, which hands the lock to another replica."""
        self._stopping.set()
        self._thread.join(TRY_EVERY_S * 6)
        self._set(False)

    def _main(self) -> None:
        while not self._stopping.is_set():
            try:
                self._hold()
                return
            except Exception as exc:
                self._set(False)  # the lock may be gone with the session: step down first
                if not self._failing:
                    reason = unreachable_reason(exc) or type(exc).__name__
                    log.warning("leader lock: session lost, retrying reason=%s", reason)
                    self._failing = True
            self._stopping.wait(self._wait)
            self._wait = min(self._wait * 2, _RECONNECT_S[1])

    def _hold(self) -> None:
        connection = self._database.session_connection()
        try:
            self.backend_pid = connection.info.backend_pid
            self._failing, self._wait = False, _RECONNECT_S[0]
            while not self._stopping.is_set():
                if self.leading:
                    connection.execute("SELECT 1")  # the session (and so the lock) still lives
                elif connection.execute(_TRY, (_LOCK_CLASS,)).fetchone()[0]:
                    self._set(True)
                self._stopping.wait(TRY_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        log.info(
            "leader %s", "elected: this replica runs the singleton jobs" if leading else "no longer"
        )
        with contextlib.suppress(RuntimeError):  # the loop closed: the control plane stopped
            self._loop.call_soon_threadsafe(self._on_change, leading)
