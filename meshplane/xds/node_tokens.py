"""Node tokens on xDS: checked when a stream opens, and a revoked or expired one's streams ended.

A proxy's first request carries the node token of its bootstrap. It must be a live node token
(an API token never is) of the identity the node claims. Every live node token is held in
memory, by its hash: loaded at start, then kept current by a look every `POLL_SECONDS` at the
tokens issued and revoked during the last `LOOK_BACK` (by any replica). So a stream opens with
no database read, a proxy starting while the database is down is still admitted, and within a
second of a revocation anywhere every live stream of that token is ended through the callback
it was watched with, as is a stream whose token's expiry passes. Re-reading a window, rather
than from the last look, tolerates clocks that differ between replicas and commits that land
late. A token issued an instant ago elsewhere, not seen yet, is looked up once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from meshplane.errors import Unavailable

__all__ = ["NodeGrant", "NodeTokenSource", "NodeTokens", "Refused"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
LOOK_BACK = timedelta(seconds=30)
_PRUNE_EVERY = timedelta(seconds=60)


class NodeGrant(Protocol):
    """What a node token grants: one identity, until an expiry; its hash names it."""

    @property
    def token_hash(self) -> str: ...
    @property
    def identity(self) -> str | None: ...
    @property
    def expires_at(self) -> datetime | None: ...


class NodeTokenSource(Protocol):
    """The store's view of node tokens (see `meshplane.store_bridge`)."""

    def token_hash(self, token: str) -> str:
        """What names a token: the hash it is stored under."""
        ...

    async def node_token(self, token_hash: str) -> NodeGrant | None:
        """The node token stored under `token_hash`, or None."""
        ...

    async def issued_since(self, since: datetime | None) -> Sequence[NodeGrant]:
        """The node tokens issued at or after `since` (every one, for None)."""
        ...

    async def revoked_since(self, since: datetime) -> Sequence[str]:
        """The hashes of the node tokens revoked at or after `since`."""
        ...


class Refused(Exception):
    """A stream whose node token does not admit it; the message says why."""


@dataclass(slots=True)
class _Live:
    token_hash: str
    expires_at: datetime | None
    end: Callable[[str], None]


def _now() -> datetime:
    return datetime.now(UTC)


class NodeTokens:
    """Admits streams by their node token and ends those whose token stops being valid."""

    def __init__(self, source: NodeTokenSource, *, clock: Callable[[], datetime] = _now) -> None:
        self._source = source
        self._clock = clock
        self._known: dict[str, NodeGrant] = {}  # every live node token, by hash
        self._live: dict[int, _Live] = {}
        self._ids = itertools.count()
        self._pruned_at = clock()
        self._stale = False  # a look failed: read every token again at the next one

    async def load(self) -> None:
        """Hold every live node token in memory (at start)."""
        self._known = {g.token_hash: g for g in await self._source.issued_since(None)}

    async def admit(self, identity: str | None, token: str | None) -> NodeGrant:
        """What `token` grants, if it is a live node token of `identity`; else Refused."""
        if identity is None or not token:
            raise Refused(f"missing node token for {identity}")
        token_hash = self._source.token_hash(token)
        grant = self._known.get(token_hash) or await self._look_up(token_hash)
        if grant is None or grant.identity != identity:
            raise Refused(f"wrong node token for {identity}")
        if _expired(grant, self._clock()):
            raise Refused(f"expired node token for {identity}")
        return grant

    def watch(self, grant: NodeGrant, end: Callable[[str], None]) -> Callable[[], None]:
        """Call `end(reason)` once if `grant` is revoked or expires; returns the unwatch."""
        key = next(self._ids)
        self._live[key] = _Live(grant.token_hash, grant.expires_at, end)

        def unwatch() -> None:
            self._live.pop(key, None)

        return unwatch

    async def run(self) -> None:
        """Look for issued, revoked and expired tokens every POLL_SECONDS, until cancelled. A
        look that fails for an unforeseen reason is logged and the next one tried: the xDS
        server must not stop over it."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log.exception("node token sweep failed; trying again")

    async def sweep(self) -> None:
        """Learn the tokens issued and revoked (anywhere) lately; end the live streams of
        those revoked or expired."""
        now = self._clock()
        try:
            revoked = await self._learn(now)
        except Unavailable:
            self._stale = True  # expiries are still enforced; the rest once it is back
            revoked = set()
        for key, live in list(self._live.items()):
            if live.expires_at is not None and live.expires_at <= now:
                self._end(key, "node token expired")
            elif live.token_hash in revoked or live.token_hash not in self._known:
                self._end(key, "node token revoked")
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._known = {h: g for h, g in self._known.items() if not _expired(g, now)}
            self._pruned_at = now

    async def _learn(self, now: datetime) -> set[str]:
        """Bring the tokens in memory up to date; the hashes revoked lately. After an outage
        (whose revocations may be older than the window by now) everything is read again."""
        revoked = set(await self._source.revoked_since(now - LOOK_BACK))
        if self._stale:
            await self.load()
            self._stale = False
        else:
            issued = await self._source.issued_since(now - LOOK_BACK)
            self._known.update((g.token_hash, g) for g in issued)
        for token_hash in revoked:
            self._known.pop(token_hash, None)
        return revoked

    def _end(self, key: int, reason: str) -> None:
        live = self._live.pop(key)
        live.end(reason)

    async def _look_up(self, token_hash: str) -> NodeGrant | None:
        try:
            grant = await self._source.node_token(token_hash)
        except Unavailable:
            raise Refused("cannot check a new node token: the database is unreachable") from None
        if grant is not None:
            self._known[token_hash] = grant
        return grant


def _expired(grant: NodeGrant, now: datetime) -> bool:
    return grant.expires_at is not None and grant.expires_at <= now
