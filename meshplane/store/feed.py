"""The change feed: tells waiters that the mesh moved past a revision, without saying how.

Waiters then ask the store what changed (`Store.changes_since`), so a missed wake-up costs
nothing but latency and many commits in a burst fold into one wake-up: the feed carries only the
newest revision, never a queue.

Between replicas (several `meshplane serve` on one PostgreSQL) this in-process feed is not
enough: a commit on replica A must wake replica B. That plugs in here without changing callers:
the Store would `NOTIFY meshplane_revision, '<revision>'` in the committing transaction, and
each replica would hold one asyncpg connection with `add_listener("meshplane_revision", ...)`
whose callback (run on the event loop) calls `publish(int(payload))`, plus a periodic
`publish(await store.revision())` to cover notifications lost while that connection was down.
"""

from __future__ import annotations

import asyncio

__all__ = ["ChangeFeed"]


class ChangeFeed:
    """The newest committed revision, and a way to wait until it passes a given one.

    Use from one event loop: `publish` is not thread-safe (call it through
    `loop.call_soon_threadsafe` from another thread).
    """

    def __init__(self, latest: int = 0) -> None:
        self._latest = latest
        self._moved = asyncio.Event()

    @property
    def latest(self) -> int:
        """The highest revision published so far."""
        return self._latest

    def publish(self, revision: int) -> None:
        """Record that `revision` is committed; wake every waiter it satisfies.

        Revisions may arrive out of order (concurrent commits notify after their own commits);
        an older one than `latest` is ignored.
        """
        if revision <= self._latest:
            return
        self._latest = revision
        # Swap in a fresh event before waking, so woken waiters that must keep waiting block
        # on the new one instead of spinning on an event that stays set.
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait_beyond(self, revision: int) -> int:
        """Return the latest revision as soon as it is greater than `revision`.

        Returns at once if it already is. Cancel it (or wrap it in `asyncio.timeout`) to stop.
        """
        while self._latest <= revision:
            await self._moved.wait()
        return self._latest
