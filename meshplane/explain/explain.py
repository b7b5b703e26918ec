"""Answer "which route does this request take, and why": pure, from the mesh at one revision.
(A connection through a tcp or tls gateway, or to a tcp service, is streams.py's.)

It walks the same route tables, in the same precedence order, that the translator turns into
Envoy route configurations (`meshplane.model.route_table`), and evaluates each route's match the
way Envoy does (matching.py), so its answer is what the proxy does.
"""

from __future__ import annotations

import re2

from meshplane.explain.destinations import route_destinations
from meshplane.explain.matching import (
    Request,
    failed_conditions,
    pick_virtual_host,
)
from meshplane.explain.models import (
    Candidate,
    ExplainRequest,
    Explanation,
    RoutePolicies,
)
from meshplane.explain.streams import explain_gateway_stream, explain_tcp_service
from meshplane.model import (
    Destination as DestinationSpec,
)
from meshplane.model import (
    Mesh,
    NamedRoute,
    Redirect,
    RouteSpec,
    RouteTable,
    default_service,
    gateway_table,
    precedence,
    sidecar_table,
)

__all__ = ["UnknownProxy", "explain"]

# What the proxy answers itself: no virtual host or route, or no destination service exists.
_NOT_FOUND = 404
_UNAVAILABLE = 503


class UnknownProxy(ValueError):
    """The gateway or source service named in the request is not in the mesh; `field` says
    which."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def explain(mesh: Mesh, ask: ExplainRequest) -> Explanation:
    """Explain how the proxy `ask` names handles the request. Raises UnknownProxy."""
    request = Request.of(ask.host, ask.path, ask.method, ask.headers)
    if ask.gateway is not None:
        table = gateway_table(mesh, ask.gateway)
        gateway = mesh.gateways.get(ask.gateway)
        if table is None or gateway is None:
            raise UnknownProxy(f"gateway {ask.gateway!r} does not exist", "gateway")
        if gateway.streams:
            return explain_gateway_stream(mesh, ask.gateway, gateway, request.host)
        proxy = f"gateway {ask.gateway!r}"
    else:
        if ask.source is None or ask.source not in mesh.services:
            raise UnknownProxy(f"service {ask.source!r} does not exist", "source")
        target = mesh.services.get(request.host)
        if target is not None and target.protocol == "tcp":
            return explain_tcp_service(mesh, ask.source, request.host)
        table = sidecar_table(mesh)
        proxy = f"the outbound listener of service {ask.source!r}'s sidecars"
    vhost = pick_virtual_host(request.host, table)
    elsewhere = _elsewhere(table, vhost)
    base = {"proxy": proxy, "host": request.host, "virtual_host": vhost}
    if vhost is None:
        hosts = ", ".join(sorted(table)) or "none"
        summary = f"404: no virtual host serves {request.host!r} (hosts: {hosts})"
        return _no_route(base, summary, elsewhere)
    routes = list(table[vhost])
    service = default_service(mesh, vhost) if ask.source is not None else None
    if service is not None:
        routes.append((f"default:{service}", _default_route(service)))
    candidates, chosen = _walk(routes, request)
    candidates += elsewhere
    if chosen is None:
        return _no_route(base, f"404: no route of virtual host {vhost!r} matches", candidates)
    return _outcome(mesh, request, chosen, base, candidates)


def _no_route(
    base: dict[str, str | None], summary: str, candidates: list[Candidate]
) -> Explanation:
    """The proxy answers 404 itself: nothing it has matches the request."""
    return Explanation(
        **base,
        route=None,
        outcome="no_route",
        status=_NOT_FOUND,
        summary=summary,
        candidates=candidates,
    )


def _default_route(service: str) -> RouteSpec:
    """The catch-all route a sidecar's host for `service` ends with (see route_table)."""
    return RouteSpec(hosts=[service], destinations=[DestinationSpec(service=service)])


def _elsewhere(table: RouteTable, vhost: str | None) -> list[Candidate]:
    """The proxy's routes that are not on the chosen virtual host, each once, by name."""
    here = {name for name, _ in table.get(vhost or "", ())}
    hosts: dict[str, list[str]] = {}
    for host, routes in table.items():
        for name, _ in routes:
            if name not in here:
                hosts.setdefault(name, []).append(host)
    return [
        Candidate(
            route=name,
            matched=False,
            chosen=False,
            reasons=[f"serves host {', '.join(sorted(hosts[name]))}, not this one"],
        )
        for name in sorted(hosts)
    ]


