"""TCP through the mesh: which routes carry TCP streams, and the write rules that keep them so.

A route carries TCP streams, not HTTP requests, when it is attached to a tcp gateway or to a
tls gateway (TLS passthrough: its `hosts` are SNI names), or when it is a sidecar route (no
`gateways`) whose `hosts` name a tcp service: the sidecars' outbound listener for that
service's `port` then splits connections between its destinations. Envoy's tcp_proxy sees
bytes, never a path, a header or a status, so such a route may carry only `hosts` (sidecar
and tls gateway routes) and `destinations`; every HTTP setting is refused (a 422 naming it)
rather than silently ignored. The same holds for authorization policies on a tcp service: they
match callers by identity; `paths` and `methods` are refused.

Each rule is checked from both sides, so no order of writes gets around it: a route naming a
tcp host or gateway, a service turning tcp (or taking a port another one has), a gateway turning
tcp, a policy on a tcp service. Each looks only at the neighbourhood the store reads for that
write (`store/mesh_rules.py`): the route's hosts and gateways, the routes on a service's host
and the policies targeting it, a gateway's routes, a policy's target, the services with a port.

One route per tcp host or gateway: two routes on one tcp service's host would have the same
default match (the route tables' shadowing rule refuses the second, naming both); a tcp gateway
takes one route, a second is a 409 naming both.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshplane.model.mesh import Mesh
from meshplane.model.policies import AuthorizationPolicySpec
from meshplane.model.problems import Problem
from meshplane.model.route_table import RouteTable
from meshplane.model.specs import GatewaySpec, RouteMatch, RouteSpec, ServiceSpec

__all__ = [
    "gateway_stream_route",
    "http_settings",
    "sidecar_stream_routes",
    "sni_routes",
    "stream_problems",
]

# Route fields that mean something to HTTP only, in the order a refusal names them.
_HTTP_ONLY = (
    "redirect",
    "direct_response",
    "timeout",
    "retries",
    "sticky",
    "rewrite",
    "request_headers",
    "response_headers",
    "mirrors",
    "fault",
    "rate_limit",
)
_DEFAULT_MATCH = RouteMatch()
_ONLY = "a route carrying TCP connections has only hosts and destinations"


def http_settings(route: RouteSpec) -> list[str]:
    """The fields of `route` that only HTTP can honour (`match` when it is not the default)."""
    given = ["match"] if route.match != _DEFAULT_MATCH else []
    return given + [k for k in _HTTP_ONLY if getattr(route, k)]


def _is_tcp(service: ServiceSpec | None) -> bool:
    return service is not None and service.protocol == "tcp"


def sidecar_stream_routes(mesh: Mesh) -> dict[str, tuple[str, RouteSpec]]:
    """The sidecar route (name, spec) of each tcp service whose host one names; when several
    do (which the shadowing rule refuses), the first by name. Work grows with the tcp services
    (the mesh's indexes), not with the routes."""
    found: dict[str, tuple[str, RouteSpec]] = {}
    for service in mesh.tcp_services():
        routes = mesh.sidecar_routes_on(service)
        if routes:
            found[service] = min(routes.items())
    return found


def sni_routes(table: RouteTable) -> dict[str, tuple[RouteSpec, list[str]]]:
    """A tls gateway's routes by name, each with the SNI names it wins (its table's hosts
    where it comes first by precedence); a route that wins none is not there."""
    found: dict[str, tuple[RouteSpec, list[str]]] = {}
    for host, ranked in table.items():
        name, route = ranked[0]
        found.setdefault(name, (route, []))[1].append(host)
    return found


def gateway_stream_route(mesh: Mesh, gateway: str) -> tuple[str, RouteSpec] | None:
    """The route a tcp gateway forwards to: the first attached by name (the rules allow one)."""
    routes = mesh.routes_of(gateway)
    return min(routes.items()) if routes else None


def stream_problems(after: Mesh, kind: str, name: str) -> list[Problem]:
    """What writing `kind`/`name` breaks of the TCP rules, in the mesh after the write."""
    if kind == "routes" and (route := after.routes.get(name)) is not None:
        return list(_route(after, name, route))
    if kind == "services" and (service := after.services.get(name)) is not None:
        return list(_service(after, name, service))
    if kind == "gateways" and (gateway := after.gateways.get(name)) is not None:
        return list(_gateway(after, name, gateway))
    if kind == "authorization-policies":
        policy = after.authorization_policies.get(name)
        if policy is not None and _is_tcp(after.services.get(policy.target)):
            return list(_policy(policy))
    return []


def _route(mesh: Mesh, name: str, route: RouteSpec) -> Iterator[Problem]:
    for gateway in route.gateways:
        spec = mesh.gateways.get(gateway)
        if spec is None or not spec.streams:
            continue
        for field in http_settings(route)[:1]:
            yield Problem(
                f"{field}: gateway {gateway!r} is a {spec.protocol} gateway; {_ONLY}", field
            )
        if spec.protocol == "tls":
            continue  # hosts are SNI names; one route per name is the shadowing rule's
        if route.hosts:
            yield Problem(
                f"hosts: gateway {gateway!r} is a tcp gateway, it sees no Host header; "
                "leave hosts out",
                "hosts",
            )
        others = sorted(n for n in mesh.routes_of(gateway) if n != name)
        if others:
            yield Problem(
                f"tcp gateway {gateway!r} forwards its port to one route: route {others[0]!r} "
                f"is attached to it already, so route {name!r} cannot be",
                conflict=True,
            )
    if route.gateways:
        return
    for host in route.hosts:
        if _is_tcp(mesh.services.get(host)):
            for field in http_settings(route)[:1]:
                yield Problem(f"{field}: host {host!r} is a tcp service; {_ONLY}", field)


def _service(mesh: Mesh, name: str, service: ServiceSpec) -> Iterator[Problem]:
    if service.protocol != "tcp":
        return
    if service.port is not None:
        for other, spec in sorted(mesh.tcp_services().items()):
            if other != name and spec.port == service.port:
                yield Problem(
                    f"port {service.port}: services {other!r} and {name!r} cannot share a mesh "
                    "port (each sidecar has one listener on it)",
                    conflict=True,
                )
    for policy_name, policy in sorted(mesh.authorization_policies.items()):
        if policy.target == name and (policy.paths or policy.methods):
            yield Problem(
                f"protocol: authorization policy {policy_name!r} narrows calls to this service "
                "by paths or methods, which a tcp service cannot be matched on; drop them first",
                "protocol",
            )
    for route_name, route in sorted(mesh.sidecar_routes_on(name).items()):
        if fields := http_settings(route):
            yield Problem(
                f"protocol: sidecar route {route_name!r} on host {name!r} has {fields[0]}, an "
                f"HTTP setting; {_ONLY}",
                "protocol",
            )


def _gateway(mesh: Mesh, name: str, gateway: GatewaySpec) -> Iterator[Problem]:
    if not gateway.streams:
        return
    tcp = gateway.protocol == "tcp"
    routes = sorted(mesh.routes_of(name).items())
    for route_name, route in routes:
        fields = (["hosts"] if tcp and route.hosts else []) + http_settings(route)
        if fields:
            only = _ONLY.replace("hosts and ", "") if tcp else _ONLY
            yield Problem(
                f"protocol: route {route_name!r} attached to this gateway has {fields[0]}, "
                f"which a {gateway.protocol} gateway cannot honour; {only}",
                "protocol",
            )
    if tcp and len(routes) > 1:
        yield Problem(
            f"a tcp gateway forwards its port to one route: routes {routes[0][0]!r} and "
            f"{routes[1][0]!r} are attached to gateway {name!r}",
            conflict=True,
        )


def _policy(policy: AuthorizationPolicySpec) -> Iterator[Problem]:
    for field in ("paths", "methods"):
        if getattr(policy, field):
            yield Problem(
                f"{field}: service {policy.target!r} is a tcp service; a policy on it matches "
                "callers by identity only, never paths or methods",
                field,
            )
