"""Spoil a stored spec in place, as a hand edit or an older version would leave it: the row
changes, its references and the change log do not."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from meshplane.store.tables import ResourceRow

__all__ = ["BAD_VALUE", "UNKNOWN_FIELD", "spoil"]

# Service specs the model refuses: a field it does not know, a value it does not accept.
UNKNOWN_FIELD = {"protocol": "http", "no_such_field": 1}
BAD_VALUE = {"protocol": "carrier-pigeon"}


def spoil(engine: Engine, kind: str, name: str, spec: Any) -> int:
    """Overwrite the stored spec of (kind plural, name); return the row's version."""
    where = (ResourceRow.kind == kind, ResourceRow.name == name)
    with engine.begin() as connection:
        connection.execute(update(ResourceRow).where(*where).values(spec=spec))
        version = connection.scalar(select(ResourceRow.version).where(*where))
    assert isinstance(version, int), f"{kind}/{name} is not stored"
    return version
