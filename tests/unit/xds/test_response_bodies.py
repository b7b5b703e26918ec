"""Shared response bodies: streams sent a whole set share its joined frames, bytes unchanged."""

from __future__ import annotations

from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest

from meshplane.xds import wire
from meshplane.xds.delta import DeltaState
from meshplane.xds.resources import CachedResource
from meshplane.xds.response_bodies import ResponseBodies
from meshplane.xds.sotw import SotwState
from meshplane.xds.type_urls import CLUSTER
from tests.unit.xds.fixtures import cluster, delta_response, snapshot, sotw_response


def _frame(resource: CachedResource) -> bytes:
    return resource.sotw_frame


def _sotw_clusters(*names: str, bodies: ResponseBodies | None = None) -> tuple[SotwState, bytes]:
    state = SotwState(bodies=bodies)
    state.snapshot = snapshot(1, *(cluster(n) for n in names))
    state.on_request(DiscoveryRequest(type_url=CLUSTER))
    responses = state.responses()
    assert len(responses) == 1
    return state, responses[0]


def test_streams_sent_the_same_set_share_one_body_and_get_the_plain_bytes() -> None:
    shared_bodies = ResponseBodies()  # the ADS server's, handed to each stream
    before = shared_bodies.size[0]
    _, one = _sotw_clusters("body-a", "body-b", "body-c", bodies=shared_bodies)
    _, two = _sotw_clusters("body-c", "body-b", "body-a", bodies=shared_bodies)  # another group
    assert shared_bodies.size[0] == before + 1
    assert one == two  # same nonce ("1") and version: the very same bytes
    parsed = sotw_response(one)
    assert sorted(r.SerializeToString() for r in parsed.resources) == sorted(
        c.any_bytes for c in (cluster("body-a"), cluster("body-b"), cluster("body-c"))
    )
    plain = wire.sotw_response(
        parsed.version_info, CLUSTER, "1", [r.SerializeToString() for r in parsed.resources]
    )
    assert one == plain


def test_a_different_set_gets_its_own_body() -> None:
    _, one = _sotw_clusters("other-a", "other-b")
    _, two = _sotw_clusters("other-a", "other-b", "other-c")
    assert len(sotw_response(one).resources) == 2
    assert len(sotw_response(two).resources) == 3


def test_delta_first_answer_with_the_whole_set_parses_like_the_plain_one() -> None:
    state = DeltaState(bodies=ResponseBodies())
    state.snapshot = snapshot(3, cluster("delta-a"), cluster("delta-b"))
    state.on_request(DeltaDiscoveryRequest(type_url=CLUSTER))
    (data,) = state.responses()
    response = delta_response(data)
    assert response.system_version_info == "3"
    assert sorted(r.name for r in response.resources) == ["delta-a", "delta-b"]
    assert {r.version for r in response.resources} == {
        cluster("delta-a").version,
        cluster("delta-b").version,
    }
    assert state.types[CLUSTER].sent_version == state.snapshot.versions[CLUSTER]


def test_bodies_are_bounded_in_bytes_least_recently_used_first() -> None:
    bodies = ResponseBodies(max_bytes=3 * len(cluster("lru-a").sotw_frame))
    sets = {n: {n: cluster(n)} for n in ("lru-a", "lru-b", "lru-c", "lru-d")}
    for name in ("lru-a", "lru-b", "lru-c"):
        bodies.body(CLUSTER, name, sets[name], _frame, "sotw")
    bodies.body(CLUSTER, "lru-a", sets["lru-a"], _frame, "sotw")  # used again: kept
    bodies.body(CLUSTER, "lru-d", sets["lru-d"], _frame, "sotw")  # evicts lru-b
    assert bodies.size == (3, 3 * len(cluster("lru-a").sotw_frame))
    assert (
        bodies.body(CLUSTER, "lru-b", sets["lru-b"], _frame, "sotw")
        == sets["lru-b"]["lru-b"].sotw_frame
    )


def test_a_state_machine_given_no_bodies_shares_nothing_and_sends_the_same_bytes() -> None:
    bodies = ResponseBodies()
    _, shared = _sotw_clusters("alone-a", "alone-b", bodies=bodies)
    _, alone = _sotw_clusters("alone-a", "alone-b")
    assert alone == shared
    assert bodies.size[0] == 1  # only the stream given the bodies stored one
