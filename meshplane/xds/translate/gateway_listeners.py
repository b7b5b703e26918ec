"""A gateway's listener: its spec's address and port, routes fetched as `gateway:<name>` by RDS,
with the fault and rate-limit filters routes may turn on; an https gateway terminates TLS with
its certificates (SDS secrets named by `edge_secret_name`); a tcp gateway's is a tcp_proxy to its
route's destinations instead, a tls gateway's one per route picked by SNI (`tcp_listeners`)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshplane.model import Mesh
from meshplane.xds.translate.connection_managers import (
    HCM_FILTER,
    http_connection_manager,
    listener,
)
from meshplane.xds.translate.http_filters import route_policy_filters
from meshplane.xds.translate.names import (
    edge_secret_name,
    gateway_listener_name,
    gateway_route_name,
    gateway_stat_prefix,
)
from meshplane.xds.translate.tcp_listeners import gateway_tcp_listener, gateway_tls_listener
from meshplane.xds.translate.transport_sockets import edge_tls_socket

__all__ = ["gateway_listener"]


def gateway_listener(mesh: Mesh, gateway: str) -> listener_pb2.Listener | None:
    """Build the listener of `gateway`; None while the gateway is not in the mesh (or, for a tcp
    gateway, while no route is attached)."""
    spec = mesh.gateways.get(gateway)
    if spec is None:
        return None
    if spec.protocol == "tcp":
        return gateway_tcp_listener(mesh, gateway)
    if spec.protocol == "tls":
        return gateway_tls_listener(mesh, gateway)
    manager = http_connection_manager(
        gateway_stat_prefix(gateway),
        rds=gateway_route_name(gateway),
        filters=route_policy_filters(),
    )
    tls = spec.tls
    if tls is not None and tls.client_ca is not None:
        # The backends learn which partner called: the verified certificate's subject and names.
        manager.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
        details = manager.set_current_client_cert_details
        details.subject.value = details.dns = details.uri = True
    shell = listener(gateway_listener_name(gateway), spec.address, spec.port, HCM_FILTER, manager)
    if tls is not None:
        secrets = [edge_secret_name(name) for name in tls.certificates]
        shell.filter_chains[0].transport_socket.CopyFrom(
            edge_tls_socket(secrets, tls.min_version, tls.client_ca)
        )
    return shell
