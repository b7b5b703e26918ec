"""referenced_clusters: what must be warm before a route configuration or listener is pushed."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.xds.references import referenced_clusters
from meshplane.xds.type_urls import CLUSTER, LISTENER, ROUTE
from tests.unit.translate.meshes import EXAMPLES, grouped, shared


def group(example: str, index: int = 0):
    case = EXAMPLES[example]
    return grouped(case.mesh, case.groups[index])


def test_route_configuration_names_single_and_weighted_clusters():
    (config,) = group("zero-weight")[ROUTE]
    assert referenced_clusters(config) == {"b", "c"}  # a (weight 0) is not used
    (config,) = group("weighted")[ROUTE]
    assert referenced_clusters(config) == {"reviews|version=v1", "reviews|version=v2"}


def test_outbound_routes_name_every_http_service():
    (config,) = group("sidecar")[ROUTE]
    assert referenced_clusters(config) == {"ratings", "reviews"}


def test_direct_responses_name_nothing():
    config = route_pb2.RouteConfiguration(
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                routes=[route_components_pb2.Route(direct_response={"status": 503})]
            )
        ]
    )
    assert referenced_clusters(config) == frozenset()


def test_mirror_policies_count():
    action = route_components_pb2.RouteAction(cluster="main")
    action.request_mirror_policies.add(cluster="shadow")
    config = route_pb2.RouteConfiguration(
        virtual_hosts=[route_components_pb2.VirtualHost(routes=[{"route": action}])]
    )
    assert referenced_clusters(config) == {"main", "shadow"}


def test_listeners_name_inline_route_and_tcp_proxy_clusters_but_not_rds():
    http = {listener.name: listener for listener in group("sidecar")[LISTENER]}
    assert referenced_clusters(http["inbound"]) == {"inbound|8080"}
    assert referenced_clusters(http["outbound"]) == frozenset()  # routes arrive by RDS
    tcp = {listener.name: listener for listener in group("protocols", 1)[LISTENER]}
    assert referenced_clusters(tcp["inbound"]) == {"inbound|8080"}
    (gateway,) = group("weighted")[LISTENER]
    assert referenced_clusters(gateway) == frozenset()


def test_default_filter_chain_counts():
    (inbound,) = [x for x in group("sidecar")[LISTENER] if x.name == "inbound"]
    moved = listener_pb2.Listener(name="moved")
    moved.default_filter_chain.CopyFrom(inbound.filter_chains[0])
    assert referenced_clusters(moved) == {"inbound|8080"}


def test_other_messages_name_nothing():
    (cluster,) = group("sidecar")[CLUSTER]
    assert referenced_clusters(cluster) == frozenset()
    assert referenced_clusters(cluster_pb2.Cluster(name="x")) == frozenset()
    resources = shared(EXAMPLES["sidecar"].mesh)
    assert all(referenced_clusters(m) == frozenset() for ms in resources.values() for m in ms)
