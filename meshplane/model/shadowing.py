"""Routes that can never match: another route on the same host comes first and matches every
request they would (same path condition, and conditions at least as broad).

Envoy takes the first matching route of a host (in `route_table`'s precedence), so such a route
is dead configuration; the write rules refuse a write that makes one. Hiding is decided
conservatively: regexes are compared as text.

Only routes sharing a scope, a host and a path condition can hide one another, and a write
changes only the routes at its own places, so `route_shadowing` and `gateway_shadowing` look
there alone: a write's work does not grow with the routes elsewhere in the mesh.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from meshplane.model.mesh import Mesh
from meshplane.model.route_table import (
    NamedRoute,
    PathCondition,
    RouteTable,
    gateway_table,
    path_condition,
    sidecar_table,
)
from meshplane.model.specs import HeaderMatch, QueryMatch, RouteMatch, RouteSpec

__all__ = ["Shadowing", "gateway_shadowing", "route_shadowing", "shadowing"]


@dataclass(frozen=True, slots=True, order=True)
class Shadowing:
    """On `host` of `scope` ("gateway 'edge'" or "sidecars'"), `winner` hides `loser` entirely."""

    scope: str
    host: str
    winner: str
    loser: str

    def message(self) -> str:
        return (
            f"route {self.loser!r} can never match on {self.scope} host {self.host}: route "
            f"{self.winner!r} comes first and matches every request it would; make the matches "
            "differ or remove one"
        )


def shadowing(mesh: Mesh, scopes: set[str | None], hosts: set[str] | None = None) -> set[Shadowing]:
    """Every route hidden by another in the given scopes (gateway names; None: the sidecars),
    on every host or only on `hosts`."""
    found: set[Shadowing] = set()
    for scope in scopes:
        for host, routes in _table(mesh, scope).items():
            if hosts is None or host in hosts:
                found.update(Shadowing(_label(scope), host, *pair) for pair in _hidden(routes))
    return found


def route_shadowing(before: Mesh, after: Mesh, name: str) -> set[Shadowing]:
    """New shadowing from a write of route `name`: looked for only where it is or was, among
    the routes with its path condition there (the only ones it can hide or uncover)."""
    old, new = before.routes.get(name), after.routes.get(name)
    paths = {path_condition(r.match) for r in (old, new) if r is not None}
    found: set[Shadowing] = set()
    for scope in _scopes(old) | _scopes(new):
        was, now = _table(before, scope), _table(after, scope)
        for host in _hosts_of(was, name) | _hosts_of(now, name):
            for path in paths:
                pairs = _new_pairs(_at(was, host, path), _at(now, host, path), name)
                found.update(Shadowing(_label(scope), host, *pair) for pair in pairs)
    return found


def gateway_shadowing(before: Mesh, after: Mesh, gateway: str) -> set[Shadowing]:
    """New shadowing from a gateway write: only the hosts it adds or drops change their routes
    (all of them when it appears or goes)."""
    old, new = before.gateways.get(gateway), after.gateways.get(gateway)
    moved = None if old is None or new is None else set(old.hosts) ^ set(new.hosts)
    return shadowing(after, {gateway}, moved) - shadowing(before, {gateway}, moved)


def _table(mesh: Mesh, scope: str | None) -> RouteTable:
    return sidecar_table(mesh) if scope is None else gateway_table(mesh, scope) or {}


def _label(scope: str | None) -> str:
    return "sidecars'" if scope is None else f"gateway {scope!r}"


def _scopes(route: RouteSpec | None) -> set[str | None]:
    if route is None:
        return set()
    return set(route.gateways) if route.gateways else {None}


def _hosts_of(table: RouteTable, name: str) -> set[str]:
    return {host for host, routes in table.items() if any(n == name for n, _ in routes)}


def _at(table: RouteTable, host: str, path: PathCondition) -> list[NamedRoute]:
    """The routes on `host` with path condition `path`, in precedence order."""
    return [r for r in table.get(host, ()) if path_condition(r[1].match) == path]


def _new_pairs(
    before: Sequence[NamedRoute], after: Sequence[NamedRoute], name: str
) -> Iterator[tuple[str, str]]:
    """(winner, loser) hidden in `after` and not in `before`: the routes of one host and path
    condition, equal but for route `name`. Only `name` and the routes it hides (or hid) can
    have a new winner; any other route has the same covering routes before it in both, so
    this compares each route a bounded number of times, not every pair."""
    for loser in {name} | _hidden_by(before, name) | _hidden_by(after, name):
        winner = _winner(after, loser)
        if winner is not None and winner != _winner(before, loser):
            yield winner, loser


def _hidden_by(routes: Sequence[NamedRoute], name: str) -> set[str]:
    """The routes after `name` that it covers."""
    names = [n for n, _ in routes]
    if name not in names:
        return set()
    i = names.index(name)
    spec = routes[i][1]
    return {n for n, s in routes[i + 1 :] if _covers(spec.match, s.match)}


def _winner(routes: Sequence[NamedRoute], loser: str) -> str | None:
    """The first route before `loser` that covers it (None if none does, or it is absent)."""
    for i, (name, spec) in enumerate(routes):
        if name == loser:
            return next((n for n, s in routes[:i] if _covers(s.match, spec.match)), None)
    return None


def _hidden(routes: Sequence[NamedRoute]) -> Iterator[tuple[str, str]]:
    """(winner, loser) for each route an earlier one hides; the winner is the first such.
    Compared within each path condition only: routes with different ones never cover."""
    groups: dict[PathCondition, list[NamedRoute]] = {}
    for route in routes:
        groups.setdefault(path_condition(route[1].match), []).append(route)
    for group in groups.values():
        for i, (second, second_spec) in enumerate(group):
            for first, first_spec in group[:i]:
                if _covers(first_spec.match, second_spec.match):
                    yield first, second
                    break


def _covers(first: RouteMatch, second: RouteMatch) -> bool:
    """True if every request `second` matches also matches `first` (decided conservatively:
    regexes are compared as text)."""
    if (first.prefix, first.path, first.regex) != (second.prefix, second.path, second.regex):
        return False
    if first.methods and not (second.methods and set(second.methods) <= set(first.methods)):
        return False
    return all(any(_implies(b, a) for b in second.headers) for a in first.headers) and all(
        any(_implies(b, a) for b in second.query) for a in first.query
    )


def _implies(given: HeaderMatch | QueryMatch, wanted: HeaderMatch | QueryMatch) -> bool:
    """True if a request meeting `given` meets `wanted` (both name the same header or param)."""
    if given.name != wanted.name:
        return False
    if given == wanted:
        return True
    # Any value, exact or matching a regex, is a present one.
    return wanted.present is True and given.present is not False
