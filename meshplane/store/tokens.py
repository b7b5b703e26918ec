"""API and node tokens in SQL: only the SHA-256 of each token is stored, never the token.

A token is `secrets.token_urlsafe(32)` (256 random bits), so a plain SHA-256 is enough to keep
it unguessable from a stolen table (no salt or slow hash needed for a high-entropy secret); the
hash is also the lookup key, and the caller compares in constant time. Deleting a row revokes
its token. A node token (role `node`, issued with a bootstrap for one identity) also leaves a
revocation behind, which every replica polls to end the xDS streams that token opened.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Row, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from meshplane.errors import Conflict, NotFound
from meshplane.store.database import Database
from meshplane.store.tables import ApiTokenRow, TokenRevocationRow

__all__ = [
    "API_ROLES",
    "NODE_ROLE",
    "REVOCATIONS_KEPT",
    "ROLES",
    "ApiToken",
    "Role",
    "TokenRepo",
    "hash_token",
    "new_token",
]

Role = Literal["admin", "editor", "viewer", "bootstrap", "node"]
ROLES: tuple[Role, ...] = ("admin", "editor", "viewer", "bootstrap", "node")
NODE_ROLE: Role = "node"
"""An xDS credential for one identity: never accepted on the REST API (nor API roles on xDS)."""
API_ROLES: tuple[Role, ...] = tuple(r for r in ROLES if r != NODE_ROLE)
REVOCATIONS_KEPT = timedelta(hours=1)
"""How long a node token's revocation stays readable: ample for every replica to poll it."""


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

    @property
    def identity(self) -> str | None:
        """The identity (a Subject's text) a node token speaks for; None for an API token."""
        return self.scope[0] if self.role == NODE_ROLE and self.scope else None


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

    async def all(self, roles: Sequence[Role] = ROLES) -> list[ApiToken]:
        """Every token of `roles`, ordered by name."""

        def work(connection: Connection) -> Sequence[Row[Any]]:
            table = ApiTokenRow.__table__
            query = select(table).where(table.c.role.in_(roles)).order_by(table.c.name)
            return connection.execute(query).all()

        return [_token(row) for row in await self._database.read(work)]

    async def node_token(self, token_hash: str) -> ApiToken | None:
        """The node token whose hash is `token_hash` (an API token never answers here)."""

        def work(connection: Connection) -> Row[Any] | None:
            table = ApiTokenRow.__table__
            query = select(table).where(table.c.token_hash == token_hash, table.c.role == NODE_ROLE)
            return connection.execute(query).first()

        row = await self._database.read(work)
        return _token(row) if row is not None else None

    async def issued_since(self, since: datetime | None, *, now: datetime) -> list[ApiToken]:
        """The node tokens issued at or after `since` (every one for None) and not expired."""
        row = ApiTokenRow
        query = select(row.__table__).where(
            row.role == NODE_ROLE, (row.expires_at.is_(None)) | (row.expires_at > now)
        )
        if since is not None:
            query = query.where(row.created_at >= since)

        def work(connection: Connection) -> Sequence[Row[Any]]:
            return connection.execute(query).all()

        return [_token(r) for r in await self._database.read(work)]

    async def issue_node_token(
        self, identity: str, *, expires_at: datetime, created_by: str, now: datetime
    ) -> tuple[str, str]:
        """A new node token for `identity` (a Subject's text): (its name, the token). Node
        tokens whose expiry has passed are deleted on the way: they can open nothing more."""
        name, token = f"node-{secrets.token_hex(6)}", new_token()
        values = {
            "name": name,
            "token_hash": hash_token(token),
            "role": NODE_ROLE,
            "scope": [identity],
            "created_at": now,
            "created_by": created_by,
            "expires_at": expires_at,
        }
        expired = and_(ApiTokenRow.role == NODE_ROLE, ApiTokenRow.expires_at <= now)

        def work(connection: Connection) -> None:
            connection.execute(delete(ApiTokenRow).where(expired))
            connection.execute(insert(ApiTokenRow), values)

        await self._database.write(work)
        return name, token

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

    async def revoke(self, name: str, *, now: datetime) -> ApiToken:
        """Delete the token named `name` and return it; NotFound if there is none."""
        revoked = await self._revoke(ApiTokenRow.name == name, now)
        if not revoked:
            raise NotFound(f"no token named {name!r}")
        return revoked[0]

    async def revoke_identity(self, identity: str, *, now: datetime) -> list[ApiToken]:
        """Delete every node token of `identity` (a Subject's text); the ones deleted."""
        tokens = [t for t in await self.all((NODE_ROLE,)) if t.identity == identity]
        if not tokens:
            return []
        return await self._revoke(ApiTokenRow.name.in_([t.name for t in tokens]), now)

    async def revoked_since(self, since: datetime) -> list[str]:
        """The hashes of the node tokens revoked at or after `since`."""

        def work(connection: Connection) -> Sequence[str]:
            row = TokenRevocationRow
            query = select(row.token_hash).where(row.revoked_at >= since)
            return connection.execute(query).scalars().all()

        return list(await self._database.read(work))

    async def _revoke(self, which: Any, now: datetime) -> list[ApiToken]:
        """Delete the tokens `which` selects, leaving a revocation for each node token."""

        def work(connection: Connection) -> list[ApiToken]:
            table = ApiTokenRow.__table__
            tokens = [_token(r) for r in connection.execute(select(table).where(which)).all()]
            connection.execute(delete(ApiTokenRow).where(which))
            gone = now - REVOCATIONS_KEPT
            connection.execute(
                delete(TokenRevocationRow).where(TokenRevocationRow.revoked_at < gone)
            )
            revocations = [
                {"token_hash": t.token_hash, "identity": t.identity, "revoked_at": now}
                for t in tokens
                if t.identity is not None
            ]
            if revocations:
                connection.execute(insert(TokenRevocationRow), revocations)
            return tokens

        return await self._database.write(work)

    async def touch(self, name: str, now: datetime) -> None:
        """Record that the token named `name` was used at `now`."""

        def work(connection: Connection) -> None:
            connection.execute(
                update(ApiTokenRow).where(ApiTokenRow.name == name).values(last_used_at=now)
            )

        await self._database.write(work)
