"""The service-port index: which tcp service has which mesh port, kept in SQL for the rules.

A tcp service with a `port` has one `service_ports` row, rewritten by the service's write (no
statement when its port stays) and dropped with it by the foreign key. The rule that no two
tcp services share a port (`model.streams`) reads the services with the written one's port
through it (`services_with_port`), not every service.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, bindparam, delete, insert, select

from meshplane.model import ServiceSpec
from meshplane.store.tables import ResourceRow, ServicePortRow

__all__ = ["PORTS_DELETE", "PORTS_INSERT", "mesh_port", "port_rows", "services_with_port"]

_SERVICES = "services"
PORTS_INSERT = insert(ServicePortRow)
PORTS_DELETE = delete(ServicePortRow).where(
    ServicePortRow.kind == _SERVICES, ServicePortRow.service == bindparam("name")
)


def mesh_port(spec: object) -> int | None:
    """The mesh port of a service spec (None: not a tcp service with a port)."""
    if isinstance(spec, ServiceSpec) and spec.protocol == "tcp":
        return spec.port
    return None


def port_rows(
    name: str, spec: ServiceSpec, old: object, *, created: bool
) -> tuple[bool, list[dict[str, object]]] | None:
    """What rewriting service `name`'s port row takes: whether its row goes first
    (`PORTS_DELETE` with `name`) and the rows to insert (`PORTS_INSERT`); None when it stays.
    A stored spec that no longer validates (`old` not a spec) may have left a row: dropped."""
    port = mesh_port(spec)
    if not created and isinstance(old, ServiceSpec) and mesh_port(old) == port:
        return None
    rows = [] if port is None else [{"kind": _SERVICES, "service": name, "port": port}]
    return not created, rows


def services_with_port() -> ColumnElement[bool]:
    """The services whose mesh port is the parameter `port`."""
    names = select(ServicePortRow.service).where(ServicePortRow.port == bindparam("port"))
    return and_(ResourceRow.kind == _SERVICES, ResourceRow.name.in_(names))
