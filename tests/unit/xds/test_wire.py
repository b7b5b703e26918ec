"""Hand-assembled responses parse back into the real protobuf messages, field for field."""

from __future__ import annotations

from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryResponse, DiscoveryResponse
from google.protobuf import any_pb2

from meshplane.xds import wire
from meshplane.xds.type_urls import CLUSTER
from tests.unit.xds.fixtures import cluster


def test_sotw_response_matches_protobuf() -> None:
    a, b = cluster("a"), cluster("b" * 300)  # a long name forces multi-byte lengths
    data = wire.sotw_response("v1", CLUSTER, "7", [a.any_bytes, b.any_bytes])
    parsed = DiscoveryResponse.FromString(data)
    assert parsed.version_info == "v1"
    assert parsed.type_url == CLUSTER
    assert parsed.nonce == "7"
    assert [r.type_url for r in parsed.resources] == [CLUSTER, CLUSTER]
    expected = any_pb2.Any()
    assert a.message is not None
    expected.Pack(a.message, type_url_prefix="type.googleapis.com/")
    assert parsed.resources[0].value == a.message.SerializeToString(deterministic=True)


def test_delta_response_matches_protobuf() -> None:
    a = cluster("a")
    data = wire.delta_response("3", CLUSTER, "9", [a.delta_bytes], ["gone", "old"])
    parsed = DeltaDiscoveryResponse.FromString(data)
    assert parsed.system_version_info == "3"
    assert parsed.nonce == "9"
    assert list(parsed.removed_resources) == ["gone", "old"]
    (resource,) = parsed.resources
    assert resource.name == "a"
    assert resource.version == a.version
    assert resource.resource.type_url == CLUSTER


def test_empty_response_is_valid() -> None:
    parsed = DiscoveryResponse.FromString(wire.sotw_response("", CLUSTER, "1", []))
    assert parsed.type_url == CLUSTER
    assert list(parsed.resources) == []


def test_framed_responses_equal_the_plain_ones() -> None:
    a, b = cluster("a"), cluster("b" * 300)
    plain = wire.sotw_response("v1", CLUSTER, "7", [a.any_bytes, b.any_bytes])
    assert wire.sotw_framed("v1", CLUSTER, "7", [a.sotw_frame, b.sotw_frame]) == plain
    plain_delta = wire.delta_response("3", CLUSTER, "9", [a.delta_bytes], ["gone"])
    assert wire.delta_framed("3", CLUSTER, "9", [a.delta_frame], ["gone"]) == plain_delta


def test_lengths_at_every_varint_width_match_protobuf() -> None:
    for size in (1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152):
        value = b"x" * size
        packed = any_pb2.Any(type_url=CLUSTER, value=value)
        assert wire.any_bytes(CLUSTER, value) == packed.SerializeToString()
