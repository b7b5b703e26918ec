"""Run the mesh-wide write rules (`meshplane.model.rules`) inside a write's transaction.

Only the neighbourhood a write can affect is read, found through the reference table: for a
route, the routes sharing its gateways (or the sidecars' routes), the gateways' specs, its
destination services and their endpoints; for a service, the routes that send to it; for a
gateway, its routes. So a route write costs work proportional to its neighbours, not the mesh.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshplane.errors import Conflict, InvalidMesh
from meshplane.model import KINDS, Change, Mesh, RouteSpec, Spec
from meshplane.model.rules import check_write
from meshplane.store.tables import RefRow, ResourceRow

__all__ = ["check_mesh_rules"]

_CHECKED = frozenset({"routes", "services", "gateways"})


async def check_mesh_rules(
    session: AsyncSession, kind: str, name: str, spec: Spec, revision: int
) -> None:
    """Refuse a put that breaks a mesh rule: InvalidMesh (422, naming the field) for a bad
    reference into the mesh, Conflict (409, naming both routes) for a route that could never
    match. Call after the references are known to exist, before writing."""
    if kind not in _CHECKED:
        return
    before = await _neighbourhood(session, kind, name, spec)
    after = before.with_changes([Change(revision, kind, name, spec)])
    problems = check_write(before, after, kind, name)
    invalid = [p for p in problems if not p.conflict]
    if invalid:
        raise InvalidMesh(invalid[0].message, field=invalid[0].field)
    if problems:
        raise Conflict("; ".join(p.message for p in problems))


async def _neighbourhood(session: AsyncSession, kind: str, name: str, spec: Spec) -> Mesh:
    conditions: list[ColumnElement[bool]] = []
    if kind == "routes":
        assert isinstance(spec, RouteSpec)
        old = await _load(session, _named("routes", [name]))
        scopes = _route_scopes(spec, [s for _, _, s in old])
        services = {d.service for d in spec.destinations} | {m.service for m in spec.mirrors}
        gateways = [s for s in scopes if s is not None]
        conditions += [
            _named("gateways", gateways),
            _named("services", services),
            _referring("routes", "gateways", gateways),
            _referring("endpoints", "services", services),
        ]
        if None in scopes:
            conditions.append(_sidecar_routes())
    elif kind == "services":
        conditions += [_named("services", [name]), _referring("routes", "services", [name])]
    else:
        conditions += [_named("gateways", [name]), _referring("routes", "gateways", [name])]
    return Mesh.of(0, await _load(session, or_(*conditions)))


def _route_scopes(new: RouteSpec, old: Iterable[Spec]) -> set[str | None]:
    scopes: set[str | None] = set()
    for route in (new, *old):
        assert isinstance(route, RouteSpec)
        scopes |= set(route.gateways) if route.gateways else {None}
    return scopes


def _named(kind: str, names: Iterable[str]) -> ColumnElement[bool]:
    wanted = sorted(set(names))
    if not wanted:
        return false()
    return and_(ResourceRow.kind == kind, ResourceRow.name.in_(wanted))


def _referring(kind: str, to_kind: str, names: Iterable[str]) -> ColumnElement[bool]:
    """Resources of `kind` that refer to any of `names` of `to_kind`."""
    wanted = sorted(set(names))
    if not wanted:
        return false()
    referrers = select(RefRow.from_name).where(
        RefRow.from_kind == kind, RefRow.to_kind == to_kind, RefRow.to_name.in_(wanted)
    )
    return and_(ResourceRow.kind == kind, ResourceRow.name.in_(referrers))


def _sidecar_routes() -> ColumnElement[bool]:
    """Routes attached to no gateway: the sidecars' routes."""
    on_gateways = select(RefRow.from_name).where(
        RefRow.from_kind == "routes", RefRow.to_kind == "gateways"
    )
    return and_(ResourceRow.kind == "routes", ResourceRow.name.not_in(on_gateways))


async def _load(session: AsyncSession, where: ColumnElement[bool]) -> list[tuple[str, str, Spec]]:
    rows = await session.execute(
        select(ResourceRow.kind, ResourceRow.name, ResourceRow.spec).where(where)
    )
    return [(kind, name, KINDS[kind].parse(data)) for kind, name, data in rows]
