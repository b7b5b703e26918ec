"""CDS: one EDS cluster per service, one per used label subset, and the sidecar's app cluster."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshplane.xds.type_urls import CLUSTER
from tests.support.meshes import mesh, route, service, sidecar_group
from tests.unit.translate.meshes import EXAMPLES, grouped, shared

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
Cluster = cluster_pb2.Cluster


def clusters(example: str) -> dict[str, cluster_pb2.Cluster]:
    return {c.name: c for c in shared(EXAMPLES[example].mesh)[CLUSTER]}


def http2(cluster) -> bool:
    if HTTP_OPTIONS not in cluster.typed_extension_protocol_options:
        return False
    options = http_protocol_options_pb2.HttpProtocolOptions()
    assert cluster.typed_extension_protocol_options[HTTP_OPTIONS].Unpack(options)
    return bool(options.explicit_http_config.HasField("http2_protocol_options"))


def test_service_cluster_is_fed_by_eds_over_ads():
    (cluster,) = clusters("two-endpoints").values()
    assert cluster.name == "reviews"
    assert cluster.type == Cluster.DiscoveryType.EDS
    assert cluster.eds_cluster_config.service_name == "reviews"
    source = cluster.eds_cluster_config.eds_config
    assert source.WhichOneof("config_source_specifier") == "ads"
    assert source.resource_api_version == config_source_pb2.ApiVersion.V3
    assert cluster.connect_timeout.ToMilliseconds() == 1000
    assert cluster.lb_policy == Cluster.LbPolicy.ROUND_ROBIN
    assert not cluster.typed_extension_protocol_options  # HTTP/1.1 is Envoy's default


def test_protocol_lb_policy_and_timeout_come_from_the_spec():
    found = clusters("protocols")
    assert list(found) == ["h2", "pg", "plain", "rpc"]
    assert http2(found["h2"])
    assert http2(found["rpc"])
    assert not http2(found["plain"])
    assert not http2(found["pg"])
    assert found["h2"].lb_policy == Cluster.LbPolicy.LEAST_REQUEST
    assert found["rpc"].lb_policy == Cluster.LbPolicy.RANDOM
    assert found["h2"].connect_timeout.ToMilliseconds() == 250
    assert found["pg"].connect_timeout.ToSeconds() == 5


def test_subset_clusters_exist_only_for_labels_a_destination_uses():
    found = clusters("subsets")
    # zone=a,version=v2 is written version-last in the route; names sort labels by key.
    assert list(found) == ["reviews", "reviews|version=v2", "reviews|version=v2,zone=a"]
    subset = found["reviews|version=v2,zone=a"]
    assert subset.eds_cluster_config.service_name == "reviews|version=v2,zone=a"
    expected = Cluster()
    expected.CopyFrom(found["reviews"])
    expected.name = expected.eds_cluster_config.service_name = subset.name
    assert subset == expected  # the same settings as the whole service


def test_subset_clusters_copy_their_service_protocol():
    example = mesh(
        service("rpc", protocol="grpc"),
        route("r", hosts=["rpc"], destinations=[{"service": "rpc", "labels": {"v": "2"}}]),
    )
    found = {c.name: c for c in shared(example)[CLUSTER]}
    assert http2(found["rpc|v=2"])


def test_zero_weight_destination_still_has_a_warm_subset_cluster():
    assert list(clusters("zero-weight")) == ["a", "a|v=1", "b", "c"]


def test_inbound_cluster_points_at_the_local_app():
    groups = EXAMPLES["protocols"].groups  # rpc (grpc), pg (tcp), plain (http)
    example = EXAMPLES["protocols"].mesh
    for group, wants_http2 in zip(groups, [True, False, False], strict=True):
        (cluster,) = grouped(example, group)[CLUSTER]
        assert cluster.name == "inbound|8080"
        assert cluster.type == Cluster.DiscoveryType.STATIC
        (locality,) = cluster.load_assignment.endpoints
        (lb_endpoint,) = locality.lb_endpoints
        address = lb_endpoint.endpoint.address.socket_address
        assert (address.address, address.port_value) == ("127.0.0.1", 8080)
        assert http2(cluster) is wants_http2


def test_inbound_cluster_of_an_undefined_service_speaks_http1():
    (cluster,) = grouped(mesh(), sidecar_group("ghost", app=9090))[CLUSTER]
    assert cluster.name == "inbound|9090"
    assert not http2(cluster)
    assert cluster.connect_timeout.ToSeconds() == 1
