"""The change log, the feed and consistent mesh loads, on SQLite and PostgreSQL."""

import asyncio

import pytest

from meshplane.errors import NotFound
from meshplane.model import Change, EndpointSpec, Mesh, RouteSpec, ServiceSpec
from meshplane.store import ChangeFeed, Store, revisions

SVC = ServiceSpec()


async def _log_reader(store: Store) -> Store:
    """A Store on the same database whose feed remembers nothing: it reads the change log (as a
    restarted process would), where `store` answers recent changes from its feed's memory."""
    return Store(store.database, ChangeFeed(await store.revision()))


@pytest.mark.parametrize("reader", ["feed", "log"])
async def test_change_log_records_every_write_in_order(store: Store, reader: str):
    ep = EndpointSpec(service="b", address="10.0.0.1", port=80)
    await store.put("services", "b", SVC)
    await store.put("endpoints", "b-1", ep, source="auto")
    await store.put("services", "b", ServiceSpec(protocol="grpc"))
    await store.put("services", "b", ServiceSpec(protocol="grpc"))  # no-op: not logged
    await store.delete("endpoints", "b-1")
    source = store if reader == "feed" else await _log_reader(store)
    assert await source.changes_since(0) == [
        Change(1, "services", "b", SVC),
        Change(2, "endpoints", "b-1", ep),
        Change(3, "services", "b", ServiceSpec(protocol="grpc")),
        Change(4, "endpoints", "b-1", None),
    ]
    assert [c.revision for c in await source.changes_since(2) or []] == [3, 4]
    assert await source.changes_since(4) == []


async def test_the_feed_falls_back_to_the_log_past_a_gap(store: Store):
    await store.put("services", "a", SVC)
    other = await _log_reader(store)
    await other.put("services", "b", SVC)  # committed by "another process": not in store's feed
    store.feed.publish(2)
    await store.put("services", "c", SVC)
    assert [c.name for c in await store.changes_since(0) or []] == ["a", "b", "c"]


async def test_changes_since_a_future_revision_asks_for_a_reload(store: Store):
    await store.put("services", "b", SVC)
    assert await store.changes_since(5) is None


async def test_changes_since_returns_none_once_pruned(store: Store, monkeypatch):
    monkeypatch.setattr(revisions, "PRUNE_EVERY", 3)
    store = Store(store.database, store.feed, history_revisions=5)
    for i in range(9):
        await store.put("services", f"s{i}", SVC)
    # Pruned at revisions 3, 6 and 9, keeping the 5 newest: 5..9 remain.
    log = await _log_reader(store)
    assert await log.changes_since(3) is None
    assert [c.revision for c in await log.changes_since(4) or []] == [5, 6, 7, 8, 9]
    mesh = await store.load_mesh()
    assert mesh.revision == 9
    assert sorted(mesh.services) == [f"s{i}" for i in range(9)]


async def test_replaying_the_change_log_rebuilds_the_mesh(store: Store):
    await store.put("services", "a", SVC)
    await store.put("services", "b", SVC)
    await store.put("endpoints", "a-1", EndpointSpec(service="a", address="10.0.0.1", port=80))
    await store.put("endpoints", "b-1", EndpointSpec(service="b", address="10.0.0.2", port=80))
    route = RouteSpec.model_validate({"hosts": ["a"], "destinations": [{"service": "a"}]})
    await store.put("routes", "to-a", route)
    await store.put("endpoints", "a-1", EndpointSpec(service="b", address="10.0.0.1", port=80))
    await store.delete("endpoints", "b-1")
    loaded = await store.load_mesh()
    replayed = Mesh().with_changes(await store.changes_since(0) or [])
    assert loaded == replayed
    assert loaded.revision == 7
    assert set(loaded.endpoints_of("b")) == {"a-1"}
    assert loaded.endpoints_of("a") == {}
    assert loaded.routes == {"to-a": route}


async def test_load_mesh_of_an_emptied_mesh_keeps_the_revision(store: Store):
    await store.put("services", "a", SVC)
    await store.delete("services", "a")
    mesh = await store.load_mesh()
    assert (mesh.revision, dict(mesh.services)) == (2, {})


async def test_load_mesh_sees_one_revision_while_writers_commit(store: Store):
    # Every write adds one service, so a consistent read has exactly `revision` services.
    async def write() -> None:
        for i in range(30):
            await store.put("services", f"s{i}", SVC)

    writer = asyncio.create_task(write())
    while not writer.done():
        mesh = await store.load_mesh()
        assert len(mesh.services) == mesh.revision
    await writer
    assert (await store.load_mesh()).revision == 30


async def test_feed_is_published_after_each_commit(store: Store):
    waiter = asyncio.create_task(store.feed.wait_beyond(0))
    await store.put("services", "a", SVC)
    assert await asyncio.wait_for(waiter, timeout=5) == 1
    await store.put("services", "a", SVC)  # no-op publishes nothing new
    assert store.feed.latest == 1
    await store.delete("services", "a")
    assert store.feed.latest == 2


async def test_failed_write_publishes_nothing(store: Store):
    with pytest.raises(NotFound):
        await store.delete("services", "a")
    assert store.feed.latest == 0
    assert await store.revision() == 0


async def test_a_write_lets_the_feed_waiters_and_what_they_wake_run_before_it_returns(
    store: Store,
):
    """The push goes before the HTTP answer: the builder (woken by the feed) and the streams it
    wakes in turn both run before `put` returns to the API handler."""
    order: list[str] = []
    streams: asyncio.Queue[int] = asyncio.Queue()

    async def builder() -> None:
        revision = await store.feed.wait_beyond(store.feed.latest)
        order.append("built")
        streams.put_nowait(revision)

    async def stream() -> None:
        await streams.get()
        order.append("pushed")

    tasks = [asyncio.create_task(builder()), asyncio.create_task(stream())]
    await asyncio.sleep(0)  # both are waiting
    await store.put("services", "b", SVC)
    order.append("answered")
    await asyncio.gather(*tasks)
    assert order == ["built", "pushed", "answered"]
