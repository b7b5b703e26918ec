"""The builder translates load assignments once per zone; the zone's groups share them."""

from __future__ import annotations

import asyncio

import pytest

from meshplane.model import Change, Mesh, ProxyGroup, Role
from meshplane.xds import ResourceCache, SnapshotBuilder
from meshplane.xds import build_state as build_state_module
from meshplane.xds.translate import zone_resources
from meshplane.xds.type_urls import CLUSTER, ENDPOINT
from tests.support.meshes import endpoint, gateway, mesh, service, sidecar_group


class FixedSource:
    """A MeshSource that never changes."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh

    async def load_mesh(self) -> Mesh:
        return self.mesh

    async def changes_since(self, revision: int) -> list[Change] | None:
        return []

    async def wait_beyond(self, revision: int) -> int:
        await asyncio.Event().wait()
        return revision


ZONED = mesh(
    service("web"),
    endpoint("web-a", "web", "10.0.0.1", 80, zone="a"),
    endpoint("web-b", "web", "10.0.0.2", 80, zone="b"),
    gateway("edge", 8080),
)


def groups(zone: str | None) -> list[ProxyGroup]:
    sidecar = sidecar_group("web")
    return [
        ProxyGroup(Role.GATEWAY, gateway="edge", zone=zone),
        ProxyGroup(
            Role.SIDECAR,
            service=sidecar.service,
            inbound_port=sidecar.inbound_port,
            app_port=sidecar.app_port,
            outbound_port=sidecar.outbound_port,
            zone=zone,
        ),
    ]


async def test_one_translation_per_zone_shared_by_its_groups(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def counting(mesh: Mesh, zone: str):
        calls.append(zone)
        return zone_resources(mesh, zone)

    monkeypatch.setattr(build_state_module, "zone_resources", counting)
    builder = SnapshotBuilder(FixedSource(ZONED), ResourceCache())
    await builder.load()
    snapshots = {zone: [builder.ensure(g) for g in groups(zone)] for zone in ("a", "b", None)}
    assert sorted(calls) == ["a", "b"]

    def web(zone: str | None, index: int):
        return snapshots[zone][index].of(ENDPOINT)["web"]

    assert web("a", 0) is web("a", 1)  # the same serialized object for both groups of zone a
    assert web("a", 0).version != web("b", 0).version != web(None, 0).version
    clusters = snapshots["a"][0].of(CLUSTER)["web"]
    assert clusters is snapshots["b"][0].of(CLUSTER)["web"] is snapshots[None][0].of(CLUSTER)["web"]
    priorities = {
        zone: [(g.locality.zone, g.priority) for g in web(zone, 0).message.endpoints]
        for zone in snapshots
    }
    assert priorities == {
        "a": [("a", 0), ("b", 1)],
        "b": [("b", 0), ("a", 1)],
        None: [("a", 0), ("b", 0)],
    }
