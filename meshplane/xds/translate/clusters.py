"""CDS clusters: one EDS cluster per service, one per used label subset, and the sidecar's app.

A subset cluster copies its service's settings, so moving traffic onto a subset changes which
endpoints answer, never how Envoy talks to them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshplane.model import Mesh, ServiceSpec, Subject
from meshplane.xds.translate.cluster_policies import apply_service_policies
from meshplane.xds.translate.names import inbound_cluster_name
from meshplane.xds.translate.proto_values import (
    ads_config_source,
    duration,
    packed,
    socket_address,
)
from meshplane.xds.translate.subsets import Subset, subsets_by_service
from meshplane.xds.translate.transport_sockets import add_mesh_tls

__all__ = [
    "HTTP_PROTOCOL_OPTIONS",
    "address_cluster",
    "inbound_cluster",
    "service_cluster",
    "service_clusters",
    "shared_clusters",
    "speak_http2",
]

# The key Envoy looks up upstream HTTP settings under in `typed_extension_protocol_options`.
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

_HTTP2_PROTOCOLS = frozenset({"http2", "grpc"})
# Connect timeout of the sidecar's app cluster when its service is not defined yet.
_DEFAULT_CONNECT_TIMEOUT = 1.0


def shared_clusters(mesh: Mesh) -> list[cluster_pb2.Cluster]:
    """Return every service's cluster and every used subset's cluster, sorted by name."""
    subsets = subsets_by_service(mesh)
    clusters = [
        cluster
        for name in mesh.services
        for cluster in service_clusters(mesh, name, subsets.get(name, ()))
    ]
    return sorted(clusters, key=lambda cluster: str(cluster.name))


def service_clusters(
    mesh: Mesh, service: str, subsets: Iterable[Subset]
) -> list[cluster_pb2.Cluster]:
    """The clusters `shared_clusters` builds for one service: its own, then one per subset of it
    (for a change to one service's spec, which leaves every other cluster as it was)."""
    spec = mesh.services[service]
    callee = Subject.service(service).spiffe_id(mesh.trust_domain)
    clusters = [service_cluster(name, spec) for name in (service, *(s.name for s in subsets))]
    for cluster in clusters:
        add_mesh_tls(cluster, callee)
    return clusters


def service_cluster(name: str, spec: ServiceSpec) -> cluster_pb2.Cluster:
    """Build EDS cluster `name` for a service (or a subset of it); endpoints come over ADS.

    The EDS service name equals the cluster name, so a subset's ClusterLoadAssignment is its own
    resource and never mixes with the whole service's.
    """
    cluster = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,  # the class attribute: DiscoveryType.EDS is a slow lookup
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=ads_config_source(), service_name=name
        ),
        connect_timeout=duration(spec.connect_timeout),
    )
    _set_protocol(cluster, spec.protocol)
    apply_service_policies(cluster, spec)
    return cluster


def inbound_cluster(app_port: int, spec: ServiceSpec | None) -> cluster_pb2.Cluster:
    """Build the sidecar's static cluster to its app on 127.0.0.1:`app_port`.

    Speaks the service's protocol so an HTTP/2 or gRPC app gets HTTP/2; plain HTTP/1.1 until the
    service is defined.
    """
    timeout = spec.connect_timeout if spec else _DEFAULT_CONNECT_TIMEOUT
    cluster = address_cluster(inbound_cluster_name(app_port), "127.0.0.1", app_port, timeout)
    if spec is not None:
        _set_protocol(cluster, spec.protocol)
    return cluster


def address_cluster(name: str, host: str, port: int, connect_timeout: float) -> cluster_pb2.Cluster:
    """A cluster of one address given inline: STATIC for an IP, STRICT_DNS for a name."""
    try:
        ipaddress.ip_address(host)
        kind = cluster_pb2.Cluster.DiscoveryType.STATIC
    except ValueError:
        kind = cluster_pb2.Cluster.DiscoveryType.STRICT_DNS
    return cluster_pb2.Cluster(
        name=name,
        type=kind,
        connect_timeout=duration(connect_timeout),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=socket_address(host, port)
                            )
                        )
                    ]
                )
            ],
        ),
    )


def speak_http2(cluster: cluster_pb2.Cluster) -> None:
    """Make the cluster speak HTTP/2 to its upstream (gRPC, HTTP/2 apps, OTLP collectors)."""
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )
    cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(packed(options))


def _set_protocol(cluster: cluster_pb2.Cluster, protocol: str) -> None:
    """Make the cluster speak HTTP/2 to http2 and grpc services; HTTP/1.1 and TCP need nothing."""
    if protocol in _HTTP2_PROTOCOLS:
        speak_http2(cluster)
