"""The state-of-the-world stream state machine, driven request by request like Envoy drives it."""

from __future__ import annotations

from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse

from meshplane.xds.sotw import SotwState
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.unit.xds.fixtures import cluster, mesh_snapshot, sotw_response


class FakeEnvoy:
    """Speaks SotW ADS to a SotwState the way Envoy does: request, receive, ACK (or NACK)."""

    def __init__(self, state: SotwState) -> None:
        self.state = state
        self.held: dict[str, DiscoveryResponse] = {}  # type -> last ACKed response
        self.names: dict[str, list[str]] = {}

    def request(self, type_url: str, names: list[str] | None = None, version: str = "") -> None:
        self.names[type_url] = names or []
        self.state.on_request(
            DiscoveryRequest(type_url=type_url, resource_names=names or [], version_info=version)
        )

    def pump(self, nack: dict[str, str] | None = None) -> list[DiscoveryResponse]:
        """Answer every due response (ACK, or NACK with the given error) until none is due."""
        out: list[DiscoveryResponse] = []
        for _ in range(20):
            responses = [sotw_response(r) for r in self.state.responses()]
            if not responses:
                break
            for response in responses:
                self.answer(response, (nack or {}).get(response.type_url))
            out += responses
        return out

    def answer(self, response: DiscoveryResponse, error: str | None = None) -> None:
        request = DiscoveryRequest(
            type_url=response.type_url,
            response_nonce=response.nonce,
            resource_names=self.names.get(response.type_url, []),
        )
        if error is None:
            request.version_info = response.version_info
            self.held[response.type_url] = response
        else:
            request.version_info = (
                self.held[response.type_url].version_info if response.type_url in self.held else ""
            )
            request.error_detail.message = error
        self.state.on_request(request)

    def connect(self) -> None:
        """Envoy's initial ADS sequence: CDS, then EDS for its clusters, LDS, then RDS."""
        self.request(CLUSTER)
        self.pump()
        self.request(ENDPOINT, self.resource_names(CLUSTER))
        self.pump()
        self.request(LISTENER)
        self.pump()
        self.request(ROUTE, ["rc"])
        self.pump()

    def resource_names(self, type_url: str) -> list[str]:
        from envoy.config.cluster.v3 import cluster_pb2

        response = self.held[type_url]
        return sorted(cluster_pb2.Cluster.FromString(a.value).name for a in response.resources)

    def route_targets(self) -> list[str]:
        from envoy.config.route.v3 import route_pb2

        config = route_pb2.RouteConfiguration.FromString(self.held[ROUTE].resources[0].value)
        return [r.route.cluster for r in config.virtual_hosts[0].routes]


def connected(revision: int = 1) -> tuple[SotwState, FakeEnvoy]:
    state = SotwState()
    state.snapshot = mesh_snapshot(revision)
    envoy = FakeEnvoy(state)
    envoy.connect()
    return state, envoy


def test_initial_sequence_sends_each_type_once_and_then_nothing() -> None:
    state, envoy = connected()
    assert set(envoy.held) == {CLUSTER, ENDPOINT, LISTENER, ROUTE}
    assert envoy.resource_names(CLUSTER) == ["a", "b"]
    assert len(envoy.held[ENDPOINT].resources) == 2
    assert state.responses() == []


def test_unchanged_snapshot_sends_nothing() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2)  # new revision, same content
    assert envoy.pump() == []


def test_route_to_new_cluster_waits_until_the_cluster_is_warm() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="c", clusters=("a", "b", "c"))
    first = envoy.pump()
    assert [r.type_url for r in first] == [CLUSTER]  # the route must not point at a cold cluster
    assert envoy.resource_names(CLUSTER) == ["a", "b", "c"]
    assert state.responses() == []  # still waiting: Envoy has not asked for c's endpoints
    envoy.request(ENDPOINT, ["a", "b", "c"])
    after_eds = envoy.pump()
    assert [r.type_url for r in after_eds] == [ENDPOINT, ROUTE]
    assert envoy.route_targets() == ["c"]


