"""Explain a connection rather than a request: at a tcp gateway, at a tls gateway (by SNI, TLS
passed through), or from a sidecar to a tcp service's mesh port.

The routes that carry TCP streams are the ones translation turns into tcp_proxy listeners
(`model.streams`, `xds/translate/tcp_listeners.py`): a tcp gateway's one route; a tls gateway's
routes by the SNI names they win, picked as Envoy picks a filter chain by server name (exact,
then the longest `*.` suffix, then `*`); the sidecar route on a tcp service's host, else the
service itself. A connection that nothing takes is refused or closed (no status: no HTTP).
"""

from __future__ import annotations

from meshplane.explain.destinations import route_destinations
from meshplane.explain.matching import pick_virtual_host
from meshplane.explain.models import Candidate, Explanation
from meshplane.model import (
    Destination,
    GatewaySpec,
    Mesh,
    RouteTable,
    gateway_stream_route,
    gateway_table,
    sidecar_stream_routes,
    sni_routes,
)

__all__ = ["explain_gateway_stream", "explain_tcp_service"]

_EVERY = "forwards every connection"


def explain_gateway_stream(mesh: Mesh, gateway: str, spec: GatewaySpec, host: str) -> Explanation:
    """A connection to a tcp gateway (`host` unused), or to a tls gateway with SNI `host`."""
    proxy = f"{spec.protocol} gateway {gateway!r}"
    if spec.protocol == "tcp":
        found = gateway_stream_route(mesh, gateway)
        base = {"proxy": proxy, "host": host, "virtual_host": None, "protocol": "tcp"}
        if found is None:
            return _closed(base, "connections are refused: no route is attached", [])
        return _forwarded(mesh, base, found[0], found[1].destinations, _EVERY, [])
    table = gateway_table(mesh, gateway) or {}
    chosen = pick_virtual_host(host, table)
    base = {"proxy": proxy, "host": host, "virtual_host": chosen, "protocol": "tls"}
    candidates = _by_sni(table, chosen)
    if chosen is None:
        names = ", ".join(sorted(table)) or "none"
        return _closed(
            base, f"closed: no route serves SNI {host!r} (SNI names: {names})", candidates
        )
    name, route = table[chosen][0]
    how = f"passes the TLS connection with SNI {host!r} through, unterminated,"
    return _forwarded(mesh, base, name, route.destinations, how, candidates)


def explain_tcp_service(mesh: Mesh, source: str, service: str) -> Explanation:
    """A connection from `source`'s app to its sidecar's listener for tcp service `service`."""
    port = mesh.services[service].port
    where = f"port {port}" if port is not None else "the port its bootstrap gives it"
    proxy = f"the {where} listener of service {source!r}'s sidecars for tcp service {service!r}"
    base = {"proxy": proxy, "host": service, "virtual_host": None, "protocol": "tcp"}
    found = sidecar_stream_routes(mesh).get(service)
    if found is None:
        own = [Destination(service=service)]
        return _forwarded(mesh, base, None, own, _EVERY, [])
    return _forwarded(mesh, base, found[0], found[1].destinations, _EVERY, [])


def _by_sni(table: RouteTable, chosen: str | None) -> list[Candidate]:
    """Each route of a tls gateway once: the one serving the chosen SNI name, the others with
    the names they serve instead."""
    names = {name: hosts for name, (_, hosts) in sni_routes(table).items()}
    winner = table[chosen][0][0] if chosen is not None else None
    return [
        Candidate(
            route=name,
            matched=name == winner,
            chosen=name == winner,
            reasons=[] if name == winner else [f"serves SNI {', '.join(sorted(hosts))}"],
        )
        for name, hosts in sorted(names.items())
    ]


def _forwarded(
    mesh: Mesh,
    base: dict[str, str | None],
    route: str | None,
    destinations: list[Destination],
    how: str,
    candidates: list[Candidate],
) -> Explanation:
    chosen = route_destinations(mesh, destinations)
    if not chosen:
        return _closed(base, "connections are refused: no destination service exists", candidates)
    shares = ", ".join(f"{d.percent:g}% to {d.cluster}" for d in chosen)
    by = f"route {route!r}" if route is not None else "the service itself (no route on it)"
    return Explanation(
        **base,
        route=route,
        outcome="forwarded",
        status=None,
        summary=f"{by} {how}: {shares}",
        candidates=candidates,
        destinations=chosen,
    )


def _closed(base: dict[str, str | None], summary: str, candidates: list[Candidate]) -> Explanation:
    return Explanation(
        **base, route=None, outcome="no_route", status=None, summary=summary, candidates=candidates
    )
