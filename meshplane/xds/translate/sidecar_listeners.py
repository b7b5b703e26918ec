"""A sidecar's two listeners.

`outbound` (127.0.0.1 only: just the local app may use it) routes by Host header through the shared
`outbound` route configuration. `inbound` (0.0.0.0: peers reach it) forwards everything to the
local app through the static cluster `inbound|<app_port>`; its routes are inline because they are
the sidecar's alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.model import ServiceSpec
from meshplane.xds.translate.connection_managers import (
    HCM_FILTER,
    TCP_PROXY_FILTER,
    http_connection_manager,
    listener,
    one_route_configuration,
)
from meshplane.xds.translate.http_filters import route_policy_filters
from meshplane.xds.translate.names import INBOUND, OUTBOUND, inbound_cluster_name
from meshplane.xds.translate.proto_values import duration
from meshplane.xds.translate.transport_sockets import inbound_filter_chains, tls_inspector

__all__ = ["inbound_listener", "outbound_listener"]


def outbound_listener(port: int) -> listener_pb2.Listener:
    """Build the outbound listener; routes may turn on its fault and rate-limit filters."""
    manager = http_connection_manager(OUTBOUND, rds=OUTBOUND, filters=route_policy_filters())
    return listener(OUTBOUND, "127.0.0.1", port, HCM_FILTER, manager)


def inbound_listener(
    port: int,
    app_port: int,
    spec: ServiceSpec | None,
    *,
    trust_domain: str,
    mtls: str = "strict",
    filters: Sequence[hcm_pb2.HttpFilter] = (),
    network_filters: Sequence[listener_components_pb2.Filter] = (),
) -> listener_pb2.Listener:
    """Build the inbound listener: TCP proxying for tcp services, HTTP otherwise (and while the
    service is not defined yet), behind mutual TLS (`mtls` strict or permissive, see
    transport_sockets). HTTP `filters` (authorization) run before the router, network
    `network_filters` (authorization of a tcp service) before the tcp_proxy; the app of an HTTP
    service learns the caller's SPIFFE ID from the x-forwarded-client-cert header."""
    cluster = inbound_cluster_name(app_port)
    if spec is not None and spec.protocol == "tcp":
        config = tcp_proxy_pb2.TcpProxy(stat_prefix=INBOUND, cluster=cluster)
        shell = listener(INBOUND, "0.0.0.0", port, TCP_PROXY_FILTER, config, network_filters)
    else:
        manager = http_connection_manager(
            INBOUND, route_config=_inbound_routes(cluster), filters=filters
        )
        manager.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
        manager.set_current_client_cert_details.uri = True
        shell = listener(INBOUND, "0.0.0.0", port, HCM_FILTER, manager)
    chain_filters = list(shell.filter_chains[0].filters)
    del shell.filter_chains[:]
    shell.filter_chains.extend(inbound_filter_chains(trust_domain, mtls, chain_filters))
    if mtls == "permissive":
        shell.listener_filters.append(tls_inspector())
    return shell


def _inbound_routes(cluster: str) -> route_pb2.RouteConfiguration:
    """Send every request to the app with no timeout: the caller's route timeout governs."""
    return one_route_configuration(
        INBOUND,
        route_components_pb2.RouteMatch(prefix="/"),
        route_components_pb2.RouteAction(cluster=cluster, timeout=duration(0)),
    )
