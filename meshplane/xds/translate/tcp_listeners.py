"""Listeners that forward TCP connections through the mesh: a sidecar's outbound listener per
tcp service with a mesh port, a tcp gateway's listener, and a tls gateway's (TLS passthrough:
a filter chain per route, picked by the SNI the TLS inspector reads, the TLS left whole).

Each holds one tcp_proxy to the service's EDS cluster (whose `transport_socket_matches` speak
mutual TLS to sidecar endpoints and verify the callee's SPIFFE ID, for TCP as for HTTP), or to
the destinations of the route that carries the stream (`model.streams`): one destination is
its cluster, several a `weighted_clusters` split (per connection) over their clusters, subset
clusters for destinations with labels. Destinations of weight 0 are left out (Envoy refuses a
weight of 0); their clusters still exist (`subsets`), warm for a later shift.

A sidecar listens on 127.0.0.1:<port> only (its app is the one caller), the port being the
service's `port` or the one its bootstrap gives the service (`tcp_ports`, for a host where the
service's port is taken). A port the sidecar itself uses (inbound, app, outbound or admin), or
one the bootstrap gave another service, would make Envoy refuse the listener, so that service's
listener is left out for that group; `skipped_ports` says which, for the caller to report
(nothing under translate/ logs).
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.model import (
    Destination,
    Mesh,
    ProxyGroup,
    gateway_stream_route,
    gateway_table,
    sni_routes,
)
from meshplane.model import sidecar_stream_routes as stream_routes
from meshplane.xds.translate.connection_managers import TCP_PROXY_FILTER, listener
from meshplane.xds.translate.names import (
    cluster_name,
    gateway_listener_name,
    gateway_stat_prefix,
    tcp_listener_name,
    tcp_stat_prefix,
)
from meshplane.xds.translate.proto_values import packed, socket_address
from meshplane.xds.translate.transport_sockets import tls_inspector

__all__ = [
    "gateway_tcp_listener",
    "gateway_tls_listener",
    "outbound_tcp_listeners",
    "skipped_ports",
    "tcp_proxy",
]


def tcp_proxy(
    stat_prefix: str, mesh: Mesh, destinations: Sequence[Destination]
) -> tcp_proxy_pb2.TcpProxy | None:
    """A tcp_proxy to `destinations` (those of services in the mesh with weight above 0); None
    when none is left."""
    used = [d for d in destinations if d.weight > 0 and d.service in mesh.services]
    if not used:
        return None
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    if len(used) == 1:
        proxy.cluster = cluster_name(used[0].service, used[0].labels)
        return proxy
    for d in used:
        proxy.weighted_clusters.clusters.add(
            name=cluster_name(d.service, d.labels), weight=d.weight
        )
    return proxy


def _placed(mesh: Mesh, group: ProxyGroup) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(service, port) of each tcp service this sidecar group listens for, and of each it
    skips since the port is taken: by the sidecar itself, or by a service the bootstrap moved
    there (`tcp_ports` come first); both by service name."""
    moved = dict(group.tcp_ports)
    wanted = [
        (name, moved.get(name, spec.port))
        for name, spec in mesh.tcp_services().items()
        if spec.port or name in moved
    ]
    own = (group.inbound_port, group.app_port, group.outbound_port, group.admin_port)
    taken = {port for port in own if port is not None}
    placed: list[tuple[str, int]] = []
    skipped: list[tuple[str, int]] = []
    for service, port in sorted(wanted, key=lambda item: (item[0] not in moved, item[0])):
        assert port is not None
        (skipped if port in taken else placed).append((service, port))
        taken.add(port)
    return sorted(placed), sorted(skipped)


def skipped_ports(mesh: Mesh, group: ProxyGroup) -> list[tuple[str, int]]:
    """(service, port) of the tcp services this sidecar group gets no listener for: their
    port is one of its own, or another service's the bootstrap moved there."""
    return _placed(mesh, group)[1]


def outbound_tcp_listeners(mesh: Mesh, group: ProxyGroup) -> list[listener_pb2.Listener]:
    """A sidecar's listener on 127.0.0.1:<port> for each tcp service with a mesh port (the
    bootstrap's `tcp_ports` may move it or give one), but those of `skipped_ports`; sorted by
    name."""
    placed, _ = _placed(mesh, group)
    if not placed:
        return []
    routes = stream_routes(mesh)
    out = []
    for service, port in placed:
        route = routes.get(service)
        prefix = tcp_stat_prefix(service)
        proxy = tcp_proxy(prefix, mesh, route[1].destinations) if route is not None else None
        if proxy is None:
            proxy = tcp_proxy(prefix, mesh, [Destination(service=service)])
        assert proxy is not None  # the service itself is in the mesh
        out.append(listener(tcp_listener_name(service), "127.0.0.1", port, TCP_PROXY_FILTER, proxy))
    return out


def gateway_tcp_listener(mesh: Mesh, gateway: str) -> listener_pb2.Listener | None:
    """A tcp gateway's listener forwarding to its route's destinations; None (no listener:
    connections are refused) while no route with a destination in the mesh is attached."""
    spec = mesh.gateways[gateway]
    route = gateway_stream_route(mesh, gateway)
    if route is None:
        return None
    proxy = tcp_proxy(gateway_stat_prefix(gateway), mesh, route[1].destinations)
    if proxy is None:
        return None
    name = gateway_listener_name(gateway)
    return listener(name, spec.address, spec.port, TCP_PROXY_FILTER, proxy)


def gateway_tls_listener(mesh: Mesh, gateway: str) -> listener_pb2.Listener | None:
    """A tls gateway's listener: per route attached, a filter chain matching the SNI names it
    serves (its hosts, else the gateway's; `*` matches any SNI, and none) and forwarding the
    connection, TLS untouched, to its destinations. None (connections refused) while no route
    with a destination in the mesh is attached."""
    spec = mesh.gateways[gateway]
    routes = sni_routes(gateway_table(mesh, gateway) or {})
    shell = listener_pb2.Listener(
        name=gateway_listener_name(gateway),
        address=socket_address(spec.address, spec.port),
        listener_filters=[tls_inspector()],
    )
    for name, (route, names) in sorted(routes.items()):
        proxy = tcp_proxy(gateway_stat_prefix(gateway), mesh, route.destinations)
        if proxy is None:
            continue
        chain = shell.filter_chains.add(name=name)
        chain.filter_chain_match.server_names.extend(h for h in names if h != "*")
        chain.filters.add(name=TCP_PROXY_FILTER, typed_config=packed(proxy))
    return shell if shell.filter_chains else None
