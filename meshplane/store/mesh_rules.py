"""Run the mesh-wide write rules (`meshplane.model.rules`) inside a write's transaction.

Only the neighbourhood a write can affect is read, found through the reference table: for a
route, the routes sharing its gateways (or the sidecars' routes), the gateways' specs, its
destination services and their endpoints; for a service, the routes that send to it; for a
gateway, its routes. So a route write costs work proportional to its neighbours, not the mesh.
A neighbour whose stored spec no longer validates is checked against as the translation sees it:
absent, with what refers to it; a write that refers to one is refused (InvalidMesh).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, String, and_, bindparam, or_, select

from meshplane.errors import Conflict, InvalidMesh
from meshplane.model import KINDS, Change, Mesh, RouteSpec, Spec, check_write
from meshplane.store.invalid import invalid_reference, parse_stored
from meshplane.store.tables import RefRow, ResourceRow

__all__ = ["check_mesh_rules"]

_CHECKED = frozenset({"routes", "services", "gateways"})


def check_mesh_rules(
    connection: Connection, kind: str, name: str, spec: Spec, old: Spec | None, revision: int
) -> None:
    """Refuse a put that breaks a mesh rule: InvalidMesh (422, naming the field) for a bad
    reference into the mesh, Conflict (409, naming both routes) for a route that could never
    match. `old` is the stored spec being replaced (None for a create, or when the stored one
    no longer validates). Call after the references are known to exist, before writing. One
    query, for the kinds the rules govern."""
    if kind not in _CHECKED:
        return
    before = _neighbourhood(connection, kind, name, spec, old)
    for ref in KINDS[kind].references(spec) if before.invalid else ():
        if (reason := before.invalid.get((ref.kind, ref.name))) is not None:
            raise InvalidMesh(invalid_reference(ref.kind, ref.name, reason), field=ref.field)
    after = before.with_changes([Change(revision, kind, name, spec)])
    problems = check_write(before, after, kind, name)
    invalid = [p for p in problems if not p.conflict]
    if invalid:
        raise InvalidMesh(invalid[0].message, field=invalid[0].field)
    if problems:
        raise Conflict("; ".join(p.message for p in problems))


def _neighbourhood(
    connection: Connection, kind: str, name: str, spec: Spec, old: Spec | None
) -> Mesh:
    params: dict[str, object] = {"name": name}
    sidecar = False
    if kind == "routes":
        assert isinstance(spec, RouteSpec)
        scopes = _route_scopes(spec, [] if old is None else [old])
        sidecar = None in scopes
        params["gateways"] = sorted(s for s in scopes if s is not None)
        params["services"] = sorted(
            {d.service for d in spec.destinations} | {m.service for m in spec.mirrors}
        )
    specs: list[tuple[str, str, Spec]] = []
    invalid: list[tuple[str, str, str]] = []
    for k, n, data in connection.execute(_query(kind, sidecar), params):
        parsed = parse_stored(k, data)
        if isinstance(parsed, str):
            invalid.append((k, n, parsed))
        else:
            specs.append((k, n, parsed))
    return Mesh.of(0, specs, invalid)


@functools.cache
def _query(kind: str, sidecar: bool) -> Select[str, str, dict[str, Any]]:
    """The neighbourhood of a write to `kind`, built once per shape (building a statement costs
    more than running it); parameters: `name`, and for routes `gateways` and `services`."""
    conditions = [and_(ResourceRow.kind == kind, ResourceRow.name == bindparam("name"))]
    if kind == "routes":
        gateways = bindparam("gateways", type_=String, expanding=True)
        services = bindparam("services", type_=String, expanding=True)
        conditions += [
            and_(ResourceRow.kind == "gateways", ResourceRow.name.in_(gateways)),
            and_(ResourceRow.kind == "services", ResourceRow.name.in_(services)),
            _referring("routes", "gateways", RefRow.to_name.in_(gateways)),
            _referring("endpoints", "services", RefRow.to_name.in_(services)),
        ]
        if sidecar:
            conditions.append(_sidecar_routes())
    else:
        conditions.append(_referring("routes", kind, RefRow.to_name == bindparam("name")))
    return select(ResourceRow.kind, ResourceRow.name, ResourceRow.spec).where(or_(*conditions))


def _route_scopes(new: RouteSpec, old: Iterable[Spec]) -> set[str | None]:
    scopes: set[str | None] = set()
    for route in (new, *old):
        assert isinstance(route, RouteSpec)
        scopes |= set(route.gateways) if route.gateways else {None}
    return scopes


def _referring(kind: str, to_kind: str, target: ColumnElement[bool]) -> ColumnElement[bool]:
    """Resources of `kind` that refer to a `to_kind` resource matching `target`."""
    referrers = select(RefRow.from_name).where(
        RefRow.from_kind == kind, RefRow.to_kind == to_kind, target
    )
    return and_(ResourceRow.kind == kind, ResourceRow.name.in_(referrers))


def _sidecar_routes() -> ColumnElement[bool]:
    """Routes attached to no gateway: the sidecars' routes."""
    on_gateways = select(RefRow.from_name).where(
        RefRow.from_kind == "routes", RefRow.to_kind == "gateways"
    )
    return and_(ResourceRow.kind == "routes", ResourceRow.name.not_in(on_gateways))
