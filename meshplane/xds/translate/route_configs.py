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

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

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
from meshplane.xds import wire
from meshplane.xds.references import route_clusters
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
    """Envoy routes translated by earlier builds, by route name, with what they were made from,
    their serialized bytes and the clusters they send traffic to; and, for the route
    configurations assembled from them, those configurations' clusters.

    A configuration is assembled from its routes' bytes (protobuf's wire format is the
    concatenation of fields) and parsed once, rather than built by copying each route into it:
    at 10,000 routes the copies were most of a write's build. Entries last one generation:
    `advance` at the start of a build drops what the build before it did not use, so deleted
    routes do not stay (a build of some groups keeps them until the next whole one). Entries
    never change once made; a copy (`fork`) can be used by another thread while this one is.
    """

    _current: dict[str, _Memoized] = field(default_factory=dict)
    _previous: dict[str, _Memoized] = field(default_factory=dict)
    # id of a configuration this memo assembled -> (it, its clusters); it is held, so the id
    # stays its own.
    _assembled: dict[int, tuple[route_pb2.RouteConfiguration, frozenset[str]]] = field(
        default_factory=dict
    )

    def advance(self, *, keep: bool = False) -> None:
        """Start a build: drop the entries the build before did not use, unless `keep` (a
        build of some groups only, which leaves the routes of the others unused but current)."""
        if not keep:
            self._previous, self._current = self._current, {}
        self._assembled = {}

    def fork(self) -> RouteMemo:
        return RouteMemo(dict(self._current), dict(self._previous), dict(self._assembled))

    def route(self, name: str, spec: RouteSpec, mesh: Mesh) -> route_components_pb2.Route:
        """`envoy_route(name, spec, mesh)`, translated again only if its inputs changed."""
        return self._entry(name, spec, mesh).route

    def clusters(self, config: object) -> frozenset[str] | None:
        """The clusters of a route configuration this memo assembled in this generation (the
        object itself), else None."""
        assembled = self._assembled.get(id(config))
        return assembled[1] if assembled is not None and assembled[0] is config else None

    def _entry(self, name: str, spec: RouteSpec, mesh: Mesh) -> _Memoized:
        entry = self._current.get(name) or self._previous.get(name)
        if entry is None or entry.spec is not spec or entry.present != entry.now(mesh):
            route = envoy_route(name, spec, mesh)
            data = route.SerializeToString(deterministic=True)
            services = _services(spec)
            entry = _Memoized(spec, services, (), route, data, route_clusters(route))
            entry = replace(entry, present=entry.now(mesh))
        self._current[name] = entry
        return entry

    def _virtual_host(
        self, host: str, routes: Sequence[NamedRoute], mesh: Mesh, last: Sequence[_Memoized] = ()
    ) -> _Host:
        """A virtual host (name = the host, domains = [host]) of `routes`, in their order (route
        table precedence), then `last`."""
        entries = [*(self._entry(name, spec, mesh) for name, spec in routes), *last]
        name = host.encode()
        parts = [wire.field(1, name), wire.field(2, name)]
        parts += [wire.field(3, entry.data) for entry in entries]
        clusters = frozenset().union(*(entry.clusters for entry in entries))
        return _Host(host, b"".join(parts), clusters)

    def _configuration(self, name: str, hosts: Iterable[_Host]) -> route_pb2.RouteConfiguration:
        """The configuration `name` of `hosts`, sorted by host name."""
        ordered = sorted(hosts, key=lambda h: h.name)
        data = b"".join((wire.field(1, name.encode()), *(wire.field(2, h.data) for h in ordered)))
        config = route_pb2.RouteConfiguration.FromString(data)
        clusters = frozenset().union(*(h.clusters for h in ordered))
        self._assembled[id(config)] = (config, clusters)
        return config


@dataclass(frozen=True, slots=True)
class _Memoized:
    spec: RouteSpec | None  # held, so its identity cannot be reused by another spec
    services: tuple[str, ...]  # the services it sends or mirrors traffic to
    present: tuple[bool, ...]  # which of them existed when it was translated
    route: route_components_pb2.Route
    data: bytes  # the route, serialized deterministically
    clusters: frozenset[str]

    def now(self, mesh: Mesh) -> tuple[bool, ...]:
        """Which of its services exist in `mesh`: all a route's translation reads of the mesh
        besides its spec (see route_actions)."""
        return tuple(map(mesh.services.__contains__, self.services))


@dataclass(frozen=True, slots=True)
class _Host:
    name: str
    data: bytes  # the VirtualHost, serialized
    clusters: frozenset[str]


def _services(spec: RouteSpec) -> tuple[str, ...]:
    return (*(d.service for d in spec.destinations), *(m.service for m in spec.mirrors))


def gateway_route_configuration(
    mesh: Mesh, gateway: str, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration | None:
    """Build `gateway:<gateway>` from the routes attached to it; None if the gateway is absent."""
    table = gateway_table(mesh, gateway)
    if table is None:
        return None
    memo = memo or RouteMemo()
    hosts = [memo._virtual_host(host, routes, mesh) for host, routes in table.items()]
    return memo._configuration(gateway_route_name(gateway), hosts)


def outbound_route_configuration(
    mesh: Mesh, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration:
    """Build the sidecars' `outbound` configuration: a virtual host per HTTP service and per
    other host a sidecar route names."""
    memo = memo or RouteMemo()
    hosts = []
    for host, routes in sidecar_table(mesh).items():
        service = default_service(mesh, host)
        last = [_default_entry(service)] if service is not None else []
        hosts.append(memo._virtual_host(host, routes, mesh, last))
    return memo._configuration(OUTBOUND, hosts)


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


@functools.lru_cache(maxsize=65536)
def _default_entry(service: str) -> _Memoized:
    """The catch-all route of a sidecar's virtual host for `service`, translated once."""
    route = route_components_pb2.Route(
        name=default_route_name(service),
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster_name(service)),
    )
    data = route.SerializeToString(deterministic=True)
    return _Memoized(None, (), (), route, data, frozenset({cluster_name(service)}))
