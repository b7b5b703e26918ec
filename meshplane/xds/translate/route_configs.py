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
write translates the routes it changed, not every route of the host beside them. It also keeps
each gateway's virtual hosts with their routes in order, so a write re-sorts nothing and
re-assembles only the hosts its routes are on.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.model import (
    GatewaySpec,
    Mesh,
    NamedRoute,
    Redirect,
    RouteSpec,
    ServiceSpec,
    default_service,
    gateway_table,
    precedence,
    route_hosts,
    sidecar_table,
)
from meshplane.xds import wire
from meshplane.xds.references import route_clusters
from meshplane.xds.translate.connection_managers import one_route_configuration
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
    # gateway -> its virtual hosts as last assembled (same two generations as the entries)
    _gateways: dict[str, _GatewayHosts] = field(default_factory=dict)
    _gateways_before: dict[str, _GatewayHosts] = field(default_factory=dict)

    def advance(self, *, keep: bool = False) -> None:
        """Start a build: drop the entries the build before did not use, unless `keep` (a
        build of some groups only, which leaves the routes of the others unused but current)."""
        if not keep:
            self._previous, self._current = self._current, {}
            self._gateways_before, self._gateways = self._gateways, {}
        self._assembled = {}

    def fork(self) -> RouteMemo:
        """A copy to build on in another thread. The previous generation's mappings are
        replaced by `advance`, never changed in place, so the copy shares them: a route write's
        fork copies only the current generation's."""
        return RouteMemo(
            dict(self._current),
            self._previous,
            dict(self._assembled),
            dict(self._gateways),
            self._gateways_before,
        )

    def gateway_hosts(self, mesh: Mesh, gateway: str) -> list[_Host] | None:
        """The virtual hosts of `gateway` (None if it is not in the mesh). Built whole when the
        gateway or any service changed since the last time (a route's translation reads which
        services exist), else from the last ones, re-assembling the hosts of changed routes."""
        spec = mesh.gateways.get(gateway)
        if spec is None:
            return None
        routes = mesh.routes_of(gateway)
        held = self._gateways.get(gateway) or self._gateways_before.get(gateway)
        if held is None or held.spec is not spec or held.services is not mesh.services:
            held = self._whole_gateway(mesh, gateway, spec, routes)
        elif held.routes is not routes:
            held = self._changed_gateway(mesh, held, routes)
        self._gateways[gateway] = held
        return list(held.hosts.values())

    def _whole_gateway(
        self, mesh: Mesh, gateway: str, spec: GatewaySpec, routes: Mapping[str, RouteSpec]
    ) -> _GatewayHosts:
        tables: dict[str, _HostRoutes] = {}
        for host, named in (gateway_table(mesh, gateway) or {}).items():
            entries = [self._entry(name, route, mesh) for name, route in named]
            tables[host] = _HostRoutes(list(map(precedence, named)), entries)
        hosts = {host: _host_of(host, table.entries) for host, table in tables.items()}
        return _GatewayHosts(spec, mesh.services, routes, tables, hosts)

    def _changed_gateway(
        self, mesh: Mesh, held: _GatewayHosts, routes: Mapping[str, RouteSpec]
    ) -> _GatewayHosts:
        """`held` after the routes that differ from `routes`: each leaves the hosts of its old
        spec and joins those of its new one, in order; only those hosts are re-assembled."""
        old = held.routes
        tables = dict(held.tables)
        copied: set[str] = set()  # tables are shared with `held`: copied before changing

        def table(host: str) -> _HostRoutes:
            if host not in copied:
                copied.add(host)
                tables[host] = tables[host].copy() if host in tables else _HostRoutes([], [])
            return tables[host]

        for name in old.keys() | routes.keys():
            before, after = old.get(name), routes.get(name)
            if before is after:
                continue
            if before is not None:
                for host in route_hosts(before, held.spec):
                    table(host).remove(precedence((name, before)))
            if after is not None:
                entry = self._entry(name, after, mesh)
                for host in route_hosts(after, held.spec):
                    table(host).insert(precedence((name, after)), entry)
        hosts = dict(held.hosts)
        for host in copied:
            if tables[host].entries:
                hosts[host] = _host_of(host, tables[host].entries)
            else:
                del tables[host]
                hosts.pop(host, None)
        return _GatewayHosts(held.spec, held.services, routes, tables, hosts)

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
        return _host_of(host, entries)

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


def _host_of(host: str, entries: Sequence[_Memoized]) -> _Host:
    """The virtual host `host` (name and domains) of these routes' bytes, in this order."""
    name = host.encode()
    parts = [wire.field(1, name), wire.field(2, name)]
    parts += [wire.field(3, entry.data) for entry in entries]
    clusters = frozenset().union(*(entry.clusters for entry in entries))
    return _Host(host, b"".join(parts), clusters)


Precedence = tuple[int, int, int, str]


@dataclass(slots=True)
class _HostRoutes:
    """One virtual host's routes in precedence order: their sort keys and memo entries side
    by side. Changed only on a copy nobody else holds (see RouteMemo._changed_gateway)."""

    keys: list[Precedence]
    entries: list[_Memoized]

    def copy(self) -> _HostRoutes:
        return _HostRoutes(list(self.keys), list(self.entries))

    def remove(self, key: Precedence) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            del self.keys[at], self.entries[at]

    def insert(self, key: Precedence, entry: _Memoized) -> None:
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.entries.insert(at, entry)


@dataclass(frozen=True, slots=True)
class _GatewayHosts:
    """A gateway's virtual hosts and what they were made from (held: compared by identity)."""

    spec: GatewaySpec
    services: Mapping[str, ServiceSpec]
    routes: Mapping[str, RouteSpec]
    tables: dict[str, _HostRoutes]
    hosts: dict[str, _Host]


def _services(spec: RouteSpec) -> tuple[str, ...]:
    return (*(d.service for d in spec.destinations), *(m.service for m in spec.mirrors))


def gateway_route_configuration(
    mesh: Mesh, gateway: str, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration | None:
    """Build `gateway:<gateway>` from the routes attached to it (for a gateway that redirects
    to HTTPS, one route doing that); None if the gateway is absent."""
    spec = mesh.gateways.get(gateway)
    if spec is not None and spec.https_redirect is not None:
        return _https_redirect(gateway, spec.https_redirect.port)
    memo = memo or RouteMemo()
    hosts = memo.gateway_hosts(mesh, gateway)
    if hosts is None:
        return None
    return memo._configuration(gateway_route_name(gateway), hosts)


_HTTPS_PORT = 443


def _https_redirect(gateway: str, port: int) -> route_pb2.RouteConfiguration:
    """Every request, whatever its host, answered with a 301 to the same URL over HTTPS. Port
    443 is left to the scheme (Envoy would write it out); the request's own port is never kept,
    the listener strips it."""
    to = Redirect(scheme="https", port=None if port == _HTTPS_PORT else port, status=301)
    everything = route_components_pb2.RouteMatch(prefix="/")
    return one_route_configuration(gateway_route_name(gateway), everything, redirect_action(to))


def outbound_route_configuration(
    mesh: Mesh, memo: RouteMemo | None = None
) -> route_pb2.RouteConfiguration:
    """Build the sidecars' `outbound` configuration: a virtual host per HTTP service and per
    other host a sidecar route names but tcp services (reached on their own port, see
    tcp_listeners)."""
    memo = memo or RouteMemo()
    hosts = []
    for host, routes in sidecar_table(mesh).items():
        if (spec := mesh.services.get(host)) is not None and spec.protocol == "tcp":
            continue
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
