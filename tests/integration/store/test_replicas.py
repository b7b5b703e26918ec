"""The replicas table: a replica registers, beats, ages out when its beats stop, and leaves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from meshplane.errors import Unavailable
from meshplane.store import (
    Replica,
    ReplicaProxies,
    ReplicaRepo,
    Store,
    follow_identity,
    keep_alive,
)
from meshplane.store import replicas as replicas_module
from meshplane.store.replicas import DEAD_AFTER_S
from meshplane.store.tables import ReplicaProxyRow


def _replica(name: str, at: datetime, port: int = 18000) -> Replica:
    return Replica(name, "127.0.0.1", port, f"http://127.0.0.1:{port + 1}", at, at)


async def test_live_replicas_are_those_whose_heartbeat_is_recent(store: Store) -> None:
    repo = ReplicaRepo(store.database)
    start = datetime.now(UTC)
    one, two = _replica("one", start), _replica("two", start + timedelta(seconds=1), 18002)
    await repo.register(one)
    await repo.register(two)
    assert [r.id for r in await repo.live(start + timedelta(seconds=2))] == ["one", "two"]

    later = start + timedelta(seconds=DEAD_AFTER_S + 5)
    await repo.beat(two, later)  # one's beats stopped: it is dead by then
    assert [r.id for r in await repo.live(later)] == ["two"]

    await repo.leave("two", later)
    assert await repo.live(later) == []
    await repo.beat(two, later)  # a replica that left (a clean stop elsewhere) comes back
    (back,) = await repo.live(later)
    assert (back.id, back.xds_port, back.api_url) == ("two", 18002, "http://127.0.0.1:18003")


async def test_the_proxies_of_other_live_replicas_are_listed(store: Store) -> None:
    now = datetime.now(UTC)
    repo, views = ReplicaRepo(store.database), ReplicaProxies(store.database)
    await repo.register(_replica("me", now))
    await repo.register(_replica("other", now, 18002))
    await repo.register(_replica("dead", now - timedelta(seconds=DEAD_AFTER_S + 1), 18004))
    for replica in ("me", "other", "dead"):
        await views.write(replica, {1: {"node_id": f"{replica}-1"}}, [])
    await views.write("other", {2: {"node_id": "other-2"}, 1: {"node_id": "other-1b"}}, [])
    listed = sorted(await views.of_others("me", now), key=lambda r: r[1]["node_id"])
    assert listed == [("other", {"node_id": "other-1b"}), ("other", {"node_id": "other-2"})]
    await views.write("other", {}, [1])
    assert await views.of_others("me", now) == [("other", {"node_id": "other-2"})]
    await views.forget_dead(now)  # the leader drops what the dead replica left
    query = select(ReplicaProxyRow.replica_id).distinct()
    stored = await store.database.read(lambda c: c.execute(query).scalars().all())
    assert sorted(stored) == ["me", "other"]
    await views.clear("other")
    assert await views.of_others("me", now) == []


class Flaky(ReplicaRepo):
    """A replica repo whose beats fail while `failing`."""

    failing = True

    async def beat(self, replica: Replica, now: datetime) -> None:
        if self.failing:
            raise Unavailable("the database is unreachable; try again shortly")
        await super().beat(replica, now)


async def test_a_replica_dead_to_the_others_is_told_when_it_beats_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicas_module, "HEARTBEAT_EVERY_S", 0.01)
    monkeypatch.setattr(replicas_module, "DEAD_AFTER_S", 0.1)
    repo, back = Flaky(store.database), []
    beating = asyncio.create_task(
        keep_alive(repo, _replica("me", datetime.now(UTC)), lambda: back.append(1))
    )
    try:
        await asyncio.sleep(0.3)  # no beat for longer than DEAD_AFTER_S: the others see it dead
        repo.failing = False
        async with asyncio.timeout(5):
            while not back:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert back == [1]  # once per return, not at every beat
    finally:
        beating.cancel()


async def test_a_rotation_step_waits_for_the_replicas_whose_proxies_are_behind(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    repo = ReplicaRepo(store.database)
    for name, port in (("leader", 18000), ("caught-up", 18002), ("behind", 18004)):
        await repo.register(_replica(name, now, port))
    await repo.register(_replica("dead", now - timedelta(seconds=DEAD_AFTER_S + 1), 18006))
    await repo.report_identity("caught-up", 7)
    await repo.report_identity("behind", 6)
    assert await repo.behind(7, now, but="leader") == ["behind"]  # the dead one is not waited for

    async def converged(version: int) -> bool:
        return version <= 7  # this replica's proxies hold 7

    reporting = asyncio.create_task(
        follow_identity(repo, "behind", lambda: 7, converged, every=0.01)
    )
    try:
        async with asyncio.timeout(5):
            while await repo.behind(7, now, but="leader"):
                await asyncio.sleep(0.01)
    finally:
        reporting.cancel()
    (behind,) = [r for r in await repo.live(now) if r.id == "behind"]
    assert behind.identity_generation == 7
