"""What every replica's proxies hold, so that any replica answers for all of them.

Each replica writes the status of its open xDS streams (what was sent, ACKed, NACKed) every
`PUBLISH_EVERY_S`, only the streams that changed (`follow_proxies`); `GET /api/v1/proxies` on
any replica lists its own streams as they are and the other live replicas' as last written.
A replica that dies stops writing and its rows leave the view with its heartbeat (the leader
deletes them, `forget_dead`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from meshplane.store.database import Database
from meshplane.store.replicas import DEAD_AFTER_S
from meshplane.store.tables import ReplicaProxyRow, ReplicaRow

__all__ = ["PUBLISH_EVERY_S", "ReplicaProxies", "follow_proxies"]

PUBLISH_EVERY_S = 2.0

Status = dict[str, Any]  # one stream's status, as the API shows it (JSON)


class ReplicaProxies:
    """Short transactions over the replicas' proxy table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def write(self, replica_id: str, changed: Mapping[int, Status], gone: list[int]) -> None:
        """Store the streams of `replica_id` that changed (by stream id) and drop those gone."""

        def work(connection: Connection) -> None:
            mine = ReplicaProxyRow.replica_id == replica_id
            if gone:
                connection.execute(
                    delete(ReplicaProxyRow).where(mine, ReplicaProxyRow.stream_id.in_(gone))
                )
            for stream_id, status in changed.items():
                query = update(ReplicaProxyRow).where(mine, ReplicaProxyRow.stream_id == stream_id)
                if connection.execute(query.values(status=status)).rowcount == 0:
                    values = {"replica_id": replica_id, "stream_id": stream_id, "status": status}
                    connection.execute(insert(ReplicaProxyRow).values(**values))

        await self._database.write(work)

    async def clear(self, replica_id: str) -> None:
        """Drop every stream of `replica_id` (at its start, and at a clean stop)."""
        query = delete(ReplicaProxyRow).where(ReplicaProxyRow.replica_id == replica_id)
        await self._database.write(lambda connection: connection.execute(query))

    async def forget_dead(self, now: datetime) -> None:
        """The leader's job: drop the streams of replicas no longer alive (killed ones never
        cleared their own)."""
        since = now - timedelta(seconds=DEAD_AFTER_S)
        alive = select(ReplicaRow.id).where(ReplicaRow.heartbeat_at >= since)
        query = delete(ReplicaProxyRow).where(ReplicaProxyRow.replica_id.not_in(alive))
        await self._database.write(lambda connection: connection.execute(query))

    async def of_others(self, replica_id: str, now: datetime) -> list[tuple[str, Status]]:
        """(replica, status) of every stream of the live replicas other than `replica_id`."""
        since = now - timedelta(seconds=DEAD_AFTER_S)
        alive = select(ReplicaRow.id).where(ReplicaRow.heartbeat_at >= since)
        query = select(ReplicaProxyRow.replica_id, ReplicaProxyRow.status).where(
            ReplicaProxyRow.replica_id != replica_id, ReplicaProxyRow.replica_id.in_(alive)
        )
        rows = await self._database.read(lambda c: c.execute(query).all())
        return [(replica, status) for replica, status in rows]


async def follow_proxies(
    repo: ReplicaProxies,
    replica_id: str,
    streams: Callable[[], Awaitable[Mapping[int, Status]]],
    every: float = PUBLISH_EVERY_S,
) -> None:
    """Write what changed in `await streams()` (this replica's, by stream id) every `every`
    seconds, forever; a failed write is tried again with the next."""
    written: Mapping[int, Status] = {}
    with contextlib.suppress(Exception):
        await repo.clear(replica_id)
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):  # the store reports its outages
            current = await streams()
            changed = {k: v for k, v in current.items() if written.get(k) != v}
            gone = [k for k in written if k not in current]
            if changed or gone:
                await repo.write(replica_id, changed, gone)
                written = current
