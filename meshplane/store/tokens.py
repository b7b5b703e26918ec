"""API tokens in SQL: only the SHA-256 of each token is stored, never the token.

A token is `secrets.token_urlsafe(32)` (256 random bits), so a plain SHA-256 is enough to keep
it unguessable from a stolen table (no salt or slow hash needed for a high-entropy secret); the
hash is also the lookup key, and the caller compares in constant time. Deleting a row revokes
its token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from meshplane.errors import Conflict, NotFound
from meshplane.store.database import Database
from meshplane.store.tables import ApiTokenRow

__all__ = ["ROLES", "ApiToken", "Role", "TokenRepo", "hash_token", "new_token"]

Role = Literal["admin", "editor", "viewer", "bootstrap"]
ROLES: tuple[Role, ...] = ("admin", "editor", "viewer", "bootstrap")


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token as the API shows it (its hash only for the authenticator's lookup)."""

    name: str
    role: Role
    scope: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    token_hash: str

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _token(row: Row[Any]) -> ApiToken:
    role: Role = row.role if row.role in ROLES else "viewer"
    return ApiToken(
        name=row.name,
        role=role,
        scope=tuple(row.scope or ()),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        token_hash=row.token_hash,
    )


class TokenRepo:
    """Short transactions over the api_tokens table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def all(self) -> list[ApiToken]:
        """Every token, ordered by name."""

        def work(connection: Connection) -> Sequence[Row[Any]]:
            table = ApiTokenRow.__table__
            return connection.execute(select(table).order_by(table.c.name)).all()

        return [_token(row) for row in await self._database.read(work)]

    async def create(
        self,
        name: str,
        role: Role,
        *,
        scope: Sequence[str] = (),
        expires_at: datetime | None,
        created_by: str,
        now: datetime,
        token: str | None = None,
    ) -> str:
        """Store a new token and return it (the only time it is seen); Conflict if `name` is
        taken. `token` sets its value (the configured first admin token); else it is random."""
        token = token if token is not None else new_token()
        values = {
            "name": name,
            "token_hash": hash_token(token),
            "role": role,
            "scope": list(scope) or None,
            "created_at": now,
            "created_by": created_by,
            "expires_at": expires_at,
        }

        def work(connection: Connection) -> None:
            connection.execute(insert(ApiTokenRow), values)

        try:
            await self._database.write(work)
        except IntegrityError:
            raise Conflict(f"a token named {name!r} already exists; revoke it first") from None
        return token

    async def replace(self, name: str, token: str, role: Role, *, now: datetime) -> bool:
        """Make `token` the one named `name` (created or its hash replaced); True if it changed
        anything. For a token whose value comes from configuration."""

        def work(connection: Connection) -> bool:
            row = connection.execute(
                select(ApiTokenRow.token_hash, ApiTokenRow.role).where(ApiTokenRow.name == name)
            ).first()
            digest = hash_token(token)
            same = row is not None and secrets.compare_digest(row.token_hash, digest)
            if same and row is not None and row.role == role:
                return False
            connection.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name))
            connection.execute(
                insert(ApiTokenRow),
                {
                    "name": name,
                    "token_hash": digest,
                    "role": role,
                    "created_at": now,
                    "created_by": "configuration",
                },
            )
            return True

        return await self._database.write(work)

    async def revoke(self, name: str) -> None:
        """Delete the token named `name`; NotFound if there is none."""

        def work(connection: Connection) -> int:
            return connection.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name)).rowcount

        if not await self._database.write(work):
            raise NotFound(f"no token named {name!r}")

    async def touch(self, name: str, now: datetime) -> None:
        """Record that the token named `name` was used at `now`."""

        def work(connection: Connection) -> None:
            connection.execute(
                update(ApiTokenRow).where(ApiTokenRow.name == name).values(last_used_at=now)
            )

        await self._database.write(work)
