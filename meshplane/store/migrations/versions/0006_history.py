"""The change log becomes the mesh's history: each change says whether it created, configured
or deleted its resource (`changes.op`), a revision may carry the message given with it
(`revision_messages`), and `mesh_state.history_start` is the oldest revision whose mesh the log
can rebuild: pruning keeps, below it, each resource's last write (so a rollback to any revision
from it on is exact).

Rows written before this migration get their `op` from the log itself; the first row of a
resource in a log that was already pruned stays NULL (whether it created the resource is not
known), and the mesh before it is then not rebuilt (`store/revisions.py` refuses).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EARLIER = (
    "FROM changes AS earlier WHERE earlier.kind = changes.kind "
    "AND earlier.name = changes.name AND earlier.revision < changes.revision"
)


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("op", sa.String(length=10), nullable=True))
        batch.create_index("ix_changes_key", ["kind", "name", "revision"])
    with op.batch_alter_table("mesh_state") as batch:
        batch.add_column(
            sa.Column("history_start", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "revision_messages",
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_revision_messages")),
    )
    _backfill()


def _backfill() -> None:
    """`op` for the rows already logged, and where their history starts."""
    connection = op.get_bind()
    oldest = connection.scalar(sa.text("SELECT MIN(revision) FROM changes"))
    current = connection.scalar(sa.text("SELECT revision FROM mesh_state WHERE id = 1")) or 0
    pruned = oldest > 1 if oldest is not None else current > 0
    start = (oldest - 1 if oldest is not None else current) if pruned else 0
    connection.execute(sa.text("UPDATE mesh_state SET history_start = :start"), {"start": start})
    connection.execute(
        sa.text("UPDATE changes SET op = 'deleted' WHERE CAST(spec AS TEXT) = 'null'")
    )
    previous = f"(SELECT earlier.op {_EARLIER} ORDER BY earlier.revision DESC LIMIT 1)"
    first = "NOT EXISTS (SELECT 1 " + _EARLIER + ")"
    created = f"{previous} = 'deleted'" + ("" if pruned else f" OR {first}")
    # Only deletions matter to the next row, and they are all marked: one statement does.
    connection.execute(
        sa.text(
            f"UPDATE changes SET op = CASE WHEN {created} THEN 'created' "
            f"WHEN NOT {first} THEN 'configured' END WHERE op IS NULL"
        )
    )


def downgrade() -> None:
    op.drop_table("revision_messages")
    with op.batch_alter_table("mesh_state") as batch:
        batch.drop_column("history_start")
    with op.batch_alter_table("changes") as batch:
        batch.drop_index("ix_changes_key")
        batch.drop_column("op")
