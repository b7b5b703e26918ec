"""Edge certificates' private keys, sealed, by certificate fingerprint (`edge_keys`): the
`tls-certificates` kind keeps only the public chain in its spec.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edge_keys",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_edge_keys")),
    )


def downgrade() -> None:
    op.drop_table("edge_keys")