def test_cluster_kept_while_route_still_uses_it() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="b", clusters=("b",))
    responses = [sotw_response(r) for r in state.responses()]
    assert [r.type_url for r in responses] == [ROUTE]  # a kept: CDS unchanged, nothing to send
    envoy.answer(responses[0])
    # Only now may a go; EDS follows, as Envoy still watches a's endpoints.
    final = [sotw_response(r) for r in state.responses()]
    assert [r.type_url for r in final] == [CLUSTER, ENDPOINT]
    for response in final:
        envoy.answer(response)
    assert envoy.resource_names(CLUSTER) == ["b"]


def test_nack_is_recorded_and_the_rejected_version_not_resent() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="b")
    rejected = envoy.pump(nack={ROUTE: "bad route"})
    assert [r.type_url for r in rejected] == [ROUTE]
    record = state.types[ROUTE]
    assert record.last_nack is not None
    assert record.last_nack.error == "bad route"
    assert record.acked_version != record.sent_version
    assert envoy.route_targets() == ["a"]  # Envoy keeps its last good config
    assert state.responses() == []  # not resent in a loop
    state.snapshot = mesh_snapshot(3, routes_to="b")  # same content, new revision: still not resent
    assert state.responses() == []
    state.snapshot = mesh_snapshot(4, routes_to="a", clusters=("a", "b"))
    # back to the acked content: the proxy is told (its sent version was the rejected one)
    assert [r.type_url for r in envoy.pump()] == [ROUTE]


def test_stale_nonce_is_ignored() -> None:
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, routes_to="b")
    response = sotw_response(state.responses()[0])
    state.on_request(DiscoveryRequest(type_url=ROUTE, response_nonce="999", resource_names=["rc"]))
    assert state.types[ROUTE].pending  # the stale request neither ACKed nor NACKed it
    envoy.answer(response)
    assert not state.types[ROUTE].pending


def test_reconnect_with_current_version_gets_no_response() -> None:
    _, old = connected()
    state = SotwState()
    state.snapshot = mesh_snapshot(7)  # a restarted control plane: same content
    envoy = FakeEnvoy(state)
    envoy.held = old.held
    for type_url, names in (
        (CLUSTER, None),
        (ENDPOINT, ["a", "b"]),
        (LISTENER, None),
        (ROUTE, ["rc"]),
    ):
        envoy.request(type_url, names, version=old.held[type_url].version_info)
        assert state.responses() == []
    assert state.types[ROUTE].acked_version == old.held[ROUTE].version_info


def test_new_subscription_is_answered_even_when_unchanged() -> None:
    state, envoy = connected()
    held = envoy.held[ROUTE]
    envoy.names[ROUTE] = []
    state.on_request(DiscoveryRequest(type_url=ROUTE, response_nonce=held.nonce))  # unsubscribe
    assert [len(r.resources) for r in envoy.pump()] == [0]
    envoy.names[ROUTE] = ["rc"]
    state.on_request(
        DiscoveryRequest(
            type_url=ROUTE, response_nonce=envoy.held[ROUTE].nonce, resource_names=["rc"]
        )
    )
    assert [r.version_info for r in envoy.pump()] == [held.version_info]


def test_subscription_change_on_ack_is_honoured() -> None:
    state, envoy = connected()
    state.on_request(
        DiscoveryRequest(
            type_url=ENDPOINT,
            response_nonce=envoy.held[ENDPOINT].nonce,
            resource_names=["a"],
            version_info=envoy.held[ENDPOINT].version_info,
        )
    )
    envoy.names[ENDPOINT] = ["a"]
    responses = envoy.pump()
    assert [r.type_url for r in responses] == [ENDPOINT]
    assert len(responses[0].resources) == 1


def test_responses_share_the_resource_bytes() -> None:
    state, _ = connected()
    snapshot = state.snapshot
    assert snapshot is not None
    one = SotwState()
    two = SotwState()
    for s in (one, two):
        s.snapshot = snapshot
        s.on_request(DiscoveryRequest(type_url=CLUSTER))
    a, b = one.responses()[0], two.responses()[0]
    assert a == b  # identical bytes from the same shared resources


