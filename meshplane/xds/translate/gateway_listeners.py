"""A gateway's listener: its spec's address and port, routes fetched as `gateway:<name>` by RDS,
with the fault and rate-limit filters routes may turn on; a tcp gateway's is a tcp_proxy to its
route's destinations instead (`tcp_listeners`)."""

from __future__ import annotations

from envoy.config.listener.v3 import listener_pb2

from meshplane.model import Mesh
from meshplane.xds.translate.connection_managers import (
    HCM_FILTER,
    http_connection_manager,
    listener,
)
from meshplane.xds.translate.http_filters import route_policy_filters
from meshplane.xds.translate.names import (
    gateway_listener_name,
    gateway_route_name,
    gateway_stat_prefix,
)
from meshplane.xds.translate.tcp_listeners import gateway_tcp_listener

__all__ = ["gateway_listener"]


def gateway_listener(mesh: Mesh, gateway: str) -> listener_pb2.Listener | None:
    """Build the listener of `gateway`; None while the gateway is not in the mesh (or, for a tcp
    gateway, while no route is attached)."""
    spec = mesh.gateways.get(gateway)
    if spec is None:
        return None
    if spec.protocol == "tcp":
        return gateway_tcp_listener(mesh, gateway)
    manager = http_connection_manager(
        gateway_stat_prefix(gateway),
        rds=gateway_route_name(gateway),
        filters=route_policy_filters(),
    )
    return listener(gateway_listener_name(gateway), spec.address, spec.port, HCM_FILTER, manager)
