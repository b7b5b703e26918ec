"""Which replica holds the stream of each auto-registered sidecar, so that its endpoint has one
owner across replicas.

A sidecar's endpoint is removed a grace period after its last stream closes (xds/
auto_registration.py); with replicas, that stream may since have moved to another one. So the
replica that registers a sidecar holds its endpoint first (`hold`), and a removal deletes the
endpoint only if the remover still holds it (`release`, in the delete's transaction): a sidecar
that moved keeps its endpoint without a gap. A replica that dies removes nothing; the leader
removes the endpoints its dead replicas held once they stayed unheld past the grace period
(`orphans`), unless their sidecars came back through another replica first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from meshplane.errors import PreconditionFailed
from meshplane.store.database import Database
from meshplane.store.replicas import DEAD_AFTER_S
from meshplane.store.tables import EndpointHolderRow, ReplicaRow

__all__ = ["EndpointHolders", "release"]


def release(connection: Connection, name: str, holder: str) -> None:
    """In a delete's transaction: PreconditionFailed if another replica holds endpoint `name`
    (its sidecar moved there), else forget who held it."""
    held = select(EndpointHolderRow.replica_id).where(EndpointHolderRow.name == name)
    owner = connection.execute(held).scalar_one_or_none()
    if owner is not None and owner != holder:
        raise PreconditionFailed(f"endpoint '{name}' is held by replica {owner}")
    connection.execute(delete(EndpointHolderRow).where(EndpointHolderRow.name == name))


class EndpointHolders:
    """Short transactions over the endpoint holders table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def hold(self, name: str, replica_id: str, now: datetime) -> None:
        """Record that `replica_id` holds the stream of endpoint `name`'s sidecar."""

        def work(connection: Connection) -> None:
            query = (
                update(EndpointHolderRow)
                .where(EndpointHolderRow.name == name)
                .values(replica_id=replica_id, held_at=now)
            )
            if connection.execute(query).rowcount == 0:
                values = {"name": name, "replica_id": replica_id, "held_at": now}
                connection.execute(insert(EndpointHolderRow).values(**values))

        await self._database.write(work)

    async def orphans(self, now: datetime, grace: float) -> list[tuple[str, str]]:
        """(endpoint, replica) of every endpoint held by a replica dead for longer than
        `grace` seconds (or long forgotten)."""
        since = now - timedelta(seconds=DEAD_AFTER_S + grace)
        alive = select(ReplicaRow.id).where(ReplicaRow.heartbeat_at >= since)
        query = select(EndpointHolderRow.name, EndpointHolderRow.replica_id).where(
            EndpointHolderRow.replica_id.not_in(alive)
        )
        rows = await self._database.read(lambda c: c.execute(query).all())
        return [(name, replica) for name, replica in rows]

    async def forget(self, name: str, replica_id: str) -> None:
        """Drop `replica_id`'s hold of `name` (its endpoint is gone, or managed by the API)."""
        query = delete(EndpointHolderRow).where(
            EndpointHolderRow.name == name, EndpointHolderRow.replica_id == replica_id
        )
        await self._database.write(lambda connection: connection.execute(query))
