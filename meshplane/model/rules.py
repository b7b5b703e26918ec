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
  every request it would (same path condition, and conditions at least as broad; see
  `shadowing`) is a 409 naming both routes. Only problems the write introduces are reported, so
  an older overlap does not block unrelated writes.
- TCP through the mesh (`streams`): routes carrying TCP connections hold only hosts and
  destinations, policies on tcp services only callers, a tcp gateway one route, and no two tcp
  services share a mesh port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from meshplane.model.mesh import Mesh
from meshplane.model.problems import Problem
from meshplane.model.shadowing import Shadowing, gateway_shadowing, route_shadowing
from meshplane.model.specs import HASH_LB_POLICIES, RouteSpec
from meshplane.model.streams import stream_problems

__all__ = ["Problem", "check_write", "selects"]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True if `labels` carry every pair of `selector` (how subsets pick endpoints)."""
    return all(labels.get(key) == value for key, value in selector.items())


def check_write(before: Mesh, after: Mesh, kind: str, name: str) -> list[Problem]:
    """Problems that writing (or deleting) `kind`/`name` introduces; empty if it may commit.

    The work grows with what the write can change, not with the mesh: a route write compares
    only the routes sharing a host and a path condition with it (before or after), a gateway
    write only the routes on the hosts it adds or drops.
    """
    streams = stream_problems(after, kind, name)
    if kind == "routes":
        route = after.routes.get(name)
        problems = [] if route is None else [*_sticky(after, route), *_subsets(after, route)]
        return problems + streams + _report(route_shadowing(before, after, name))
    if kind == "services":
        return [*_broken_sticky(after, name), *streams]
    if kind == "gateways":
        return streams + _report(gateway_shadowing(before, after, name))
    return streams


def _report(new: set[Shadowing]) -> list[Problem]:
    """One problem per hidden route and scope, naming the hosts where it is hidden."""
    hosts: dict[tuple[str, str, str], list[str]] = {}
    for s in sorted(new):
        hosts.setdefault((s.scope, s.winner, s.loser), []).append(s.host)
    return [
        Problem(Shadowing(scope, ", ".join(names), winner, loser).message(), conflict=True)
        for (scope, winner, loser), names in hosts.items()
    ]


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