def _walk(routes: list[NamedRoute], request: Request) -> tuple[list[Candidate], NamedRoute | None]:
    """Evaluate every route in precedence order; the first match is chosen."""
    candidates: list[Candidate] = []
    chosen: NamedRoute | None = None
    for route in routes:
        failures = failed_conditions(route[1].match, request)
        if failures:
            candidates.append(
                Candidate(route=route[0], matched=False, chosen=False, reasons=failures)
            )
        elif chosen is None:
            chosen = route
            candidates.append(Candidate(route=route[0], matched=True, chosen=True, reasons=[]))
        else:
            reason = f"matches too, but {chosen[0]!r} comes first: {_why_first(chosen, route)}"
            candidates.append(
                Candidate(route=route[0], matched=True, chosen=False, reasons=[reason])
            )
    return candidates, chosen


_PATH_KINDS = ("an exact path", "a regex", "a prefix")


def _why_first(winner: NamedRoute, loser: NamedRoute) -> str:
    """Name the precedence rule (route_table's order) that puts `winner` before `loser`."""
    if loser[0].startswith("default:"):
        return "the default route comes after every route of its host"
    first, second = precedence(winner), precedence(loser)
    if first[0] != second[0]:
        return f"{_PATH_KINDS[first[0]]} comes before {_PATH_KINDS[second[0]]}"
    if first[1] != second[1]:
        return f"a longer prefix comes first ({-first[1]} vs {-second[1]} characters)"
    if first[2] != second[2]:
        return f"more conditions come first ({-first[2]} vs {-second[2]})"
    return "equal precedence, and its name sorts first"


def _outcome(
    mesh: Mesh,
    request: Request,
    chosen: NamedRoute,
    base: dict[str, str | None],
    candidates: list[Candidate],
) -> Explanation:
    name, spec = chosen
    policies = RoutePolicies.model_validate(spec, from_attributes=True)  # its fields are spec's
    common = {**base, "route": name, "candidates": candidates, "policies": policies}
    if spec.redirect is not None:
        location = _location(spec, spec.redirect, request)
        return Explanation(
            **common,
            outcome="redirected",
            status=spec.redirect.status,
            summary=f"{spec.redirect.status} redirect to {location} (route {name!r})",
            location=location,
        )
    if spec.direct_response is not None:
        status = spec.direct_response.status
        return Explanation(
            **common,
            outcome="direct_response",
            status=status,
            summary=f"{status} answered by the proxy itself (route {name!r})",
            body=spec.direct_response.body,
        )
    destinations = route_destinations(mesh, spec.destinations)
    if not destinations:
        return Explanation(
            **common,
            outcome="unavailable",
            status=_UNAVAILABLE,
            summary=f"503: none of route {name!r}'s destination services exists",
        )
    path = _rewritten_path(spec, request)
    shares = ", ".join(f"{d.percent:g}% to {d.cluster}" for d in destinations)
    return Explanation(
        **common,
        outcome="forwarded",
        status=None,
        summary=f"route {name!r} forwards {path}: {shares}",
        destinations=destinations,
        path=path,
        host_rewrite=spec.rewrite.host if spec.rewrite else None,
    )


def _rewritten_path(spec: RouteSpec, request: Request) -> str:
    """The path Envoy forwards: prefix or regex rewrite on the path; the query is kept."""
    path = request.path
    rewrite = spec.rewrite
    if rewrite is not None and rewrite.prefix is not None:
        matched = spec.match.prefix if spec.match.prefix is not None else spec.match.path
        path = rewrite.prefix + path[len(matched or "") :]
    elif rewrite is not None and rewrite.regex is not None:
        path = re2.sub(rewrite.regex.pattern, rewrite.regex.substitution, path)
    return path + _query_suffix(request)


def _location(spec: RouteSpec, redirect: Redirect, request: Request) -> str:
    scheme = redirect.scheme or "http"
    host = redirect.host or request.host
    port = f":{redirect.port}" if redirect.port else ""
    path = request.path
    if redirect.path is not None:
        path = redirect.path
    elif redirect.prefix is not None:
        matched = spec.match.prefix if spec.match.prefix is not None else spec.match.path
        path = redirect.prefix + path[len(matched or "") :]
    query = "" if redirect.strip_query else _query_suffix(request)
    return f"{scheme}://{host}{port}{path}{query}"


def _query_suffix(request: Request) -> str:
    return f"?{request.raw_query}" if request.raw_query else ""
