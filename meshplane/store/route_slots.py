"""The route-slot index: where each route sits in the route tables, kept in SQL for the rules.

A route's slots (`meshplane.model.route_slots`) are stored as `route_slots` rows, rewritten by
the write of the route (no statement when they do not change) and dropped with it by the
foreign key. The write rules select the routes beside a route by slot (`routes_beside`), so a
route write reads the routes that could hide it or that it could hide, not every route of its
gateway. A route that takes every host of its gateway is stored with host '' (the index does
not follow gateways' hosts, so a gateway write touches no other row); to find its neighbours
the caller names that gateway's hosts. A row stores the path condition as a digest: values
may be long, and two conditions with one digest would only make a read larger, never a check
wrong (the model compares the specs).

The rows say what the route's last write said: a stored spec edited in place keeps its old
slots, as it keeps its old references (it is out of the mesh until written valid again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    insert,
    select,
)

from meshplane.model import PathCondition, RouteSpec, Slot, route_slots
from meshplane.store.in_lists import InList
from meshplane.store.tables import ResourceRow, RouteSlotRow

__all__ = [
    "SLOTS_DELETE",
    "SLOTS_INSERT",
    "gateway_routes",
    "gateway_slot_hosts",
    "hostless_gateways",
    "routes_beside",
    "sidecar_routes_on",
    "slot_params",
    "slot_rows",
]

_ROUTES = "routes"
_EVERY_HOST = ""  # the host column of a route that takes every host of its gateway
_SIDECARS = ""  # the scope column of a sidecar route
SLOTS_INSERT = insert(RouteSlotRow)
SLOTS_DELETE = delete(RouteSlotRow).where(
    RouteSlotRow.kind == _ROUTES, RouteSlotRow.route == bindparam("name")
)


def _digest(path: PathCondition) -> str:
    """The stored form of a path condition (migration 0003 computes the same)."""
    kind, value = path
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _row(name: str, slot: Slot) -> dict[str, str]:
    return {
        "kind": _ROUTES,
        "route": name,
        "scope": _SIDECARS if slot.scope is None else slot.scope,
        "host": _EVERY_HOST if slot.host is None else slot.host,
        "path": _digest(slot.path),
    }


def slot_rows(
    name: str, spec: RouteSpec, old: RouteSpec | None, *, created: bool
) -> tuple[bool, list[dict[str, str]]] | None:
    """What rewriting route `name`'s slots takes: whether its rows go first (`SLOTS_DELETE`
    with `name`) and the rows to insert (`SLOTS_INSERT`); None when they stay as they are."""
    slots = route_slots(spec)
    if not created and old is not None and route_slots(old) == slots:
        return None
    rows = sorted((_row(name, slot) for slot in slots), key=lambda r: (r["scope"], r["host"]))
    return not created, rows


def hostless_gateways(routes: Iterable[RouteSpec]) -> set[str]:
    """The gateways on which one of `routes` takes every host: `slot_params` needs their hosts."""
    return {
        slot.scope
        for route in routes
        for slot in route_slots(route)
        if slot.scope is not None and slot.host is None
    }


def slot_params(
    routes: Iterable[RouteSpec], gateway_hosts: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Parameters for `routes_beside` that find every route sharing a slot with `routes`, a
    route that takes every host of its gateway being on each of `gateway_hosts[gateway]`."""
    rows = []
    for slot in {slot for route in routes for slot in route_slots(route)}:
        rows.append(_row("", slot))
        if slot.host is None and slot.scope is not None:
            hosts = gateway_hosts.get(slot.scope, ())
            rows += (_row("", replace(slot, host=host)) for host in hosts)
    return {
        "slot_scopes": sorted({r["scope"] for r in rows}),
        "slot_paths": sorted({r["path"] for r in rows}),
        "slot_hosts": sorted({r["host"] for r in rows} | {_EVERY_HOST}),
    }


def routes_beside(in_list: InList) -> ColumnElement[bool]:
    """Routes with a slot in scope `slot_scopes` and path `slot_paths`, on a host in
    `slot_hosts` (which holds '': every host of the gateway), those lists' parameters made by
    `in_list`. A superset of the routes sharing a slot when several are asked for at once
    (each is a cross product), never less."""
    slot = and_(
        RouteSlotRow.scope.in_(in_list("slot_scopes")),
        RouteSlotRow.path.in_(in_list("slot_paths")),
        RouteSlotRow.host.in_(in_list("slot_hosts")),
    )
    return _routes_with(slot)


def gateway_slot_hosts(moved: Iterable[str]) -> list[str]:
    """`slot_hosts` for the routes a gateway's hosts `moved` (added or dropped) move."""
    return sorted({*moved, _EVERY_HOST})


def gateway_routes(in_list: InList | None = None) -> ColumnElement[bool]:
    """Routes on gateway `name`; with `in_list`, only those on a host in `slot_hosts`."""
    conditions = [RouteSlotRow.scope == bindparam("name")]
    if in_list is not None:
        conditions.append(RouteSlotRow.host.in_(in_list("slot_hosts")))
    return _routes_with(and_(*conditions))


def sidecar_routes_on() -> ColumnElement[bool]:
    """Sidecar routes naming host `name`, whatever their path (through `ix_route_slots_host`)."""
    return _routes_with(
        and_(RouteSlotRow.scope == _SIDECARS, RouteSlotRow.host == bindparam("name"))
    )


def _routes_with(slot: ColumnElement[bool]) -> ColumnElement[bool]:
    names = select(RouteSlotRow.route).where(slot)
    return and_(ResourceRow.kind == _ROUTES, ResourceRow.name.in_(names))