def test_route_asked_for_before_its_clusters_are_warm_is_answered_once_they_are() -> None:
    state = SotwState()
    state.snapshot = mesh_snapshot(1)
    envoy = FakeEnvoy(state)
    envoy.request(CLUSTER)
    envoy.request(LISTENER)
    envoy.request(ROUTE, ["rc"])  # ahead of Envoy's usual order: the clusters are still cold
    early = envoy.pump()
    assert ROUTE not in {r.type_url for r in early}  # no empty answer: Envoy would go on without
    envoy.request(ENDPOINT, envoy.resource_names(CLUSTER))
    later = envoy.pump()
    assert [r.type_url for r in later] == [ENDPOINT, ROUTE]
    assert envoy.route_targets() == ["a"]


def test_route_name_the_mesh_does_not_have_is_answered_empty() -> None:
    _, envoy = connected()
    envoy.request(ROUTE, ["rc", "nowhere"])
    responses = envoy.pump()
    assert [r.type_url for r in responses] == [ROUTE]
    assert len(responses[0].resources) == 1


def test_endpoints_subscribed_by_name_follow_the_subscription_not_the_snapshot() -> None:
    state, envoy = connected()  # subscribed to endpoints a and b: every one there is
    state.snapshot = mesh_snapshot(2, clusters=("a", "b", "c"))
    first = envoy.pump()
    assert [r.type_url for r in first] == [CLUSTER]  # c's endpoints: not asked for yet
    envoy.request(ENDPOINT, ["a", "b", "c"])
    (eds,) = envoy.pump()
    assert eds.type_url == ENDPOINT
    assert len(eds.resources) == 3
    envoy.request(ENDPOINT, ["a"])  # c's cluster went elsewhere: fewer names
    (fewer,) = envoy.pump()
    assert len(fewer.resources) == 1


def test_an_updated_eds_cluster_gets_its_unchanged_load_assignments_again() -> None:
    state, envoy = connected()
    eds_before = envoy.held[ENDPOINT].version_info
    assert state.snapshot is not None
    clusters = {"a": cluster("a", timeout_s=2)}  # a's settings change; its endpoints do not
    state.snapshot = state.snapshot.replacing(CLUSTER, clusters, 2, None)
    responses = envoy.pump()
    assert [r.type_url for r in responses] == [CLUSTER, ENDPOINT]  # Envoy waits for them
    assert responses[1].version_info == eds_before
    assert envoy.pump() == []


def test_an_unchanged_cluster_set_sends_no_load_assignments() -> None:
    state, envoy = connected()
    assert state.snapshot is not None
    state.snapshot = state.snapshot.replacing(CLUSTER, {"a": cluster("a")}, 2, None)
    assert envoy.pump() == []


def test_endpoints_subscribed_by_most_names_are_versioned_by_what_is_sent() -> None:
    """A subscription to most of the snapshot's load assignments (the snapshot's set less a
    few) is versioned by what it carries, as one to a few names is."""
    from meshplane.xds.resources import set_version

    names = [f"s{i}" for i in range(6)]
    state, envoy = connected()
    state.snapshot = mesh_snapshot(2, clusters=tuple(names))
    envoy.pump()
    for asked in (names[:5], names[:2], names):
        envoy.request(ENDPOINT, asked)
        (eds,) = envoy.pump()
        assert state.snapshot is not None
        sent = [state.snapshot.of(ENDPOINT)[n] for n in asked]
        assert eds.version_info == set_version(sent)
        assert len(eds.resources) == len(asked)


def test_the_revision_a_proxy_holds_moves_only_once_all_is_acked() -> None:
    state, envoy = connected()
    state.settle()
    assert state.holds_revision == 1
    state.snapshot = mesh_snapshot(2)  # same content: held at once
    state.settle()
    assert state.holds_revision == 2
    state.snapshot = mesh_snapshot(3, routes_to="b")
    response = sotw_response(state.responses()[0])
    state.settle()
    assert state.holds_revision == 2  # in flight
    envoy.answer(response, "bad route")
    state.settle()
    assert state.holds_revision == 2  # refused: it still holds 2
    state.snapshot = mesh_snapshot(4, routes_to="a", clusters=("a", "b"))
    envoy.pump()
    state.settle()
    assert state.holds_revision == 4
