"""RDS route configurations for gateways and for sidecars' outbound traffic.

Virtual hosts: one per distinct host name (name = the host, domains = [host]); Envoy rejects a
domain that appears in two virtual hosts, so routes naming the same host share one. Virtual hosts
are sorted by name.

Precedence inside a virtual host (Envoy takes the first route that matches, so this order is what
users see):

1. path condition: exact `path` first, then `regex`, then `prefix`, longest prefix first;
2. then the route with more conditions (each header counts one, a method list counts one);
3. then the meshplane route name, so equal routes have a stable, documented order.

A sidecar's virtual host for a service ends with a catch-all `/` route to that service's cluster
(named `default:<service>`), after every user route for that host.

Actions: destinations with weight 0 are left out (their clusters still exist, warm); one remaining
cluster becomes `cluster`, several become `weighted_clusters` (sorted by cluster name, weights of
destinations naming the same cluster added up). A route whose every destination names a missing
service answers 503 itself rather than pointing Envoy at a cluster it was never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from meshplane.model import HeaderMatch, Mesh, RouteMatch, RouteSpec
from meshplane.xds.translate.names import (
    OUTBOUND,
    cluster_name,
    default_route_name,
    gateway_route_name,
)
from meshplane.xds.translate.proto_values import duration

__all__ = [
    "envoy_route",
    "gateway_route_configuration",
    "outbound_route_configuration",
    "precedence",
]

# What a route answers when none of its destinations exists.
_NO_DESTINATION_STATUS = 503

NamedRoute = tuple[str, RouteSpec]


def gateway_route_configuration(mesh: Mesh, gateway: str) -> route_pb2.RouteConfiguration | None:
    """Build `gateway:<gateway>` from the routes attached to it; None if the gateway is absent.

    A route without `hosts` serves every host of the gateway.
    """
    spec = mesh.gateways.get(gateway)
    if spec is None:
        return None
    hosts: dict[str, list[NamedRoute]] = {}
    for name, route in mesh.routes.items():
        if gateway in route.gateways:
            for host in dict.fromkeys(route.hosts or spec.hosts):
                hosts.setdefault(host, []).append((name, route))
    virtual_hosts = [_virtual_host(host, routes, mesh) for host, routes in hosts.items()]
    return _route_configuration(gateway_route_name(gateway), virtual_hosts)


def outbound_route_configuration(mesh: Mesh) -> route_pb2.RouteConfiguration:
    """Build the sidecars' `outbound` configuration: a virtual host per HTTP service and per
    other host a sidecar route names.

    TCP services get no virtual host: they cannot be reached through an HTTP listener.
    """
    hosts: dict[str, list[NamedRoute]] = {
        service: [] for service, spec in mesh.services.items() if spec.protocol != "tcp"
    }
    for name, route in mesh.routes.items():
        if not route.gateways:
            for host in dict.fromkeys(route.hosts):
                hosts.setdefault(host, []).append((name, route))
    virtual_hosts = []
    for host, routes in hosts.items():
        virtual_host = _virtual_host(host, routes, mesh)
        service = mesh.services.get(host)
        if service is not None and service.protocol != "tcp":
            virtual_host.routes.append(_default_route(host))
        virtual_hosts.append(virtual_host)
    return _route_configuration(OUTBOUND, virtual_hosts)


def precedence(route: NamedRoute) -> tuple[int, int, int, str]:
    """Sort key putting the route Envoy should try first first (see the module docstring)."""
    name, spec = route
    match = spec.match
    if match.path is not None:
        kind, length = 0, 0
    elif match.regex is not None:
        kind, length = 1, 0
    else:
        kind, length = 2, len(match.prefix or "")
    conditions = len(match.headers) + (1 if match.methods else 0)
    return (kind, -length, -conditions, name)


def envoy_route(name: str, spec: RouteSpec, mesh: Mesh) -> route_components_pb2.Route:
    """Translate one meshplane route; the Envoy route carries its name for `/config_dump`."""
    route = route_components_pb2.Route(name=name, match=_match(spec.match))
    clusters = _weighted_clusters(spec, mesh)
    if not clusters:
        route.direct_response.status = _NO_DESTINATION_STATUS
        return route
    action = route.route
    if len(clusters) == 1:
        action.cluster = next(iter(clusters))
    else:
        for cluster, weight in sorted(clusters.items()):
            action.weighted_clusters.clusters.add(name=cluster, weight={"value": weight})
    if spec.timeout is not None:
        action.timeout.CopyFrom(duration(spec.timeout))
    return route


def _route_configuration(
    name: str, virtual_hosts: Iterable[route_components_pb2.VirtualHost]
) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=sorted(virtual_hosts, key=lambda vhost: str(vhost.name))
    )


def _virtual_host(
    host: str, routes: Sequence[NamedRoute], mesh: Mesh
) -> route_components_pb2.VirtualHost:
    return route_components_pb2.VirtualHost(
        name=host,
        domains=[host],
        routes=[envoy_route(name, spec, mesh) for name, spec in sorted(routes, key=precedence)],
    )


def _default_route(service: str) -> route_components_pb2.Route:
    return route_components_pb2.Route(
        name=default_route_name(service),
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster_name(service)),
    )


def _weighted_clusters(spec: RouteSpec, mesh: Mesh) -> Mapping[str, int]:
    """Map each cluster the route sends traffic to onto its total weight (weight 0 left out)."""
    clusters: dict[str, int] = {}
    for destination in spec.destinations:
        if destination.weight > 0 and destination.service in mesh.services:
            name = cluster_name(destination.service, destination.labels)
            clusters[name] = clusters.get(name, 0) + destination.weight
    return clusters


def _match(match: RouteMatch) -> route_components_pb2.RouteMatch:
    result = route_components_pb2.RouteMatch()
    if match.path is not None:
        result.path = match.path
    elif match.regex is not None:
        result.safe_regex.CopyFrom(_regex(match.regex))
    else:
        result.prefix = match.prefix or "/"
    result.headers.extend(_header_matcher(header) for header in match.headers)
    if match.methods:
        methods = "|".join(sorted(set(match.methods)))
        result.headers.add(
            name=":method",
            string_match=string_pb2.StringMatcher(safe_regex=_regex(f"^({methods})$")),
        )
    return result


def _header_matcher(header: HeaderMatch) -> route_components_pb2.HeaderMatcher:
    matcher = route_components_pb2.HeaderMatcher(name=header.name)
    if header.exact is not None:
        matcher.string_match.exact = header.exact
    elif header.regex is not None:
        matcher.string_match.safe_regex.CopyFrom(_regex(header.regex))
    else:
        # present_match false matches requests where the header is absent.
        matcher.present_match = bool(header.present)
    return matcher


def _regex(pattern: str) -> regex_pb2.RegexMatcher:
    return regex_pb2.RegexMatcher(regex=pattern)
