"""Fold translated (dynamic) resources into one static bootstrap Envoy can validate alone.

EDS clusters become STATIC clusters holding their ClusterLoadAssignment, and RDS references
become the inline RouteConfiguration they name. Inline routes are checked against the cluster
manager (`validate_clusters` defaults to true for them), so `envoy --mode validate` also proves
every cluster a route names is among the resources. SDS references point at static secrets:
the resources' own (`keep_secrets`, for tests of the translation), else a throwaway identity's
under each referenced name, so that no proxy's key is ever written out to be checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from meshplane.certs import stand_in_identity
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

__all__ = ["Resources", "static_bootstrap"]

Resources = Mapping[str, Sequence[Message]]


def static_bootstrap(resources: Resources, *, keep_secrets: bool = False) -> dict[str, Any]:
    """Fold dynamic resources into a static bootstrap (as JSON) that Envoy can validate alone.

    Route configurations no listener refers to get a listener of their own so they are checked
    too. Secrets are stand-ins unless `keep_secrets` (then only those missing are). Raises
    ValueError for an EDS cluster without its assignment or a missing RDS name, either of
    which would leave Envoy waiting forever on a real xDS stream.
    """
    unknown = set(resources) - {CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET}
    if unknown:
        raise ValueError(f"unknown type URLs: {sorted(unknown)}")
    assignments = {cla.cluster_name: cla for cla in _typed_any(resources, ENDPOINT)}
    routes = {config.name: config for config in _typed_any(resources, ROUTE)}
    bootstrap: Any = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = "meshplane-validate"
    bootstrap.node.cluster = "meshplane-validate"
    static = bootstrap.static_resources
    for cluster in _typed_any(resources, CLUSTER):
        static.clusters.append(_static_cluster(cluster, assignments))
    used_routes: set[str] = set()
    ports: set[int] = set()
    for listener in _typed_any(resources, LISTENER):
        static.listeners.append(_inline_routes(listener, routes, used_routes))
        ports.add(int(listener.address.socket_address.port_value))
    spare = (port for port in range(20000, 65536) if port not in ports)
    for name in sorted(set(routes) - used_routes):
        static.listeners.append(_route_listener(routes[name], next(spare)))
    if keep_secrets:
        static.secrets.extend(resources.get(SECRET, []))
    certificates, bundles = _static_sds(static)
    given = {s.name for s in static.secrets}
    static.secrets.extend(_stand_ins(certificates - given, bundles - given))
    result: dict[str, Any] = json_format.MessageToDict(bootstrap, preserving_proto_field_name=True)
    return result


def _static_sds(static: Any) -> tuple[set[str], set[str]]:
    """Point every SDS reference at a static secret (no ADS here); return the names used, of
    certificates and of validation contexts."""
    certificates: set[str] = set()
    bundles: set[str] = set()
    sockets = [m.transport_socket for c in static.clusters for m in c.transport_socket_matches]
    sockets += [c.transport_socket for c in static.clusters if c.HasField("transport_socket")]
    sockets += [
        chain.transport_socket
        for listener in static.listeners
        for chain in listener.filter_chains
        if chain.HasField("transport_socket")
    ]
    for socket in sockets:
        config = socket.typed_config
        for kind in (tls_pb2.UpstreamTlsContext, tls_pb2.DownstreamTlsContext):
            if config.Is(kind.DESCRIPTOR):
                context = kind()
                config.Unpack(context)
                common = context.common_tls_context
                for sds in common.tls_certificate_sds_secret_configs:
                    sds.ClearField("sds_config")
                    certificates.add(sds.name)
                combined = common.combined_validation_context
                if combined.HasField("validation_context_sds_secret_config"):
                    combined.validation_context_sds_secret_config.ClearField("sds_config")
                    bundles.add(combined.validation_context_sds_secret_config.name)
                config.Pack(context)
    return certificates, bundles


def _stand_ins(certificates: set[str], bundles: set[str]) -> list[Any]:
    """Secrets under the given names made of one throwaway identity."""
    if not certificates and not bundles:
        return []
    identity = stand_in_identity()
    secrets: list[Any] = []
    for name in sorted(certificates):
        secret: Any = secret_pb2.Secret(name=name)
        secret.tls_certificate.certificate_chain.inline_string = identity.cert_chain_pem
        secret.tls_certificate.private_key.inline_string = identity.key_pem
        secrets.append(secret)
    for name in sorted(bundles):
        secret = secret_pb2.Secret(name=name)
        context: Any = common_pb2.CertificateValidationContext()
        context.trusted_ca.inline_string = identity.root_pem
        secret.validation_context.CopyFrom(context)
        secrets.append(secret)
    return secrets


def _typed_any(resources: Resources, type_url: str) -> list[Any]:
    """The messages of one type, typed Any: xds-protos has no stubs, so mypy cannot see fields."""
    return list(resources.get(type_url, ()))


def _static_cluster(cluster: Any, assignments: Mapping[str, Any]) -> Any:
    result = cluster_pb2.Cluster()
    result.CopyFrom(cluster)
    if result.type != cluster_pb2.Cluster.DiscoveryType.EDS:
        return result
    service = result.eds_cluster_config.service_name or result.name
    if service not in assignments:
        raise ValueError(f"EDS cluster {result.name!r} has no ClusterLoadAssignment {service!r}")
    result.ClearField("eds_cluster_config")
    result.type = cluster_pb2.Cluster.DiscoveryType.STATIC
    result.load_assignment.CopyFrom(assignments[service])
    result.load_assignment.cluster_name = result.name
    return result


def _inline_routes(listener: Any, routes: Mapping[str, Any], used: set[str]) -> Any:
    """Copy `listener` with each RDS reference replaced by the RouteConfiguration it names."""
    result = listener_pb2.Listener()
    result.CopyFrom(listener)
    chains = list(result.filter_chains)
    if result.HasField("default_filter_chain"):
        chains.append(result.default_filter_chain)
    for chain in chains:
        for network_filter in chain.filters:
            config = network_filter.typed_config
            if not config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                continue
            manager = hcm_pb2.HttpConnectionManager()
            config.Unpack(manager)
            if manager.WhichOneof("route_specifier") != "rds":
                continue
            name = manager.rds.route_config_name
            if name not in routes:
                raise ValueError(
                    f"listener {result.name!r} names route configuration {name!r}, "
                    "which is not among the resources"
                )
            manager.route_config.CopyFrom(routes[name])
            used.add(name)
            config.Pack(manager)
    return result


def _route_listener(route_config: Any, port: int) -> Any:
    manager = hcm_pb2.HttpConnectionManager(stat_prefix=f"validate_{port}")
    manager.route_config.CopyFrom(route_config)
    manager.http_filters.add(name="envoy.filters.http.router").typed_config.Pack(
        router_pb2.Router()
    )
    listener = listener_pb2.Listener(name=f"validate-routes:{route_config.name}")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    network_filter = listener.filter_chains.add().filters.add(
        name="envoy.filters.network.http_connection_manager"
    )
    network_filter.typed_config.Pack(manager)
    return listener
