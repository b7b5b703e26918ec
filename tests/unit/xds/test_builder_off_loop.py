"""Builds run in a worker thread, and what happens on the event loop meanwhile is not lost:
changes committed during a build fold into the next one; a group that connects is served from
the last build, then brought up to the new one; new identities are never overwritten by a build
that started before them. (HeldBuild holds a build until the test lets it go.)"""

from __future__ import annotations

import asyncio

from meshplane.model import Change, IdentityState, Mesh, ProxyGroup, ServiceSpec
from meshplane.xds import ResourceCache, Snapshot, SnapshotBuilder
from tests.support.held_build import HeldBuild
from tests.support.meshes import gateway, gateway_group, mesh, service, sidecar_group

EDGE = gateway_group("edge")
WEB = sidecar_group("web")
Stamp = tuple[int, int]


class FeedSource:
    """A MeshSource over a list of changes; `commit` wakes the builder as the store's feed does."""

    def __init__(self, base: Mesh) -> None:
        self.base = base
        self.log: list[Change] = []
        self._committed = asyncio.Event()

    def commit(self, name: str) -> None:
        """Add service `name` at the next revision."""
        revision = (self.log[-1] if self.log else self.base).revision + 1
        self.log.append(Change(revision, "services", name, ServiceSpec()))
        self._committed.set()

    async def load_mesh(self) -> Mesh:
        return self.base.with_changes(self.log)

    async def changes_since(self, revision: int) -> list[Change] | None:
        return [c for c in self.log if c.revision > revision]

    async def wait_beyond(self, revision: int) -> int:
        while not self.log or self.log[-1].revision <= revision:
            self._committed.clear()
            await self._committed.wait()
        return self.log[-1].revision


def _recorded(cache: ResourceCache, *groups: ProxyGroup) -> dict[ProxyGroup, list[Stamp]]:
    """Watch `groups`; each one's published (revision, identity version), in order."""
    seen: dict[ProxyGroup, list[Stamp]] = {}
    for group in groups:
        record = seen.setdefault(group, [])

        def stamp(snapshot: Snapshot, record: list[Stamp] = record) -> None:
            record.append((snapshot.revision, snapshot.identity_version))

        cache.watch(group, stamp)
    return seen


async def _loaded() -> tuple[
    HeldBuild, FeedSource, ResourceCache, dict[ProxyGroup, list[Stamp]], SnapshotBuilder
]:
    """A builder with a HeldBuild hook, loaded with the gateway group watched (and recorded)."""
    held = HeldBuild()
    source = FeedSource(mesh(service("web"), gateway("edge", 8080)))
    cache = ResourceCache()
    seen = _recorded(cache, EDGE)
    builder = SnapshotBuilder(source, cache, hook=held)
    await builder.load()
    return held, source, cache, seen, builder


async def test_changes_committed_during_a_build_fold_into_the_next() -> None:
    held, source, _, seen, builder = await _loaded()
    following = asyncio.create_task(builder.run())
    try:
        held.armed = True
        source.commit("a")
        assert await asyncio.to_thread(held.holding.wait, 5)
        source.commit("b")
        source.commit("c")
        assert held.holding.is_set()
        held.released.set()
        async with asyncio.timeout(5):
            while builder.mesh.revision < 4:
                await asyncio.sleep(0.01)
    finally:
        following.cancel()
    assert [revision for revision, _ in seen[EDGE]] == [1, 2, 4]


async def test_a_group_and_identities_arriving_during_a_build_are_not_lost() -> None:
    held, source, cache, seen, builder = await _loaded()

    held.armed = True
    source.commit("a")
    build = asyncio.create_task(builder.catch_up())
    assert await asyncio.to_thread(held.holding.wait, 5)
    builder.set_identities(IdentityState("meshplane.local", version=1))
    seen.update(_recorded(cache, WEB))
    assert builder.ensure(WEB).revision == 1  # served at once, from the last finished build
    assert held.holding.is_set()
    held.released.set()
    await asyncio.wait_for(build, 5)

    assert seen[EDGE] == [(1, 0), (1, 1), (2, 1)]  # never (2, 0): older secrets than it held
    assert seen[WEB] == [(1, 1), (2, 1)]
