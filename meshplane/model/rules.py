"""Checks a write must pass against the rest of the mesh, before it is committed.

Pure: the store calls `check_write` inside the write's transaction with the mesh as it was and as
it would be, and refuses the write if any problem comes back, so nothing half-checked lands.

- A route's destination (or mirror) with labels that no endpoint of its service carries is a 422
  naming the labels field, when it would get traffic (weight or percent above 0) and the service
  has endpoints at all. An empty service is legal, and so is weight 0: that is how a canary subset
  is prepared before its instances start.
- Sticky sessions need a hash-based load balancer (ring_hash or maglev) on every destination
  service: a 422 on the route's `sticky`, or on the service's `lb_policy` when a service write
  would break a route that is already sticky.
- A route that can never match because another route on the same host comes first and matches
  every request it would (same path condition, and conditions at least as broad) is a 409 naming
  both routes. Only problems the write introduces are reported, so an older overlap does not
  block unrelated writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from meshplane.model.mesh import Mesh
from meshplane.model.route_table import NamedRoute, gateway_table, sidecar_table
from meshplane.model.specs import HASH_LB_POLICIES, HeaderMatch, QueryMatch, RouteMatch, RouteSpec

__all__ = ["Problem", "Shadowing", "check_write", "selects", "shadowing"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a write is refused: `conflict` problems are 409s, the others 422s on `field`."""

    message: str
    field: str | None = None
    conflict: bool = False


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


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True if `labels` carry every pair of `selector` (how subsets pick endpoints)."""
    return all(labels.get(key) == value for key, value in selector.items())


def check_write(before: Mesh, after: Mesh, kind: str, name: str) -> list[Problem]:
    """Problems that writing (or deleting) `kind`/`name` introduces; empty if it may commit."""
    if kind == "routes":
        route = after.routes.get(name)
        problems = [] if route is None else [*_sticky(after, route), *_subsets(after, route)]
        scopes = _scopes(before.routes.get(name)) | _scopes(route)
        return problems + _new_shadowing(before, after, scopes)
    if kind == "services":
        return list(_broken_sticky(after, name))
    if kind == "gateways":
        return _new_shadowing(before, after, {name})
    return []


def shadowing(mesh: Mesh, scopes: set[str | None]) -> set[Shadowing]:
    """Every route hidden by another in the given scopes (gateway names; None: the sidecars)."""
    found: set[Shadowing] = set()
    for scope in scopes:
        table = sidecar_table(mesh) if scope is None else gateway_table(mesh, scope)
        label = "sidecars'" if scope is None else f"gateway {scope!r}"
        for host, routes in (table or {}).items():
            found.update(Shadowing(label, host, *pair) for pair in _hidden(routes))
    return found


def _scopes(route: RouteSpec | None) -> set[str | None]:
    if route is None:
        return set()
    return set(route.gateways) if route.gateways else {None}


def _new_shadowing(before: Mesh, after: Mesh, scopes: set[str | None]) -> list[Problem]:
    """One problem per hidden route and scope, naming the hosts where it is hidden."""
    new = shadowing(after, scopes) - shadowing(before, scopes)
    hosts: dict[tuple[str, str, str], list[str]] = {}
    for s in sorted(new):
        hosts.setdefault((s.scope, s.winner, s.loser), []).append(s.host)
    return [
        Problem(Shadowing(scope, ", ".join(names), winner, loser).message(), conflict=True)
        for (scope, winner, loser), names in hosts.items()
    ]


def _hidden(routes: Sequence[NamedRoute]) -> Iterator[tuple[str, str]]:
    """(winner, loser) for each route an earlier one hides; the winner is the first such."""
    for i, (second, second_spec) in enumerate(routes):
        for first, first_spec in routes[:i]:
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


def _sticky(mesh: Mesh, route: RouteSpec) -> Iterator[Problem]:
    if route.sticky is None:
        return
    for destination in route.destinations:
        service = mesh.services.get(destination.service)
        if service is not None and service.lb_policy not in HASH_LB_POLICIES:
            yield Problem(
                f"service {destination.service!r} balances with {service.lb_policy}; sticky "
                "sessions need its lb_policy to be ring_hash or maglev",
                "sticky",
            )


def _subsets(mesh: Mesh, route: RouteSpec) -> Iterator[Problem]:
    targets = [
        (f"destinations[{i}].labels", d.service, d.labels, d.weight > 0)
        for i, d in enumerate(route.destinations)
    ]
    targets += [
        (f"mirrors[{i}].labels", m.service, m.labels, m.percent > 0)
        for i, m in enumerate(route.mirrors)
    ]
    for field, service, labels, used in targets:
        endpoints = mesh.endpoints_of(service)
        if not labels or not used or not endpoints:
            continue
        if not any(selects(labels, e.labels) for e in endpoints.values()):
            carried = sorted({f"{k}={v}" for e in endpoints.values() for k, v in e.labels.items()})
            wanted = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            yield Problem(
                f"no endpoint of service {service!r} carries {wanted} (its endpoints carry: "
                f"{', '.join(carried) or 'no labels'}); give it weight 0 to prepare a subset "
                "before its endpoints exist",
                field,
            )


def _broken_sticky(mesh: Mesh, service: str) -> Iterator[Problem]:
    spec = mesh.services.get(service)
    if spec is None or spec.lb_policy in HASH_LB_POLICIES:
        return
    for name, route in sorted(mesh.routes.items()):
        if route.sticky is not None and any(d.service == service for d in route.destinations):
            yield Problem(
                f"route {name!r} uses sticky sessions to this service, which need lb_policy "
                "ring_hash or maglev",
                "lb_policy",
            )
