"""API and node tokens (only their hashes), node tokens' revocations (which every replica polls
to end the xDS streams a revoked token opened), and who made each write (resources and the
change log).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index("ix_api_tokens_created_at", "api_tokens", ["created_at"])
    op.create_table(
        "token_revocations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.String(length=80), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_token_revocations")),
    )
    op.create_index("ix_token_revocations_revoked_at", "token_revocations", ["revoked_at"])
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("updated_by", sa.String(length=63), nullable=True))
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("by", sa.String(length=63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("by")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("updated_by")
    op.drop_table("token_revocations")
    op.drop_table("api_tokens")
