"""Who is calling: API tokens looked up by their hash, from a cache refreshed every second.

Node tokens (role `node`) are not loaded here, so one is never accepted on the REST API; they
are issued here, with each bootstrap, and checked on xDS (`meshplane.xds.NodeTokens`).

The cache answers while the database is unreachable (the routes that answer from memory keep
answering to the tokens known before the outage), and it is dropped at once when this process
creates or revokes a token, so a revoked token is refused on its very next call here and within
`FRESH_FOR` seconds on every other replica. Expiry is checked at every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from meshplane.errors import Unavailable
from meshplane.store import API_ROLES, ApiToken, Role, TokenRepo, hash_token

__all__ = ["FRESH_FOR", "Authenticator"]

log = logging.getLogger(__name__)

FRESH_FOR = 1.0
"""Seconds a loaded copy of the token table answers before it is read again."""
_TOUCH_EVERY = timedelta(seconds=60)  # last use is kept to the minute: no write per request


class Authenticator:
    """Finds the API token a bearer value belongs to; creates and revokes tokens."""

    def __init__(self, tokens: TokenRepo) -> None:
        self._tokens = tokens
        self._by_hash: dict[str, ApiToken] = {}
        self._loaded_at = float("-inf")  # -inf: read it again at the next call
        self._loaded = False
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> TokenRepo:
        return self._tokens

    async def authenticate(self, bearer: str) -> ApiToken | None:
        """The live token whose value is `bearer`, or None (unknown, revoked or expired)."""
        await self._fresh()
        digest = hash_token(bearer)
        token = self._by_hash.get(digest)
        now = datetime.now(UTC)
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            return None
        if token.expired(now):
            return None
        if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
            await self._touch(token, now)
        return token

    async def create(
        self,
        name: str,
        role: Role,
        *,
        scope: Sequence[str],
        expires_at: datetime | None,
        created_by: str,
    ) -> str:
        """Store a new token and return its value (shown once)."""
        token = await self._tokens.create(
            name,
            role,
            scope=scope,
            expires_at=expires_at,
            created_by=created_by,
            now=datetime.now(UTC),
        )
        self._loaded_at = float("-inf")
        log.info("api token created name=%s role=%s by=%s", name, role, created_by)
        return token

    async def issue_node_token(
        self, identity: str, *, ttl: timedelta, created_by: str
    ) -> tuple[str, str]:
        """A new node token for `identity`, valid for `ttl`: (its name, the token)."""
        now = datetime.now(UTC)
        name, token = await self._tokens.issue_node_token(
            identity, expires_at=now + ttl, created_by=created_by, now=now
        )
        log.info("node token issued name=%s identity=%s by=%s", name, identity, created_by)
        return name, token

    async def revoke(self, name: str, *, by: str) -> ApiToken:
        """Revoke the token named `name` at once (NotFound if there is none)."""
        token = await self._tokens.revoke(name, now=datetime.now(UTC))
        self._forget([token], by)
        return token

    async def revoke_identity(self, identity: str, *, by: str) -> list[ApiToken]:
        """Revoke every node token of `identity` at once; the ones revoked."""
        tokens = await self._tokens.revoke_identity(identity, now=datetime.now(UTC))
        self._forget(tokens, by)
        return tokens

    def _forget(self, tokens: Sequence[ApiToken], by: str) -> None:
        names = {t.name for t in tokens}
        self._by_hash = {h: t for h, t in self._by_hash.items() if t.name not in names}
        self._loaded_at = float("-inf")
        for token in tokens:
            log.info("token revoked name=%s role=%s by=%s", token.name, token.role, by)

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at < FRESH_FOR:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < FRESH_FOR:
                return
            try:
                tokens = await self._tokens.all(API_ROLES)
            except Unavailable:
                if not self._loaded:
                    raise
                return  # the tokens known before the outage keep answering
            self._by_hash = {t.token_hash: t for t in tokens}
            self._loaded_at = time.monotonic()
            self._loaded = True

    async def _touch(self, token: ApiToken, now: datetime) -> None:
        self._by_hash[token.token_hash] = replace(token, last_used_at=now)
        with contextlib.suppress(Unavailable):  # last use is a hint; never refuse a call for it
            await self._tokens.touch(token.name, now)
