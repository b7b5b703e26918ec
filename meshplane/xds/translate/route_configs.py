"""RDS route configurations for gateways and for sidecars' outbound traffic.

Virtual hosts: one per distinct host name (name = the host, domains = [host]); Envoy rejects a
domain that appears in two virtual hosts, so routes naming the same host share one. Virtual hosts
are sorted by name. Which routes a host holds, and in which order, is
`meshplane.model.route_table` (its docstring documents the precedence users see).

A sidecar's virtual host for a service ends with a catch-all `/` route to that service's cluster
(named `default:<service>`), after every user route for that host.

Each route carries its own policies: the action (route_actions), header changes, and the fault
and rate-limit settings of the listener's filters (http_filters) under `typed_per_filter_config`.
A route whose every destination names a missing service answers 503 itself rather than pointing
Envoy at a cluster it was never sent.

A route's translation depends on its name, its spec and which of the services it names exist,
nothing else; a `RouteMemo` given by the caller keeps translated routes between builds, so a
write translates the routes it changed, not every route of the host beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.model import (
    Mesh,
    NamedRoute,
    RouteSpec,
    default_service,
    gateway_table,
    precedence,
    sidecar_table,
)
from meshplane.xds.translate.http_filters import (
    FAULT_FILTER,
    RATE_LIMIT_FILTER,
    fault_config,
    rate_limit_config,
)
from meshplane.xds.translate.names import (
    OUTBOUND,
    cluster_name,
    default_route_name,
    gateway_route_name,
)
from meshplane.xds.translate.proto_values import packed
from meshplane.xds.translate.route_actions import (
    direct_response_action,
    forward_action,
    header_options,
    redirect_action,
)
from meshplane.xds.translate.route_matches import envoy_match

__all__ = [
    "RouteMemo",
    "envoy_route",
    "gateway_route_configuration",
    "outbound_route_configuration",
    "precedence",
]

# What a route answers when none of its destinations exists.
_NO_DESTINATION_STATUS = 503


@dataclass
class RouteMemo:
    """Envoy routes translated by earlier builds, by route name, with what they were made from.

    Entries last one generation: `advance` at the start of a build drops what the build before
    it did not use, so deleted routes do not stay. Entries never change once made; a copy
    (`fork`) can be used by another thread while this one is.
    """

    _current: dict[str, _Memoized] = field(default_factory=dict)
    _previous: dict[str, _Memoized] = field(default_factory=dict)

    def advance(self) -> None:
        self._previous, self._current = self._current, {}

    def fork(self) -> RouteMemo:
        return RouteMemo(dict(self._current), dict(self._previous))

    def route(self, name: str, spec: RouteSpec, mesh: Mesh) -> route_components_pb2.Route:
        """`envoy_route(name, spec, mesh)`, translated again only if its inputs changed."""
        present = _present(spec, mesh)
        entry = self._current.get(name) or self._previous.get(name)
        if entry is None or entry.spec is not spec or entry.present != present:
            entry = _Memoized(spec, present, envoy_route(name, spec, mesh))
        self._current[name] = entry
        return entry.route


@dataclass(frozen=True, slots=True)
class _Memoized:
    spec: RouteSpec  # held, so its identity cannot be reused by another spec
    present: tuple[bool, ...]
    route: route_components_pb2.Route


def _present(spec: RouteSpec, mesh: Mesh) -> tuple[bool, ...]:
    """Which of the services the route sends or mirrors traffic to exist: all it reads of the
    mesh (see route_actions)."""
    services = mesh.services
    return (
        *(d.service in services for d in spec.destinations),
        *(m.service in services for m in spec.mirrors),
    )


def gateway_route_configuration(
    mesh: Mesh, gateway: str, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration | None:
    """Build `gateway:<gateway>` from the routes attached to it; None if the gateway is absent."""
    table = gateway_table(mesh, gateway)
    if table is None:
        return None
    memo = memo or RouteMemo()
    virtual_hosts = [_virtual_host(host, routes, mesh, memo) for host, routes in table.items()]
    return _route_configuration(gateway_route_name(gateway), virtual_hosts)


def outbound_route_configuration(
    mesh: Mesh, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration:
    """Build the sidecars' `outbound` configuration: a virtual host per HTTP service and per
    other host a sidecar route names."""
    memo = memo or RouteMemo()
    virtual_hosts = []
    for host, routes in sidecar_table(mesh).items():
        virtual_host = _virtual_host(host, routes, mesh, memo)
        service = default_service(mesh, host)
        if service is not None:
            virtual_host.routes.append(_default_route(service))
        virtual_hosts.append(virtual_host)
    return _route_configuration(OUTBOUND, virtual_hosts)


def envoy_route(name: str, spec: RouteSpec, mesh: Mesh) -> route_components_pb2.Route:
    """Translate one meshplane route; the Envoy route carries its name for `/config_dump`."""
    route = route_components_pb2.Route(name=name, match=envoy_match(spec.match))
    if spec.redirect is not None:
        route.redirect.CopyFrom(redirect_action(spec.redirect))
    elif spec.direct_response is not None:
        route.direct_response.CopyFrom(direct_response_action(spec.direct_response))
    else:
        action = forward_action(spec, mesh)
        if action is None:
            route.direct_response.status = _NO_DESTINATION_STATUS
        else:
            route.route.CopyFrom(action)
    if spec.request_headers is not None:
        route.request_headers_to_add.extend(header_options(spec.request_headers))
        route.request_headers_to_remove.extend(sorted(set(spec.request_headers.remove)))
    if spec.response_headers is not None:
        route.response_headers_to_add.extend(header_options(spec.response_headers))
        route.response_headers_to_remove.extend(sorted(set(spec.response_headers.remove)))
    if spec.fault is not None:
        route.typed_per_filter_config[FAULT_FILTER].CopyFrom(fault_config(spec.fault))
    if spec.rate_limit is not None:
        route.typed_per_filter_config[RATE_LIMIT_FILTER].CopyFrom(
            packed(rate_limit_config(spec.rate_limit))
        )
    return route


def _route_configuration(
    name: str, virtual_hosts: Iterable[route_components_pb2.VirtualHost]
) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=sorted(virtual_hosts, key=lambda vhost: str(vhost.name))
    )


def _virtual_host(
    host: str, routes: Sequence[NamedRoute], mesh: Mesh, memo: RouteMemo
) -> route_components_pb2.VirtualHost:
    """`routes` come in precedence order already (route_table sorts them)."""
    return route_components_pb2.VirtualHost(
        name=host, domains=[host], routes=[memo.route(name, spec, mesh) for name, spec in routes]
    )


def _default_route(service: str) -> route_components_pb2.Route:
    return route_components_pb2.Route(
        name=default_route_name(service),
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster_name(service)),
    )
