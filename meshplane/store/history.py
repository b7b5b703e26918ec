"""The change log read as the mesh's history: per resource a revision changed, when, who, what.

Newest first, paged by revision (`before`), filtered by kind, name and who (the API token's
name, "auto" for auto-registration). The log keeps the newest `CHANGE_LOG_KEEP` revisions; rows
written before who and when were kept have them None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, select

from meshplane.store.tables import ChangeRow

__all__ = ["HistoryEntry", "history"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One resource one revision changed."""

    revision: int
    at: datetime | None
    kind: str
    name: str
    op: Literal["put", "delete"]
    by: str | None
    source: str


def history(
    connection: Connection,
    *,
    kind: str | None = None,
    name: str | None = None,
    by: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[HistoryEntry]:
    """The newest `limit` entries (of revisions below `before`, if given) that match."""
    row = ChangeRow
    query = select(row.revision, row.at, row.kind, row.name, row.spec, row.by, row.source)
    for column, value in ((row.kind, kind), (row.name, name), (row.by, by)):
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        query = query.where(row.revision < before)
    query = query.order_by(row.revision.desc(), row.kind, row.name).limit(limit)
    rows = connection.execute(query).all()
    return [
        # A deletion's spec is JSON null, which reads back as None.
        HistoryEntry(
            r.revision,
            r.at,
            r.kind,
            r.name,
            "put" if r.spec is not None else "delete",
            r.by,
            r.source,
        )
        for r in rows
    ]
