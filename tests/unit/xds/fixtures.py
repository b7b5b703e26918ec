"""Small hand-made snapshots for driving the stream state machines without a translator."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshplane.xds.resources import CachedResource, Snapshot, pack
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE


def cluster(name: str, timeout_s: int = 1) -> CachedResource:
    msg = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    msg.connect_timeout.seconds = timeout_s
    msg.eds_cluster_config.service_name = name
    msg.eds_cluster_config.eds_config.ads.SetInParent()
    msg.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3
    return pack(CLUSTER, msg)


def cla(name: str, port: int = 8000) -> CachedResource:
    msg = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    lb = msg.endpoints.add().lb_endpoints.add()
    lb.endpoint.CopyFrom(endpoint_components_pb2.Endpoint())
    lb.endpoint.address.socket_address.address = "127.0.0.1"
    lb.endpoint.address.socket_address.port_value = port
    return pack(ENDPOINT, msg)


def listener(name: str, route_config: str, port: int = 10000) -> CachedResource:
    msg = listener_pb2.Listener(name=name)
    msg.address.socket_address.address = "127.0.0.1"
    msg.address.socket_address.port_value = port
    return pack(LISTENER, msg)


def route_config(name: str, *clusters: str) -> CachedResource:
    msg = route_pb2.RouteConfiguration(name=name)
    vhost = msg.virtual_hosts.add(name="all", domains=["*"])
    for i, target in enumerate(clusters):
        route = vhost.routes.add(name=f"r{i}")
        route.match.prefix = f"/{target}"
        route.route.CopyFrom(route_components_pb2.RouteAction(cluster=target))
    return pack(ROUTE, msg)


def snapshot(revision: int, *resources: CachedResource) -> Snapshot:
    return Snapshot.build(revision, resources)


def mesh_snapshot(
    revision: int, routes_to: str = "a", clusters: tuple[str, ...] = ("a", "b")
) -> Snapshot:
    """Clusters with endpoints, one listener, one route config sending "/" to `routes_to`."""
    return snapshot(
        revision,
        *(cluster(c) for c in clusters),
        *(cla(c) for c in clusters),
        listener("gw", "rc"),
        route_config("rc", routes_to),
    )


def sotw_response(data: bytes) -> discovery_pb2.DiscoveryResponse:
    return discovery_pb2.DiscoveryResponse.FromString(data)


def delta_response(data: bytes) -> discovery_pb2.DeltaDiscoveryResponse:
    return discovery_pb2.DeltaDiscoveryResponse.FromString(data)
