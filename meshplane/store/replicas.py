"""The replicas of one mesh: every `meshplane serve` on its database registers itself (where
proxies and clients reach it) and beats every `HEARTBEAT_EVERY_S`; one whose heartbeat is older
than `DEAD_AFTER_S` is dead (it was killed, or lost the database) and is left out of `live`.

Each replica also reports the CA generation all its proxies hold (`report_identity`, by
`follow_identity`), which the leader's rotation steps wait for (`behind`), and the leader marks
itself (`lead`) so that `GET /api/v1/replicas` shows which one it is.

Heartbeats are the replicas' own clocks (UTC): keep them in sync (NTP), as a few seconds of
skew would misjudge a replica's liveness by as much. Rows of replicas dead for a long time are
dropped by whichever replica registers next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from meshplane.store.database import Database
from meshplane.store.tables import ReplicaRow

__all__ = [
    "DEAD_AFTER_S",
    "HEARTBEAT_EVERY_S",
    "Replica",
    "ReplicaRepo",
    "follow_identity",
    "keep_alive",
    "new_replica_id",
]

HEARTBEAT_EVERY_S = 2.0
# How often a replica looks whether its proxies caught up with the CA: each look walks every
# stream's secrets, so not at the event loop's pace while one proxy lags.
_REPORT_EVERY_S = 0.2
DEAD_AFTER_S = 10.0
_FORGET_AFTER = timedelta(days=1)  # a dead replica's row is kept this long, for diagnosis
_COLUMNS = (
    ReplicaRow.id,
    ReplicaRow.xds_host,
    ReplicaRow.xds_port,
    ReplicaRow.api_url,
    ReplicaRow.started_at,
    ReplicaRow.heartbeat_at,
    ReplicaRow.identity_generation,
    ReplicaRow.leading,
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
    identity_generation: int | None = None  # the CA generation all its proxies hold
    leading: bool = False


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

    async def leave(self, replica_id: str, now: datetime) -> None:
        """A clean stop: the replica is dead from `now` (its row stays a while: the leader
        removes the endpoints it held once their grace period passed)."""
        dead = now - timedelta(seconds=DEAD_AFTER_S + 1)
        query = update(ReplicaRow).where(ReplicaRow.id == replica_id)
        await self._database.write(
            lambda connection: connection.execute(query.values(heartbeat_at=dead, leading=False))
        )

    async def live(self, now: datetime) -> list[Replica]:
        """Every replica whose last heartbeat is recent, oldest first."""
        since = now - timedelta(seconds=DEAD_AFTER_S)

        def work(connection: Connection) -> list[Replica]:
            query = select(*_COLUMNS).where(ReplicaRow.heartbeat_at >= since)
            rows = connection.execute(query.order_by(ReplicaRow.started_at, ReplicaRow.id))
            return [Replica(**row._mapping) for row in rows]

        return await self._database.read(work)

    async def report_identity(self, replica_id: str, generation: int) -> None:
        """Record that every proxy of `replica_id` holds the CA's `generation` (or newer)."""
        query = update(ReplicaRow).where(ReplicaRow.id == replica_id)
        await self._database.write(
            lambda connection: connection.execute(query.values(identity_generation=generation))
        )

    async def behind(self, generation: int, now: datetime, but: str) -> list[str]:
        """The live replicas other than `but` whose proxies do not all hold `generation` yet
        (or that have not said)."""
        since = now - timedelta(seconds=DEAD_AFTER_S)
        late = ReplicaRow.identity_generation.is_(None) | (
            ReplicaRow.identity_generation < generation
        )
        query = select(ReplicaRow.id).where(
            ReplicaRow.heartbeat_at >= since, ReplicaRow.id != but, late
        )
        return list(await self._database.read(lambda c: c.execute(query).scalars().all()))

    async def lead(self, replica_id: str) -> None:
        """Mark `replica_id` as the leader and no other (it took the leader's lock)."""
        query = update(ReplicaRow).values(leading=ReplicaRow.id == replica_id)
        await self._database.write(lambda connection: connection.execute(query))


async def follow_identity(
    repo: ReplicaRepo,
    replica_id: str,
    version: Callable[[], int],
    converged: Callable[[int], Awaitable[bool]],
    every: float = _REPORT_EVERY_S,
) -> None:
    """Report, each time it grows, the CA generation (`version()`, the state this replica
    serves) that all its proxies hold (`converged`), forever; a failed write is tried again."""
    reported = -1
    while True:
        current = version()
        with contextlib.suppress(Exception):  # the store reports its outages
            if current > reported and await converged(current):
                await repo.report_identity(replica_id, current)
                reported = current
        await asyncio.sleep(every)


async def keep_alive(
    repo: ReplicaRepo, replica: Replica, back: Callable[[], None] = lambda: None
) -> None:
    """Beat every `HEARTBEAT_EVERY_S` until cancelled; a beat that fails (the database is
    down) is tried at the next tick: the replica counts as dead meanwhile, as it should. When
    a beat succeeds after the replica was dead to the others, `back()` is called."""
    last = datetime.now(UTC)
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        now = datetime.now(UTC)
        with contextlib.suppress(Exception):
            await repo.beat(replica, now)
            if now - last > timedelta(seconds=DEAD_AFTER_S):
                back()
            last = now


def _values(replica: Replica) -> dict[str, Any]:
    return {
        "id": replica.id,
        "xds_host": replica.xds_host,
        "xds_port": replica.xds_port,
        "api_url": replica.api_url,
        "started_at": replica.started_at,
        "heartbeat_at": replica.heartbeat_at,
    }
