"""A statement run on the driver's cursor (store/driver_statements.py) answers what SQLAlchemy
answers, inside the caller's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, select

from meshplane.model import RouteSpec, ServiceSpec
from meshplane.store import Store
from meshplane.store.driver_statements import decoded, driver_rows
from meshplane.store.repo import bump_revision, put_resource
from meshplane.store.tables import ResourceRow

_NAMED = select(ResourceRow.kind, ResourceRow.name, ResourceRow.spec).where(
    ResourceRow.kind == "services",
    ResourceRow.name.in_([bindparam("a", type_=String), bindparam("b", type_=String)]),
)


def _put(connection: Connection, kind: str, name: str, spec: Any) -> None:
    put_resource(
        connection,
        kind,
        name,
        spec,
        revision=bump_revision(connection),
        if_match=None,
        source="api",
        now=datetime.now(UTC),
    )


async def test_driver_rows_answer_as_sqlalchemy_does(store: Store) -> None:
    await store.put("services", "shop", ServiceSpec(protocol="http2"))
    await store.put("services", "cart", ServiceSpec())

    def both(connection: Connection) -> tuple[list[Any], list[Any]]:
        params = {"a": "shop", "b": "cart"}
        ours = [(k, n, decoded(s)) for k, n, s in driver_rows(connection, _NAMED, params)]
        theirs = [tuple(row) for row in connection.execute(_NAMED, params)]
        return sorted(ours), sorted(theirs)

    ours, theirs = await store.database.read(both)
    assert ours == theirs
    assert {name for _, name, _ in ours} == {"shop", "cart"}
    assert dict((n, s["protocol"]) for _, n, s in ours) == {"shop": "http2", "cart": "http"}


async def test_driver_rows_see_the_transactions_own_writes(store: Store) -> None:
    """The cursor is the transaction's connection's: a batch's reads after its writes see them,
    and nothing of them stays once it rolls back."""
    route = RouteSpec.model_validate({"destinations": [{"service": "shop"}], "hosts": ["shop"]})

    def write_then_read(connection: Connection) -> list[str]:
        _put(connection, "services", "shop", ServiceSpec())
        _put(connection, "routes", "to-shop", route)
        names = [n for _, n, _ in driver_rows(connection, _NAMED, {"a": "shop", "b": "none"})]
        connection.rollback()
        return names

    assert await store.database.write(write_then_read) == ["shop"]
    assert await store.database.read(lambda c: driver_rows(c, _NAMED, {"a": "shop", "b": ""})) == []
