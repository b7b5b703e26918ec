"""Node tokens on xDS: who is admitted, and which live streams end, and when.

A fake token table and a hand-moved clock stand in for the store and time, so each rule is
shown on its own: identity, expiry, revocation by any replica, the database being down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from meshplane.errors import Unavailable
from meshplane.xds import NodeTokens, Refused
from meshplane.xds.node_tokens import LOOK_BACK

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Grant:
    token_hash: str
    identity: str | None
    expires_at: datetime | None
    created_at: datetime = T0


@dataclass
class Table:
    """The token table: node tokens by hash, revocations with their time; `down` fails reads."""

    now: datetime = T0
    grants: dict[str, Grant] = field(default_factory=dict)
    revoked: dict[str, datetime] = field(default_factory=dict)
    down: bool = False
    lookups: int = 0

    def issue(self, token: str, identity: str, ttl: float = 3600) -> None:
        expiry = self.now + timedelta(seconds=ttl)
        self.grants[self.token_hash(token)] = Grant(
            self.token_hash(token), identity, expiry, self.now
        )

    def revoke(self, token: str) -> None:
        del self.grants[self.token_hash(token)]
        self.revoked[self.token_hash(token)] = self.now

    def token_hash(self, token: str) -> str:
        return f"h({token})"

    async def node_token(self, token_hash: str) -> Grant | None:
        self._reachable()
        self.lookups += 1
        return self.grants.get(token_hash)

    async def issued_since(self, since: datetime | None) -> Sequence[Grant]:
        self._reachable()
        return [g for g in self.grants.values() if since is None or g.created_at >= since]

    async def revoked_since(self, since: datetime) -> Sequence[str]:
        self._reachable()
        return [h for h, at in self.revoked.items() if at >= since]

    def _reachable(self) -> None:
        if self.down:
            raise Unavailable("database unreachable")


class Stream:
    def __init__(self) -> None:
        self.ended: list[str] = []

    def end(self, reason: str) -> None:
        self.ended.append(reason)


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
async def tokens(table: Table) -> NodeTokens:
    gate = NodeTokens(table, clock=lambda: table.now)
    table.issue("orders-token", "service/orders")
    await gate.load()
    return gate


async def _watched(tokens: NodeTokens, identity: str, token: str) -> Stream:
    stream = Stream()
    tokens.watch(await tokens.admit(identity, token), stream.end)
    return stream


async def test_a_node_token_admits_its_own_identity_only(tokens: NodeTokens, table: Table) -> None:
    grant = await tokens.admit("service/orders", "orders-token")
    assert grant.identity == "service/orders"
    assert table.lookups == 0  # loaded at start: no database read per stream
    for identity, token, reason in [
        ("service/payments", "orders-token", "wrong node token for service/payments"),
        ("service/orders", "forged", "wrong node token for service/orders"),
        ("service/orders", None, "missing node token for service/orders"),
        (None, "orders-token", "missing node token for None"),
    ]:
        with pytest.raises(Refused, match=reason):
            await tokens.admit(identity, token)


async def test_an_api_token_is_no_node_token(tokens: NodeTokens, table: Table) -> None:
    # The table answers only node tokens (TokenRepo.node_token asks for role 'node'); an API
    # token's grant names no identity, so even one that slipped through would admit nobody.
    table.grants["h(api)"] = Grant("h(api)", None, None)
    with pytest.raises(Refused, match="wrong node token"):
        await tokens.admit("service/orders", "api")


async def test_a_token_issued_elsewhere_is_learned_or_looked_up(
    tokens: NodeTokens, table: Table
) -> None:
    table.issue("late", "service/orders")
    await tokens.admit("service/orders", "late")  # an instant after it was issued: looked up
    assert table.lookups == 1
    table.issue("learned", "service/orders")
    await tokens.sweep()
    await tokens.admit("service/orders", "learned")
    assert table.lookups == 1


async def test_revocation_anywhere_ends_the_live_streams_of_that_token_only(
    tokens: NodeTokens, table: Table
) -> None:
    table.issue("other", "service/orders")
    revoked = await _watched(tokens, "service/orders", "orders-token")
    kept = await _watched(tokens, "service/orders", "other")
    await tokens.sweep()
    assert revoked.ended == []

    table.revoke("orders-token")  # by this replica or any other: the table says so
    await tokens.sweep()
    assert revoked.ended == ["node token revoked"]
    assert kept.ended == []
    await tokens.sweep()  # the revocation is read again within LOOK_BACK: still ended once
    assert revoked.ended == ["node token revoked"]
    with pytest.raises(Refused, match="wrong node token"):
        await tokens.admit("service/orders", "orders-token")


async def test_expiry_refuses_new_streams_and_ends_live_ones(
    tokens: NodeTokens, table: Table
) -> None:
    table.issue("brief", "service/orders", ttl=120)
    stream = await _watched(tokens, "service/orders", "brief")
    table.now += timedelta(seconds=119)
    await tokens.sweep()
    assert stream.ended == []
    table.now += timedelta(seconds=1)
    await tokens.sweep()
    assert stream.ended == ["node token expired"]
    with pytest.raises(Refused, match="expired node token for service/orders"):
        await tokens.admit("service/orders", "brief")


async def test_while_the_database_is_down_known_tokens_admit_and_expiry_still_ends(
    tokens: NodeTokens, table: Table
) -> None:
    table.issue("brief", "service/orders", ttl=120)
    table.issue("unseen", "service/orders")
    await tokens.sweep()
    table.issue("new", "service/orders")
    table.down = True
    await tokens.admit("service/orders", "orders-token")
    with pytest.raises(Refused, match="database is unreachable"):
        await tokens.admit("service/orders", "new")
    stream = await _watched(tokens, "service/orders", "brief")
    table.now += timedelta(seconds=120)
    await tokens.sweep()
    assert stream.ended == ["node token expired"]


async def test_a_revocation_older_than_the_window_is_caught_after_an_outage(
    tokens: NodeTokens, table: Table
) -> None:
    stream = await _watched(tokens, "service/orders", "orders-token")
    table.down = True
    await tokens.sweep()
    table.down = False
    table.revoke("orders-token")
    table.now += LOOK_BACK * 3  # the outage outlasted the window the revocation stood in
    table.down = True
    await tokens.sweep()
    assert stream.ended == []
    table.down = False
    await tokens.sweep()  # back: everything is read again, and the missing token ends it
    assert stream.ended == ["node token revoked"]


async def test_an_unforeseen_failure_of_a_look_does_not_stop_the_sweeps(
    tokens: NodeTokens, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = await _watched(tokens, "service/orders", "orders-token")
    looks = 0

    async def broken(since: datetime) -> Sequence[str]:
        nonlocal looks
        looks += 1
        if looks == 1:
            raise RuntimeError("unforeseen")
        return list(table.revoked)

    monkeypatch.setattr(table, "revoked_since", broken)
    monkeypatch.setattr("meshplane.xds.node_tokens.POLL_SECONDS", 0.01)
    table.revoke("orders-token")
    running = asyncio.create_task(tokens.run())
    try:
        async with asyncio.timeout(5):
            while not stream.ended:
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
    assert looks >= 2
    assert stream.ended == ["node token revoked"]
