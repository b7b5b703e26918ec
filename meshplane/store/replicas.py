"""The replicas of one mesh: every `meshplane serve` on its database registers itself (where
proxies and clients reach it) and beats every `HEARTBEAT_EVERY_S`; one whose heartbeat is older
than `DEAD_AFTER_S` is dead (it was killed, or lost the database) and is left out of `live`.

Heartbeats are the replicas' own clocks (UTC): keep them in sync (NTP), as a few seconds of
skew would misjudge a replica's liveness by as much. Rows of replicas dead for a long time are
dropped by whichever replica registers next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from meshplane.store.database import Database
from meshplane.store.tables import ReplicaRow

__all__ = [
    "DEAD_AFTER_S",
    "HEARTBEAT_EVERY_S",
    "Replica",
    "ReplicaRepo",
    "keep_alive",
    "new_replica_id",
]

HEARTBEAT_EVERY_S = 2.0
DEAD_AFTER_S = 10.0
_FORGET_AFTER = timedelta(days=1)  # a dead replica's row is kept this long, for diagnosis
_COLUMNS = (
    ReplicaRow.id,
    ReplicaRow.xds_host,
    ReplicaRow.xds_port,
    ReplicaRow.api_url,
    ReplicaRow.started_at,
    ReplicaRow.heartbeat_at,
)


def new_replica_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class Replica:
    id: str
    xds_host: str
    xds_port: int
    api_url: str
    started_at: datetime
    heartbeat_at: datetime


class ReplicaRepo:
    """Short transactions over the replicas table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def register(self, replica: Replica) -> None:
        """Add `replica` (or replace a row of its id), and forget long-dead ones."""

        def work(connection: Connection) -> None:
            connection.execute(delete(ReplicaRow).where(ReplicaRow.id == replica.id))
            forget = replica.heartbeat_at - _FORGET_AFTER
            connection.execute(delete(ReplicaRow).where(ReplicaRow.heartbeat_at < forget))
            connection.execute(insert(ReplicaRow).values(**_values(replica)))

        await self._database.write(work)

    async def beat(self, replica: Replica, now: datetime) -> None:
        """Record that `replica` is alive at `now` (registering it again if its row is gone)."""

        def work(connection: Connection) -> None:
            query = update(ReplicaRow).where(ReplicaRow.id == replica.id).values(heartbeat_at=now)
            if connection.execute(query).rowcount == 0:
                values = _values(replica) | {"heartbeat_at": now}
                connection.execute(insert(ReplicaRow).values(**values))

        await self._database.write(work)

    async def leave(self, replica_id: str) -> None:
        await self._database.write(
            lambda connection: connection.execute(
                delete(ReplicaRow).where(ReplicaRow.id == replica_id)
            )
        )

    async def live(self, now: datetime) -> list[Replica]:
        """Every replica whose last heartbeat is recent, oldest first."""
        since = now - timedelta(seconds=DEAD_AFTER_S)

        def work(connection: Connection) -> Sequence[Row[str, str, int, str, datetime, datetime]]:
            query = select(*_COLUMNS).where(ReplicaRow.heartbeat_at >= since)
            return connection.execute(query.order_by(ReplicaRow.started_at, ReplicaRow.id)).all()

        return [Replica(**row._mapping) for row in await self._database.read(work)]


async def keep_alive(repo: ReplicaRepo, replica: Replica) -> None:
    """Beat every `HEARTBEAT_EVERY_S` until cancelled; a beat that fails (the database is
    down) is tried at the next tick: the replica counts as dead meanwhile, as it should."""
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        with contextlib.suppress(Exception):
            await repo.beat(replica, datetime.now(UTC))


def _values(replica: Replica) -> dict[str, Any]:
    return {
        "id": replica.id,
        "xds_host": replica.xds_host,
        "xds_port": replica.xds_port,
        "api_url": replica.api_url,
        "started_at": replica.started_at,
        "heartbeat_at": replica.heartbeat_at,
    }
