"""Storage for the certificate authority: CAs and leaves, keys always sealed by the caller.

Separate from the mesh resources: CA material is not user-written config and does not bump the
mesh revision; the CA announces its own changes (see certs/authority.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from meshplane.store.database import Database
from meshplane.store.tables import CaAuthorityRow, CaLeafRow

__all__ = ["CaAuthorityRow", "CaLeafRow", "IdentityRepo"]


def _session(connection: Connection) -> Session:
    # Rows come back detached and complete: nothing expires when the transaction ends.
    return Session(bind=connection, expire_on_commit=False)


class IdentityRepo:
    """Short transactions over the CA tables; rows come back detached and complete."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def authorities(self) -> Sequence[CaAuthorityRow]:
        def work(connection: Connection) -> Sequence[CaAuthorityRow]:
            with _session(connection) as session:
                return session.scalars(select(CaAuthorityRow).order_by(CaAuthorityRow.id)).all()

        return await self._database.read(work)

    async def leaves(self) -> Sequence[CaLeafRow]:
        def work(connection: Connection) -> Sequence[CaLeafRow]:
            with _session(connection) as session:
                return session.scalars(select(CaLeafRow).order_by(CaLeafRow.subject)).all()

        return await self._database.read(work)

    async def add_authority(self, row: CaAuthorityRow) -> CaAuthorityRow:
        """Insert a new CA's row; answer it with its id assigned."""

        def work(connection: Connection) -> None:
            with _session(connection) as session:
                session.add(row)
                session.flush()  # assigns row.id

        await self._database.write(work)
        return row

    async def set_states(self, states: dict[int, tuple[str, datetime | None]]) -> None:
        """Change several CAs' states in one transaction (phases move atomically)."""

        def work(connection: Connection) -> None:
            for authority_id, (state, retire_at) in states.items():
                connection.execute(
                    update(CaAuthorityRow)
                    .where(CaAuthorityRow.id == authority_id)
                    .values(state=state, retire_at=retire_at)
                )

        await self._database.write(work)

    async def save_leaves(self, rows: Sequence[CaLeafRow]) -> None:
        """Insert or replace leaves by subject, all in one transaction."""

        def work(connection: Connection) -> None:
            subjects = [row.subject for row in rows]
            connection.execute(delete(CaLeafRow).where(CaLeafRow.subject.in_(subjects)))
            with _session(connection) as session:
                session.add_all(rows)
                session.flush()

        await self._database.write(work)

    async def delete_leaf(self, subject: str) -> None:
        def work(connection: Connection) -> None:
            connection.execute(delete(CaLeafRow).where(CaLeafRow.subject == subject))

        await self._database.write(work)
