"""Run the mesh-wide write rules (`meshplane.model.rules`) inside a write's transaction.

Only the neighbourhood a write can affect is read, in one statement of index lookups (two for a
route that takes every host of its gateway, whose hosts come first): for a route,
the routes sharing a slot with it, before or after (same gateway or the sidecars, same host,
same path condition: the route-slot index, `route_slots.py`), the specs of its gateways and
destination services, and the endpoints of the services it picks a labelled subset of; for a
service, the routes that send to it (the reference table), and for a tcp service the services
with its port (the service-port index, `service_ports.py`) and, when it turns tcp, the policies
targeting it and the sidecar routes on its host; for a gateway, the routes on the hosts it adds
or drops (all of them when its old spec is unknown or it turns tcp or tls, none when its hosts
stay); for an authorization policy, its target service.
So a write costs work that grows with what it can affect, not with the routes and services
elsewhere in the mesh. A neighbour whose stored spec no longer validates is checked against as
the translation sees it: absent, with what refers to it; a write that refers to one is refused
(InvalidMesh).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Connection,
    String,
    and_,
    bindparam,
    select,
    union_all,
)

from meshplane.errors import Conflict, InvalidMesh
from meshplane.model import (
    KINDS,
    AuthorizationPolicySpec,
    Change,
    GatewaySpec,
    Mesh,
    RouteSpec,
    ServiceSpec,
    Spec,
    check_write,
)
from meshplane.store.driver_statements import decoded, driver_rows
from meshplane.store.in_lists import Arities, in_list_maker, padded
from meshplane.store.invalid import invalid_reference, parse_stored
from meshplane.store.route_slots import (
    gateway_routes,
    gateway_slot_hosts,
    hostless_gateways,
    routes_beside,
    sidecar_routes_on,
    slot_params,
)
from meshplane.store.service_ports import mesh_port, services_with_port
from meshplane.store.tables import RefRow, ResourceRow

__all__ = [
    "Reads",
    "check_mesh_rules",
    "holds_no_neighbours",
    "refuse_problems",
    "rule_neighbourhood",
]

_CHECKED = frozenset({"routes", "services", "gateways", "authorization-policies"})
# Every kind a neighbourhood reads (`_query`): the checked ones and the endpoints of subsets.
_ANY_NEIGHBOUR = (
    select(ResourceRow.id).where(ResourceRow.kind.in_(sorted(_CHECKED | {"endpoints"}))).limit(1)
)


def _names(param: str) -> BindParameter[str]:
    return bindparam(param, type_=String, expanding=True)


_GATEWAYS = select(ResourceRow.name, ResourceRow.spec).where(
    ResourceRow.kind == "gateways", ResourceRow.name.in_(_names("names"))
)


@dataclass(slots=True)
class Reads:
    """What neighbourhood reads that see one database state share: each gateway's hosts (None:
    not stored, or not valid) and each stored spec parsed (or why it does not validate). A
    batch keeps one for its reads before its writes and one for those after. `nothing_stored`
    says the state holds no resource a neighbourhood is made of (see `holds_no_neighbours`):
    every read finds nothing, so none is run."""

    gateway_hosts: dict[str, list[str] | None] = field(default_factory=dict)
    parsed: dict[tuple[str, str], Spec | str] = field(default_factory=dict)
    nothing_stored: bool = False

    def parse(self, kind: str, name: str, data: object) -> Spec | str:
        """The stored spec `data` (as the driver returned it: see driver_statements.py) of
        `kind`/`name`, parsed once per state."""
        key = (kind, name)
        if (known := self.parsed.get(key)) is None:
            known = self.parsed[key] = parse_stored(kind, decoded(data))
        return known


def holds_no_neighbours(connection: Connection) -> bool:
    """Whether the database holds no resource of the kinds neighbourhoods are made of: a
    whole mesh imported into a new control plane, whose 10,000 routes would otherwise each be
    looked around, before the batch, in an empty database (about 0.6 s)."""
    return connection.execute(_ANY_NEIGHBOUR).first() is None


def check_mesh_rules(
    connection: Connection, kind: str, name: str, spec: Spec, old: Spec | None, revision: int
) -> int:
    """Refuse a put that breaks a mesh rule: InvalidMesh (422, naming the field) for a bad
    reference into the mesh, Conflict (409, naming both routes) for a route that could never
    match. `old` is the stored spec being replaced (None for a create, or when the stored one
    no longer validates). Call after the references are known to exist, before writing.

    Return how many stored routes the check read: its work, which grows with the routes
    beside the write and not with the mesh (the tests hold it to that).
    """
    if kind not in _CHECKED:
        return 0
    before, routes_read = _neighbourhood(connection, kind, name, spec, old, Reads())
    after = before.with_changes([Change(revision, kind, name, spec)])
    refuse_problems(before, after, kind, name, spec)
    return routes_read


def rule_neighbourhood(
    connection: Connection,
    kind: str,
    name: str,
    spec: Spec,
    old: Spec | None,
    reads: Reads,
    *,
    stored: bool = True,
) -> Mesh | None:
    """What the rules of a put of `spec` over `old` look at, as the database holds it now
    (None when no rule needs a look). A batch reads it before its writes and again after,
    then asks `refuse_problems` about the two. `stored` False says `kind`/`name` is not in the
    database before the batch: a service created there needs no look (nothing stored refers
    to it, and the batch's routes that send to it check the pair from their side) unless it
    is a tcp service (stored routes may name its host, other services its port). `reads` is
    shared by calls that see the same database state."""
    if kind not in _CHECKED:
        return None
    if isinstance(spec, ServiceSpec) and not stored and spec.protocol != "tcp":
        return None
    return _neighbourhood(connection, kind, name, spec, old, reads)[0]


def refuse_problems(before: Mesh, after: Mesh, kind: str, name: str, spec: Spec) -> None:
    """InvalidMesh (naming the field) or Conflict for what writing `kind`/`name` makes wrong
    between `before` and `after`: a reference to a neighbour that no longer validates, or a
    problem of `model.rules`."""
    for ref in KINDS[kind].references(spec) if before.invalid else ():
        if (reason := before.invalid.get((ref.kind, ref.name))) is not None:
            raise InvalidMesh(invalid_reference(ref.kind, ref.name, reason), field=ref.field)
    problems = check_write(before, after, kind, name)
    invalid = [p for p in problems if not p.conflict]
    if invalid:
        raise InvalidMesh(invalid[0].message, field=invalid[0].field)
    if problems:
        raise Conflict("; ".join(p.message for p in problems))


def _neighbourhood(
    connection: Connection, kind: str, name: str, spec: Spec, old: Spec | None, reads: Reads
) -> tuple[Mesh, int]:
    """The mesh as far as the write can affect it, and how many routes that took."""
    if reads.nothing_stored:
        return Mesh(), 0
    shape, params = _parameters(connection, kind, spec, old, reads.gateway_hosts)
    arities, flat = padded(params)
    specs: list[tuple[str, str, Spec]] = []
    invalid: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for k, n, data in driver_rows(connection, _query(kind, shape, arities), {"name": name, **flat}):
        if (k, n) in seen:
            continue
        seen.add((k, n))
        parsed = reads.parse(k, n, data)
        if isinstance(parsed, str):
            invalid.append((k, n, parsed))
        else:
            specs.append((k, n, parsed))
    return Mesh.of(0, specs, invalid), sum(k == "routes" for k, _ in seen)


def _parameters(
    connection: Connection,
    kind: str,
    spec: Spec,
    old: Spec | None,
    gateway_hosts: dict[str, list[str] | None],
) -> tuple[str, dict[str, object]]:
    """The shape of the neighbourhood query (see `_query`) and its parameters besides `name`."""
    if isinstance(spec, RouteSpec):
        routes = [spec] if not isinstance(old, RouteSpec) else [spec, old]
        hostless = hostless_gateways(routes)
        subsets = [(d.service, d.labels, d.weight > 0) for d in spec.destinations]
        subsets += [(m.service, m.labels, m.percent > 0) for m in spec.mirrors]
        # Endpoints matter only to a labelled subset that gets traffic (`_subsets`).
        labelled = sorted({service for service, labels, used in subsets if labels and used})
        # A sidecar route's hosts may be tcp services, which allow only stream routes.
        hosts = [] if spec.gateways else spec.hosts
        return "subsets" if labelled else "", {
            **slot_params(routes, _hosts_of(connection, hostless, gateway_hosts)),
            "gateways": sorted({g for route in routes for g in route.gateways}),
            "services": sorted({service for service, _, _ in subsets} | set(hosts)),
            "labelled": labelled,
        }
    if isinstance(spec, ServiceSpec):
        port = mesh_port(spec)
        turns_tcp = spec.protocol == "tcp" and not (
            isinstance(old, ServiceSpec) and old.protocol == "tcp"
        )
        shape = "+".join(s for s, on in (("port", port is not None), ("tcp", turns_tcp)) if on)
        return shape, {} if port is None else {"port": port}
    if isinstance(spec, AuthorizationPolicySpec):
        return "", {"services": [spec.target]}
    if isinstance(spec, GatewaySpec):
        # A gateway turning tcp or tls: every route attached must carry streams.
        turns = isinstance(old, GatewaySpec) and spec.streams and spec.protocol != old.protocol
        if not isinstance(old, GatewaySpec) or turns:
            return "all", {}
        moved = set(old.hosts) ^ set(spec.hosts)
        return ("moved", {"slot_hosts": gateway_slot_hosts(moved)}) if moved else ("none", {})
    return "", {}


def _hosts_of(
    connection: Connection, gateways: set[str], known: dict[str, list[str] | None]
) -> dict[str, list[str]]:
    """The hosts of each of `gateways` that is stored and valid (a second statement, for a route
    that takes every host of its gateway: the slot index does not know them). `known` holds
    what was read before (None: not stored, or not valid) and learns what is read now."""
    missing = sorted(gateways - known.keys())
    if missing:
        known.update(dict.fromkeys(missing))
        for name, data in connection.execute(_GATEWAYS, {"names": missing}):
            spec = parse_stored("gateways", data)
            if isinstance(spec, GatewaySpec):
                known[name] = spec.hosts
    return {name: hosts for name in gateways if (hosts := known[name]) is not None}


@functools.cache
def _query(kind: str, shape: str, arities: Arities) -> CompoundSelect[str, str, dict[str, Any]]:
    """The neighbourhood of a write to `kind`, built once per shape and length of its lists
    (building a statement costs more than running it; see in_lists.py); for routes the shape
    says whether to read the endpoints of `labelled` services ("subsets"), for gateways which
    of its routes to read: "all", "moved" (those on the hosts it adds or drops) or "none", for
    services whether to read the services with its `port` ("port") and what a service turning
    tcp must check ("tcp": the policies targeting it, the sidecar routes on its host).

    A union of lookups, each through an index: joined by OR in one WHERE, PostgreSQL scans
    the whole table instead. A resource may come twice (a route by name and by slot)."""
    in_list = in_list_maker(arities)
    conditions = [and_(ResourceRow.kind == kind, ResourceRow.name == bindparam("name"))]
    if kind == "routes":
        conditions += [
            and_(ResourceRow.kind == "gateways", ResourceRow.name.in_(in_list("gateways"))),
            and_(ResourceRow.kind == "services", ResourceRow.name.in_(in_list("services"))),
            routes_beside(in_list),
        ]
        if shape == "subsets":
            labelled = RefRow.to_name.in_(in_list("labelled"))
            conditions.append(_referring("endpoints", "services", labelled))
    elif kind == "gateways":
        if shape != "none":
            conditions.append(gateway_routes(in_list if shape == "moved" else None))
    elif kind == "authorization-policies":
        conditions.append(
            and_(ResourceRow.kind == "services", ResourceRow.name.in_(in_list("services")))
        )
    else:
        target = RefRow.to_name == bindparam("name")
        conditions.append(_referring("routes", kind, target))
        if "port" in shape.split("+"):
            conditions.append(services_with_port())
        if "tcp" in shape.split("+"):
            conditions += [_referring("authorization-policies", kind, target), sidecar_routes_on()]
    columns = (ResourceRow.kind, ResourceRow.name, ResourceRow.spec)
    return union_all(*(select(*columns).where(condition) for condition in conditions))


def _referring(kind: str, to_kind: str, target: ColumnElement[bool]) -> ColumnElement[bool]:
    """Resources of `kind` that refer to a `to_kind` resource matching `target`."""
    referrers = select(RefRow.from_name).where(
        RefRow.from_kind == kind, RefRow.to_kind == to_kind, target
    )
    return and_(ResourceRow.kind == kind, ResourceRow.name.in_(referrers))
