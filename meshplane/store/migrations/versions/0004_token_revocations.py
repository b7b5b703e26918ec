"""Node tokens' revocations, so that every replica ends the xDS streams a revoked token opened,
and an index to find the tokens issued lately.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.String(length=80), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_token_revocations")),
    )
    op.create_index("ix_token_revocations_revoked_at", "token_revocations", ["revoked_at"])
    op.create_index("ix_api_tokens_created_at", "api_tokens", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_created_at", table_name="api_tokens")
    op.drop_index("ix_token_revocations_revoked_at", table_name="token_revocations")
    op.drop_table("token_revocations")
