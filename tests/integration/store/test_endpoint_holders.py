"""An auto-registered endpoint has one owner across replicas: the replica its sidecar last
registered through. A replica the sidecar left removes nothing; the leader removes what dead
replicas held once the grace period passed, unless the sidecar came back elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meshplane.errors import NotFound
from meshplane.model import EndpointSpec, ServiceSpec
from meshplane.store import Replica, ReplicaRepo, Store
from meshplane.store.replicas import DEAD_AFTER_S
from meshplane.store_bridge import StoreRegistrar

_SPEC = EndpointSpec(service="web", address="127.0.0.1", port=9000, sidecar=True)


async def _exists(store: Store, name: str) -> bool:
    try:
        await store.get("endpoints", name)
    except NotFound:
        return False
    return True


async def _replica(store: Store, name: str, beat: datetime) -> None:
    replica = Replica(name, "127.0.0.1", 18000, "http://127.0.0.1:18001", beat, beat)
    await ReplicaRepo(store.database).register(replica)


async def test_a_replica_the_sidecar_left_does_not_remove_its_endpoint(store: Store) -> None:
    a, b = StoreRegistrar(store, "a"), StoreRegistrar(store, "b")
    assert await a.register("web-1", _SPEC, ServiceSpec())
    revision = store.feed.latest
    assert await b.register("web-1", _SPEC, ServiceSpec())  # the sidecar moved to b
    assert store.feed.latest == revision  # nothing changed for proxies
    await a.deregister("web-1")  # a's grace period after the old stream closed
    assert await _exists(store, "web-1")
    await b.deregister("web-1")  # its stream on b closed too, and stayed closed
    assert not await _exists(store, "web-1")


async def test_the_leader_removes_what_a_dead_replica_held_after_the_grace(store: Store) -> None:
    now = datetime.now(UTC)
    dead_since = now - timedelta(seconds=DEAD_AFTER_S + 3)
    await _replica(store, "dead", dead_since)
    await _replica(store, "alive", now)
    dead, alive = StoreRegistrar(store, "dead"), StoreRegistrar(store, "alive")
    for name in ("gone-1", "back-1", "fresh-1"):
        assert await dead.register(name, _SPEC, ServiceSpec())
    assert await alive.register("back-1", _SPEC, ServiceSpec())  # came back through another

    await alive.remove_orphans(grace=60.0)  # the dead replica's sidecars still have time
    assert [await _exists(store, n) for n in ("gone-1", "back-1", "fresh-1")] == [True] * 3

    await alive.remove_orphans(grace=1.0)
    assert not await _exists(store, "gone-1")
    assert not await _exists(store, "fresh-1")
    assert await _exists(store, "back-1")
    await alive.remove_orphans(grace=1.0)  # nothing left to do: nothing changes
    assert await _exists(store, "back-1")


async def test_an_endpoint_taken_over_by_the_api_is_not_removed(store: Store) -> None:
    dead = StoreRegistrar(store, "dead")
    assert await dead.register("web-1", _SPEC, ServiceSpec())
    await store.put("endpoints", "web-1", _SPEC.model_copy(update={"port": 9001}))
    await StoreRegistrar(store, "leader").remove_orphans(grace=0.0)
    assert (await store.get("endpoints", "web-1")).spec.port == 9001  # type: ignore[attr-defined]
