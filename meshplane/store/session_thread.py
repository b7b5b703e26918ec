"""A thread that holds a PostgreSQL session of its own for as long as the control plane runs:
the revision listener's LISTEN (replica_feed.py), the leader's lock (leader.py).

It connects as the pool does but outside it, runs the subclass's `hold` until stopped, and when
the session fails (or never comes) connects again, backing off from 0.1 s to 5 s, and logs once
per outage, never the driver's text (it may name the host or the URL's credentials).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from meshplane.store.database import Database, unreachable_reason

__all__ = ["SessionThread"]

log = logging.getLogger(__name__)

_RECONNECT_S = (0.1, 5.0)  # first and longest wait before connecting again after a failure


class SessionThread:
    """Subclasses implement `hold(connection)` (return when `stopping` is set; raise when the
    session fails), call `established()` once the session does its job again, and may react to
    a lost session in `lost()`. `lost_message` and `back_message` are the two log lines."""

    lost_message = "database session lost"
    back_message = "database session back"

    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self.stopping = threading.Event()
        self.backend_pid: int | None = None  # the session's server process (tests end it)
        self._failing = False  # since the last failure, not established (logged once)
        self._wait = _RECONNECT_S[0]
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, within: float) -> None:
        """Ask the thread to end, and wait up to `within` seconds for it."""
        self.stopping.set()
        self._thread.join(within)

    def hold(self, connection: Any) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        """The session failed (called on the thread, before it connects again)."""

    def established(self) -> None:
        if self._failing:
            log.info(self.back_message)
        self._failing, self._wait = False, _RECONNECT_S[0]

    def _main(self) -> None:
        while not self.stopping.is_set():
            try:
                self._session()
                return
            except Exception as exc:  # the session broke, or never came: connect again
                self.lost()
                if not self._failing:  # once per outage, as the store reports its own
                    reason = unreachable_reason(exc) or type(exc).__name__
                    log.warning("%s, retrying reason=%s", self.lost_message, reason)
                    self._failing = True
            self.stopping.wait(self._wait)
            self._wait = min(self._wait * 2, _RECONNECT_S[1])

    def _session(self) -> None:
        connection = self._database.session_connection()
        try:
            self.backend_pid = connection.info.backend_pid
            self.hold(connection)
        finally:
            with contextlib.suppress(Exception):
                connection.close()
