"""Snapshots keep the mappings that did not change, and streams use that to skip their walks.

A mesh of 10,000 routes made every stream walk every cluster on every step (which clusters are
warm, which were dropped); these pin down the facts the shortcut rests on.
"""

from __future__ import annotations

from meshplane.xds.make_before_break import desired_view
from meshplane.xds.resources import Snapshot
from meshplane.xds.sotw import SotwState
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.unit.xds.fixtures import cla, cluster, listener, mesh_snapshot, route_config
from tests.unit.xds.test_sotw import FakeEnvoy, connected


def test_a_snapshot_built_like_another_keeps_the_mappings_whose_content_is_equal() -> None:
    before = mesh_snapshot(1, routes_to="a")
    after = Snapshot.build(
        2,
        [
            *before.of(CLUSTER).values(),
            *before.of(ENDPOINT).values(),
            listener("gw", "rc"),
            route_config("rc", "b"),
        ],
        like=before,
    )
    assert after.of(CLUSTER) is before.of(CLUSTER)
    assert after.of(ENDPOINT) is before.of(ENDPOINT)
    assert after.of(LISTENER) is before.of(LISTENER)
    assert after.of(ROUTE) is not before.of(ROUTE)
    assert after.needs == {"b"}
    assert after.cold == frozenset()


def test_cold_names_the_needed_clusters_without_their_load_assignments() -> None:
    snapshot = Snapshot.build(
        1,
        [
            cluster("a"),
            cluster("b"),
            cla("a"),
            listener("gw", "rc"),
            route_config("rc", "a", "b", "c"),
        ],
    )
    assert snapshot.needs == {"a", "b", "c"}
    assert snapshot.cold == {"b", "c"}  # b has no load assignment, c no cluster
    updated = snapshot.replacing(ENDPOINT, {"b": cla("b")}, 2, None)
    assert updated.cold == {"c"}
    same_names = updated.replacing(ENDPOINT, {"b": cla("b", port=9000)}, 3, None)
    assert same_names.cold is updated.cold


def test_a_proxy_holding_the_snapshots_own_mappings_gets_the_same_view_as_a_copy_would() -> None:
    state, _ = connected()
    assert state.snapshot is not None
    held = state.types[CLUSTER].acked
    assert held is state.snapshot.of(CLUSTER)  # what was sent is held, not copied
    shared = state.view()
    acked = {t: dict(r.acked) for t, r in state.types.items()}
    assert desired_view(state.snapshot, acked, acked) == shared


def test_a_route_to_a_cluster_the_proxy_lacks_waits_also_when_the_rest_is_shared() -> None:
    state, envoy = connected()
    assert state.snapshot is not None
    grown = Snapshot.build(
        2,
        [
            *state.snapshot.of(CLUSTER).values(),
            cluster("c"),
            *state.snapshot.of(ENDPOINT).values(),
            cla("c"),
            listener("gw", "rc"),
            route_config("rc", "c"),
        ],
        like=state.snapshot,
    )
    state.snapshot = grown
    first = envoy.pump()
    assert [r.type_url for r in first] == [CLUSTER]
    envoy.request(ENDPOINT, ["a", "b", "c"])
    assert [r.type_url for r in envoy.pump()] == [ENDPOINT, ROUTE]
    assert envoy.route_targets() == ["c"]


def test_a_held_snapshot_mapping_is_never_changed_by_the_stream() -> None:
    state = SotwState()
    state.snapshot = mesh_snapshot(1)
    envoy = FakeEnvoy(state)
    envoy.connect()
    clusters = dict(state.snapshot.of(CLUSTER))
    envoy.request(ENDPOINT, ["a"])  # a narrower subscription
    envoy.pump()
    assert dict(state.snapshot.of(CLUSTER)) == clusters
    assert set(state.snapshot.of(ENDPOINT)) == {"a", "b"}
