"""The change feed: tells waiters that the mesh moved past a revision.

Waiters then ask the store what changed (`Store.changes_since`), so a missed wake-up costs
nothing but latency and many commits in a burst fold into one wake-up: a waiter learns only the
newest revision, never a queue. The feed also remembers the last few changes this process
committed, so that question is usually answered from memory rather than by re-reading the
change log just written (a gap, e.g. a commit made elsewhere, falls back to the log).

Between replicas (several `meshplane serve` on one PostgreSQL) a commit on replica A must wake
replica B: each commit notifies in its transaction and each replica listens, handing the
revision to its own feed (replica_feed.py), with a periodic read of the newest revision for
notices lost while it was not listening.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from meshplane.model import Change

__all__ = ["ChangeFeed"]

# How many recent changes the feed remembers; a reader further behind reads the change log.
RECENT = 1024


class ChangeFeed:
    """The newest committed revision, and a way to wait until it passes a given one.

    It belongs to the event loop it was made on (the control plane's, where the builder
    waits); `publish` from another thread (the API's loop, see api/core_loop.py) is handed to
    that loop, so the feed's state only ever changes there.
    """

    def __init__(self, latest: int = 0) -> None:
        self._latest = latest
        self._moved = asyncio.Event()
        self._recent: OrderedDict[int, Sequence[Change]] = OrderedDict()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop: the first one to publish or wait owns it
            self._loop = None

    @property
    def latest(self) -> int:
        """The highest revision published so far."""
        return self._latest

    def publish(self, revision: int, changes: Sequence[Change] | None = None) -> None:
        """Record that `revision` is committed (by `changes`, if known: one per resource it
        wrote, several for a batch); wake every waiter it satisfies.

        Revisions may arrive out of order (concurrent commits notify after their own commits);
        an older one than `latest` wakes nobody.
        """
        if not self._owned():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.publish, revision, changes)
            return
        if changes is not None:
            self._recent[revision] = changes
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        if revision <= self._latest:
            return
        self._latest = revision
        # Swap in a fresh event before waking, so woken waiters that must keep waiting block
        # on the new one instead of spinning on an event that stays set.
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def _owned(self) -> bool:
        """Whether the running loop (if any) is the feed's own, taking it if it has none."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return self._loop is None
        if self._loop is None or self._loop.is_closed():
            self._loop = running
        return running is self._loop

    def changes_after(self, revision: int) -> list[Change] | None:
        """The changes after `revision` up to `latest`, oldest first, if every one of them is
        remembered; else None (read the change log instead)."""
        if revision > self._latest or self._latest - revision > len(self._recent):
            return None
        wanted = range(revision + 1, self._latest + 1)
        if any(r not in self._recent for r in wanted):
            return None
        return [change for r in wanted for change in self._recent[r]]

    async def wait_beyond(self, revision: int) -> int:
        """Return the latest revision as soon as it is greater than `revision`.

        Returns at once if it already is. Cancel it (or wrap it in `asyncio.timeout`) to stop.
        """
        self._owned()
        while self._latest <= revision:
            await self._moved.wait()
        return self._latest
