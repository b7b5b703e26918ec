"""The change log read as the mesh's history: per resource a revision changed, when, who, what
it did (created, configured, deleted) and the message given with the write.

Newest first, paged by revision (`before`), filtered by kind, name, who (the API token's name,
"auto" for auto-registration) and time. Only the retained range is listed: the rows pruning
keeps below it (each resource's last write there, `revisions.py`) are for rebuilding, not
history. Rows written before who and when were kept have them None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, select

from meshplane.store.repo import ChangeOp
from meshplane.store.tables import ChangeRow, MeshStateRow, RevisionMessageRow

__all__ = ["HistoryEntry", "history"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One resource one revision changed."""

    revision: int
    at: datetime | None
    kind: str
    name: str
    op: Literal["put", "delete"]
    outcome: ChangeOp | None  # None: logged before this was kept
    by: str | None
    source: str
    message: str | None


def history(
    connection: Connection,
    *,
    kind: str | None = None,
    name: str | None = None,
    by: str | None = None,
    before: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[HistoryEntry]:
    """The newest `limit` entries (of revisions below `before`, committed from `since` until
    `until`, if given) that match."""
    row = ChangeRow
    start = select(MeshStateRow.history_start).where(MeshStateRow.id == 1).scalar_subquery()
    query = (
        select(row.revision, row.at, row.kind, row.name, row.spec, row.op, row.by, row.source)
        .add_columns(RevisionMessageRow.message)
        .outerjoin(RevisionMessageRow, RevisionMessageRow.revision == row.revision)
        .where(row.revision > start)
    )
    for column, value in ((row.kind, kind), (row.name, name), (row.by, by)):
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        query = query.where(row.revision < before)
    if since is not None:
        query = query.where(row.at >= since)
    if until is not None:
        query = query.where(row.at <= until)
    query = query.order_by(row.revision.desc(), row.kind, row.name).limit(limit)
    return [
        HistoryEntry(
            r.revision,
            r.at,
            r.kind,
            r.name,
            # A deletion's spec is JSON null, which reads back as None.
            "put" if r.spec is not None else "delete",
            r.op,
            r.by,
            r.source,
            r.message,
        )
        for r in connection.execute(query)
    ]
