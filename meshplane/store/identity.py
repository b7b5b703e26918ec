"""Storage for the certificate authority: CAs and leaves, keys always sealed by the caller.

Separate from the mesh resources: CA material is not user-written config and does not bump the
mesh revision; the CA announces its own changes (see certs/authority.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from meshplane.store.engine import WRITE
from meshplane.store.tables import CaAuthorityRow, CaLeafRow

__all__ = ["CaAuthorityRow", "CaLeafRow", "IdentityRepo"]


class IdentityRepo:
    """Short transactions over the CA tables; rows come back detached and complete."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Every write here takes SQLite's write lock up front (see engine.WRITE).
        self._writes = async_sessionmaker(
            engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )

    async def authorities(self) -> Sequence[CaAuthorityRow]:
        async with self._sessions() as session:
            return (await session.scalars(select(CaAuthorityRow).order_by(CaAuthorityRow.id))).all()

    async def leaves(self) -> Sequence[CaLeafRow]:
        async with self._sessions() as session:
            return (await session.scalars(select(CaLeafRow).order_by(CaLeafRow.subject))).all()

    async def add_authority(
        self, *, cert_pem: str, chain_pem: str, key_sealed: bytes, state: str, now: datetime
    ) -> CaAuthorityRow:
        row = CaAuthorityRow(
            cert_pem=cert_pem,
            chain_pem=chain_pem,
            key_sealed=key_sealed,
            state=state,
            created_at=now,
        )
        async with self._writes() as session, session.begin():
            session.add(row)
        return row

    async def set_states(self, states: dict[int, tuple[str, datetime | None]]) -> None:
        """Change several CAs' states in one transaction (phases move atomically)."""
        async with self._writes() as session, session.begin():
            for authority_id, (state, retire_at) in states.items():
                await session.execute(
                    update(CaAuthorityRow)
                    .where(CaAuthorityRow.id == authority_id)
                    .values(state=state, retire_at=retire_at)
                )

    async def save_leaves(self, rows: Sequence[CaLeafRow]) -> None:
        """Insert or replace leaves by subject, all in one transaction.

        Writes first (delete, then insert), never read-then-write: on SQLite a transaction that
        starts with a read cannot wait for the write lock and fails with "database is locked".
        """
        async with self._writes() as session, session.begin():
            subjects = [row.subject for row in rows]
            await session.execute(delete(CaLeafRow).where(CaLeafRow.subject.in_(subjects)))
            session.add_all(rows)

    async def delete_leaf(self, subject: str) -> None:
        async with self._writes() as session, session.begin():
            await session.execute(delete(CaLeafRow).where(CaLeafRow.subject == subject))
