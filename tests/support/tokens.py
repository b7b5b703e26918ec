"""API tokens for tests: an admin token stored in a test's database, as the server would."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from meshplane.api.auth import Authenticator
from meshplane.store import ApiToken, Role, Store, TokenRepo, hash_token

__all__ = ["ADMIN_TOKEN", "OneAdmin", "admin_client", "bearer", "node_token", "store_token"]

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
"""The admin token tests give `meshplane serve` (MESHPLANE_ADMIN_TOKEN) and their stores."""


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_client(app: Any) -> httpx.AsyncClient:
    """An in-process client of `app` signed in with ADMIN_TOKEN (as `localhost`: the browser
    guard answers only to the API's own host names)."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=bearer())


async def store_token(
    store: Store, name: str = "admin", role: Role = "admin", token: str = ADMIN_TOKEN
) -> str:
    """Store `token` under `name` with `role` in `store`'s database; return it."""
    await TokenRepo(store.database).replace(name, token, role, now=datetime.now(UTC))
    return token


async def node_token(store: Store, identity: str, ttl: float = 3600) -> str:
    """A node token for `identity` (e.g. "service/a"), issued in `store`'s database as a
    bootstrap would issue it."""
    now = datetime.now(UTC)
    _, token = await TokenRepo(store.database).issue_node_token(
        identity, expires_at=now + timedelta(seconds=ttl), created_by="test", now=now
    )
    return token


class OneAdmin(Authenticator):
    """Knows one token, ADMIN_TOKEN, an admin's; for an app built without a database."""

    def __init__(self) -> None:
        super().__init__(cast(TokenRepo, None))

    async def authenticate(self, bearer: str) -> ApiToken | None:
        if bearer != ADMIN_TOKEN:
            return None
        now = datetime.now(UTC)
        return ApiToken("admin", "admin", (), now, "test", None, now, hash_token(bearer))

    async def issue_node_token(
        self, identity: str, *, ttl: timedelta, created_by: str
    ) -> tuple[str, str]:
        return f"node-{secrets.token_hex(6)}", secrets.token_urlsafe(32)
