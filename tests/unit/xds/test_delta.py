"""The delta stream state machine, driven request by request like Envoy drives it."""

from __future__ import annotations

from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DeltaDiscoveryResponse

from meshplane.xds.delta import DeltaState
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.unit.xds.fixtures import cluster, delta_response, mesh_snapshot


class FakeDeltaEnvoy:
    def __init__(self, state: DeltaState) -> None:
        self.state = state
        self.held: dict[str, dict[str, str]] = {}  # type -> name -> version

    def subscribe(self, type_url: str, names: list[str] | None = None, nonce: str = "") -> None:
        self.state.on_request(
            DeltaDiscoveryRequest(
                type_url=type_url, resource_names_subscribe=names or [], response_nonce=nonce
            )
        )

    def pump(self, nack: dict[str, str] | None = None) -> list[DeltaDiscoveryResponse]:
        out: list[DeltaDiscoveryResponse] = []
        for _ in range(20):
            responses = [delta_response(r) for r in self.state.responses()]
            if not responses:
                break
            for response in responses:
                error = (nack or {}).get(response.type_url)
                request = DeltaDiscoveryRequest(
                    type_url=response.type_url, response_nonce=response.nonce
                )
                if error:
                    request.error_detail.message = error
                else:
                    held = self.held.setdefault(response.type_url, {})
                    for name in response.removed_resources:
                        held.pop(name, None)
                    for resource in response.resources:
                        held[resource.name] = resource.version
                self.state.on_request(request)
            out += responses
        return out

    def connect(self) -> None:
        self.subscribe(CLUSTER)
        self.pump()
        self.subscribe(ENDPOINT, sorted(self.held[CLUSTER]))
        self.pump()
        self.subscribe(LISTENER)
        self.pump()
        self.subscribe(ROUTE, ["rc"])
        self.pump()


def connected() -> tuple[DeltaState, FakeDeltaEnvoy]:
    state = DeltaState()
    state.snapshot = mesh_snapshot(1)
    envoy = FakeDeltaEnvoy(state)
    envoy.connect()
    return state, envoy


def test_initial_sequence() -> None:
    state, envoy = connected()
    assert sorted(envoy.held[CLUSTER]) == ["a", "b"]
    assert sorted(envoy.held[ENDPOINT]) == ["a", "b"]
    assert list(envoy.held[ROUTE]) == ["rc"]
    assert state.responses() == []


def test_only_changes_are_sent_and_removals_named() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="b", clusters=("b", "c"))
    responses = envoy.pump()
    clusters = [r for r in responses if r.type_url == CLUSTER]
    assert [r.name for r in clusters[0].resources] == ["c"]  # b unchanged: not resent
    assert list(clusters[0].removed_resources) == []  # a stays while the route uses it
    assert [r.type_url for r in responses].index(ROUTE) > 0
    assert list(clusters[-1].removed_resources) == ["a"]  # gone once the route moved off it
    assert sorted(envoy.held[CLUSTER]) == ["b", "c"]


def test_reconnect_with_initial_versions_sends_nothing() -> None:
    _, old = connected()
    state = DeltaState()
    state.snapshot = mesh_snapshot(9)
    for type_url, names in ((CLUSTER, []), (ENDPOINT, ["a", "b"]), (LISTENER, []), (ROUTE, ["rc"])):
        state.on_request(
            DeltaDiscoveryRequest(
                type_url=type_url,
                resource_names_subscribe=names,
                initial_resource_versions=old.held[type_url],
            )
        )
        assert state.responses() == []


def test_reconnect_sends_only_what_differs() -> None:
    _, old = connected()
    state = DeltaState()
    state.snapshot = mesh_snapshot(9, clusters=("a", "b", "c"))
    state.on_request(
        DeltaDiscoveryRequest(type_url=CLUSTER, initial_resource_versions=old.held[CLUSTER])
    )
    (response,) = [delta_response(r) for r in state.responses()]
    assert [r.name for r in response.resources] == ["c"]
    assert list(response.removed_resources) == []


def test_nack_is_recorded_and_not_resent() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="b")
    rejected = envoy.pump(nack={ROUTE: "no good"})
    assert [r.type_url for r in rejected] == [ROUTE]
    nack = state.types[ROUTE].last_nack
    assert nack is not None
    assert nack.error == "no good"
    assert state.responses() == []


def test_subscription_change_applies_with_stale_nonce() -> None:
    state, envoy = connected()
    envoy.subscribe(ENDPOINT, [], nonce="stale")
    state.on_request(
        DeltaDiscoveryRequest(
            type_url=ENDPOINT, resource_names_unsubscribe=["b"], response_nonce="1"
        )
    )
    assert state.types[ENDPOINT].names == {"a"}
    assert "b" not in state.types[ENDPOINT].acked
    state.snapshot = mesh_snapshot(2, clusters=("a", "b"))
    assert state.responses() == []  # b changed nowhere that matters; nothing for a


def test_new_subscription_is_answered() -> None:
    state, envoy = connected()
    state.on_request(DeltaDiscoveryRequest(type_url=ENDPOINT, resource_names_unsubscribe=["b"]))
    envoy.held[ENDPOINT].pop("b")
    envoy.subscribe(ENDPOINT, ["b"])
    (response,) = envoy.pump()
    assert [r.name for r in response.resources] == ["b"]


def test_an_updated_eds_cluster_gets_its_unchanged_load_assignment_again() -> None:
    state, envoy = connected()
    assert state.snapshot is not None
    clusters = {"a": cluster("a", timeout_s=2)}  # a's settings change; its endpoints do not
    state.snapshot = state.snapshot.replacing(CLUSTER, clusters, 2, None)
    responses = envoy.pump()
    assert [r.type_url for r in responses] == [CLUSTER, ENDPOINT]
    assert [r.name for r in responses[1].resources] == ["a"]  # only the updated cluster's
    assert envoy.pump() == []


def test_a_wildcard_proxy_holds_the_snapshots_mapping_and_unsubscribing_leaves_it_whole() -> None:
    state, _ = connected()
    assert state.snapshot is not None
    snapshot = state.snapshot
    assert state.types[CLUSTER].acked is snapshot.of(CLUSTER)  # held, not copied
    assert state.responses() == []  # the same mapping: nothing to compare, nothing due
    state.on_request(DeltaDiscoveryRequest(type_url=ENDPOINT, resource_names_unsubscribe=["b"]))
    assert "b" not in state.types[ENDPOINT].acked
    assert set(snapshot.of(ENDPOINT)) == {"a", "b"}  # the snapshot is not changed in place
