"""Storage for the certificate authority: CAs and leaves, keys always sealed by the caller.

Separate from the mesh resources: CA material is not user-written config and does not bump the
mesh revision. Every CA write bumps the CA's own generation instead (`ca_state`), which takes a
row lock, so the writes of all replicas queue and are numbered; on PostgreSQL the other replicas
are told at commit (store/replica_feed.py) and read what changed (`changes_since`). The CA
announces its own changes (see certs/authority.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from meshplane.errors import Conflict
from meshplane.store.database import Database
from meshplane.store.replica_feed import notify_ca
from meshplane.store.tables import CaAuthorityRow, CaLeafRow, CaStateRow

__all__ = ["CaAuthorityRow", "CaChanges", "CaLeafRow", "IdentityRepo"]

_BUMP = (
    update(CaStateRow)
    .where(CaStateRow.id == 1)
    .values(generation=CaStateRow.generation + 1)
    .returning(CaStateRow.generation)
)


@dataclass(frozen=True, slots=True)
class CaChanges:
    """The CA as of `generation`: every authority, and the leaves stored after a generation."""

    generation: int
    authorities: Sequence[CaAuthorityRow]
    leaves: Sequence[CaLeafRow]


def _session(connection: Connection) -> Session:
    # Rows come back detached and complete: nothing expires when the transaction ends.
    return Session(bind=connection, expire_on_commit=False)


def _bump(connection: Connection) -> int:
    """Take the CA writers' lock and return the next generation (told to the other replicas at
    commit)."""
    generation: int = connection.execute(_BUMP).scalar_one()
    if connection.dialect.name == "postgresql":
        notify_ca(connection, generation)
    return generation


def _insert_absent(connection: Connection, rows: Sequence[CaLeafRow]) -> None:
    """Insert the leaves whose subject has none yet; a subject stored meanwhile keeps its own."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    values = [{c.key: getattr(row, c.key) for c in CaLeafRow.__table__.columns} for row in rows]
    connection.execute(dialect.insert(CaLeafRow).values(values).on_conflict_do_nothing())


class IdentityRepo:
    """Short transactions over the CA tables; rows come back detached and complete."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def generation(self) -> int:
        """The newest CA generation (what a replica checks for changes it was not told of)."""
        query = select(CaStateRow.generation).where(CaStateRow.id == 1)
        return int(await self._database.read(lambda c: c.execute(query).scalar_one()))

    async def changes_since(self, generation: int) -> CaChanges:
        """Every authority, and the leaves stored after `generation` (0: all), as one state."""

        def work(connection: Connection) -> CaChanges:
            with _session(connection) as session:
                newest = session.scalar(select(CaStateRow.generation).where(CaStateRow.id == 1))
                authorities = session.scalars(select(CaAuthorityRow).order_by(CaAuthorityRow.id))
                leaves = session.scalars(
                    select(CaLeafRow)
                    .where(CaLeafRow.generation > generation)
                    .order_by(CaLeafRow.subject)
                )
                return CaChanges(int(newest or 0), authorities.all(), leaves.all())

        return await self._database.read(work, snapshot=True)

    async def authorities(self) -> Sequence[CaAuthorityRow]:
        def work(connection: Connection) -> Sequence[CaAuthorityRow]:
            with _session(connection) as session:
                return session.scalars(select(CaAuthorityRow).order_by(CaAuthorityRow.id)).all()

        return await self._database.read(work)

    async def add_authority(self, row: CaAuthorityRow, *, unless: Sequence[str] = ()) -> bool:
        """Insert a new CA's row (its id assigned into `row`), unless a CA is in one of the
        states `unless`: checked under the CA writers' lock, so two replicas cannot both
        create the first root or start a rotation. True if inserted."""

        def work(connection: Connection) -> bool:
            _bump(connection)
            if unless:
                found = select(func.count()).where(CaAuthorityRow.state.in_(unless))
                if connection.execute(found).scalar_one():
                    return False
            with _session(connection) as session:
                session.add(row)
                session.flush()  # assigns row.id
            return True

        return await self._database.write(work)

    async def set_states(
        self,
        states: Mapping[int, tuple[str, datetime | None]],
        *,
        overlap: Mapping[int, float | None] | None = None,
        expect: Mapping[int, str] | None = None,
    ) -> None:
        """Change several CAs' states (and planned overlaps) in one transaction, so phases move
        atomically; Conflict, storing nothing, unless every CA in `expect` is in its state
        there (another replica, or a command, moved them first)."""

        def work(connection: Connection) -> None:
            _bump(connection)
            if expect:
                query = select(CaAuthorityRow.id, CaAuthorityRow.state)
                stored = dict(connection.execute(query.where(CaAuthorityRow.id.in_(expect))).all())
                if stored != dict(expect):  # raised: the transaction rolls back
                    raise Conflict("the root rotation was changed meanwhile")
            for authority_id, (state, retire_at) in states.items():
                values: dict[str, object] = {"state": state, "retire_at": retire_at}
                if overlap is not None and authority_id in overlap:
                    values["overlap_seconds"] = overlap[authority_id]
                connection.execute(
                    update(CaAuthorityRow).where(CaAuthorityRow.id == authority_id).values(values)
                )
            for authority_id, seconds in (overlap or {}).items():
                if authority_id not in states:
                    connection.execute(
                        update(CaAuthorityRow)
                        .where(CaAuthorityRow.id == authority_id)
                        .values(overlap_seconds=seconds)
                    )

        await self._database.write(work)

    async def finish(self, now: datetime) -> None:
        """Ask the rotation under way to end its overlap now: the overlap still planned (on an
        incoming root, or the issuing one while leaves are re-issued) becomes none, and every
        outgoing root retires at `now` at the latest."""

        def work(connection: Connection) -> None:
            _bump(connection)
            planned = CaAuthorityRow.overlap_seconds.is_not(None)
            connection.execute(update(CaAuthorityRow).where(planned).values(overlap_seconds=0.0))
            outgoing = CaAuthorityRow.state == "outgoing"
            late = (CaAuthorityRow.retire_at.is_(None)) | (CaAuthorityRow.retire_at > now)
            connection.execute(update(CaAuthorityRow).where(outgoing, late).values(retire_at=now))

        return await self._database.write(work)

    async def save_leaves(self, rows: Sequence[CaLeafRow], *, replace: bool = True) -> None:
        """Store leaves by subject in one transaction, stamped with its generation.

        `replace` False keeps a subject's stored leaf when it has one (two replicas issuing a
        new identity at once converge on the first stored; the other reads it back)."""

        def work(connection: Connection) -> None:
            generation = _bump(connection)
            for row in rows:
                row.generation = generation
            if rows and replace:
                subjects = [row.subject for row in rows]
                connection.execute(delete(CaLeafRow).where(CaLeafRow.subject.in_(subjects)))
            if rows:
                _insert_absent(connection, rows)

        return await self._database.write(work)
