"""Which routes each proxy sees, per host, in the order Envoy tries them.

The translator builds virtual hosts from these tables, the write rules look for routes that can
never match in them, and `explain` walks them; one definition keeps the three in agreement.

Precedence inside one host (Envoy takes the first route that matches, so this order is what
users see):

1. path condition: exact `path` first, then `regex`, then `prefix`, longest prefix first;
2. then the route with more conditions (each header and query condition counts one, a method
   list counts one);
3. then the route name, so equal routes have a stable, documented order.

A sidecar's host named after an HTTP service ends with a catch-all route to that service (after
every user route for that host), so a caller reaches every service without writing a route.

A route's `slots` say where it sits in these tables from its spec alone (a gateway route without
hosts takes every host of its gateway); only routes sharing a slot can hide one another, so the
store indexes routes by slot and a write's rule check reads only the routes beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from meshplane.model.mesh import Mesh
from meshplane.model.specs import GatewaySpec, RouteMatch, RouteSpec

__all__ = [
    "NamedRoute",
    "PathCondition",
    "RouteTable",
    "Slot",
    "conditions",
    "default_service",
    "gateway_table",
    "path_condition",
    "precedence",
    "rank",
    "route_hosts",
    "route_slots",
    "sidecar_table",
]

NamedRoute = tuple[str, RouteSpec]
# Host name -> the routes of that host, in precedence order.
RouteTable = Mapping[str, Sequence[NamedRoute]]
# A match's one path condition: ("path" | "regex" | "prefix", its value).
PathCondition = tuple[str, str]
_PATH_ORDER = {"path": 0, "regex": 1, "prefix": 2}  # rule 1 of the precedence


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a route sits in the tables, as its spec says: on gateway `scope` (None: the
    sidecars), on `host` (None: every host of that gateway), with path condition `path`."""

    scope: str | None
    host: str | None
    path: PathCondition


def path_condition(match: RouteMatch) -> PathCondition:
    """The path condition of `match`; routes whose conditions differ never hide one another."""
    if match.path is not None:
        return ("path", match.path)
    if match.regex is not None:
        return ("regex", match.regex)
    return ("prefix", match.prefix or "/")


def route_slots(spec: RouteSpec) -> frozenset[Slot]:
    """Every slot of a route: one per gateway (or the sidecars) and host it names."""
    path = path_condition(spec.match)
    scopes: list[str | None] = list(spec.gateways) if spec.gateways else [None]
    hosts: list[str | None] = list(spec.hosts) if spec.hosts else [None]
    return frozenset(Slot(scope, host, path) for scope in scopes for host in hosts)


def conditions(match: RouteMatch) -> int:
    """How many conditions besides the path a match has (rule 2 of the precedence)."""
    return len(match.headers) + len(match.query) + (1 if match.methods else 0)


def rank(spec: RouteSpec) -> tuple[int, int, int]:
    """Rules 1 and 2 of the precedence for one route (the spec keeps it: `RouteSpec.rank`)."""
    kind, value = path_condition(spec.match)
    length = len(value) if kind == "prefix" else 0
    return (_PATH_ORDER[kind], -length, -conditions(spec.match))


def precedence(route: NamedRoute) -> tuple[int, int, int, str]:
    """Sort key putting the route Envoy should try first first (see the module docstring)."""
    name, spec = route
    return (*spec.rank, name)


def gateway_table(mesh: Mesh, gateway: str) -> dict[str, list[NamedRoute]] | None:
    """The routes attached to `gateway` by host; None if the gateway is not in the mesh.

    A route without `hosts` serves every host of the gateway. Reads only the gateway's own
    routes (`Mesh.routes_of`); sorted once, so each host's list is in order and the hosts come
    in the order of their first route.
    """
    spec = mesh.gateways.get(gateway)
    if spec is None:
        return None
    hosts: dict[str, list[NamedRoute]] = {}
    for name, route in sorted(mesh.routes_of(gateway).items(), key=precedence):
        for host in route_hosts(route, spec):
            hosts.setdefault(host, []).append((name, route))
    return hosts


def route_hosts(route: RouteSpec, gateway: GatewaySpec) -> Iterable[str]:
    """The hosts of `gateway` a route attached to it serves: its own, else the gateway's."""
    return dict.fromkeys(route.hosts or gateway.hosts)


def sidecar_table(mesh: Mesh) -> dict[str, list[NamedRoute]]:
    """The sidecars' outbound routes by host: one host per HTTP service (possibly without user
    routes: its default route serves it) and one per other host a sidecar route names.

    TCP services get no host: they cannot be reached through an HTTP listener.
    """
    hosts: dict[str, list[NamedRoute]] = {
        service: [] for service, spec in mesh.services.items() if spec.protocol != "tcp"
    }
    for name, route in mesh.routes.items():
        if not route.gateways:
            for host in dict.fromkeys(route.hosts):
                hosts.setdefault(host, []).append((name, route))
    return {host: sorted(routes, key=precedence) for host, routes in hosts.items()}


def default_service(mesh: Mesh, host: str) -> str | None:
    """The service a sidecar's catch-all route for `host` goes to, if that host has one."""
    spec = mesh.services.get(host)
    return host if spec is not None and spec.protocol != "tcp" else None
