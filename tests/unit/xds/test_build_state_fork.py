"""A fork shares what it has not written to (copy on write), so building on it in a worker
thread leaves the state it came from as it was: the same snapshot, made of the same objects."""

from __future__ import annotations

from meshplane.model import Change, IdentityState, ServiceSpec
from meshplane.xds.build_state import BuildState
from meshplane.xds.resources import Snapshot
from meshplane.xds.type_urls import CLUSTER
from tests.support.meshes import gateway, gateway_group, mesh, service, sidecar_group

EDGE = gateway_group("edge")
WEB = sidecar_group("web")
IDS = IdentityState("meshplane.local")


def _members(snapshot: Snapshot) -> dict[tuple[str, str], int]:
    """Each resource's identity, by type and name."""
    return {
        (type_url, name): id(resource)
        for type_url, resources in snapshot.resources.items()
        for name, resource in resources.items()
    }


def test_building_on_a_fork_leaves_the_original_as_it_was() -> None:
    state = BuildState(mesh(service("web"), gateway("edge", 8080)))
    state.rebuild({EDGE: None, WEB: None}, IDS, None)
    before = state.snapshot(EDGE, IDS, None)

    fork = state.fork()
    added = Change(state.mesh.revision + 1, "services", "api", ServiceSpec())
    fork.follow(
        fork.mesh.with_changes([added]), [added], {EDGE: before}, IDS, None, everything=False
    )
    fork.snapshots({WEB: None}, IDS, None)  # packs into what the fork interns
    after = state.snapshot(EDGE, IDS, None)  # the original packs too: its own copy, not the fork's

    assert after.versions == before.versions
    assert _members(after) == _members(before)
    assert "api" in fork.snapshot(EDGE, IDS, None).of(CLUSTER)
    assert "api" not in after.of(CLUSTER)
