"""The certificate authority shared by replicas: a generation that every CA write bumps (and
that orders their states), the generation of each leaf (so a replica reads only what changed),
the overlap a rotation was started with (any replica may start one; the leader runs it), and
the identity generation each replica's proxies all hold (a rotation step waits for every one),
and which replica leads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ca_state = op.create_table(
        "ca_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ca_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ca_state")),
    )
    op.bulk_insert(ca_state, [{"id": 1, "generation": 1}])
    with op.batch_alter_table("ca_leaves") as batch:
        batch.add_column(
            sa.Column("generation", sa.BigInteger(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("ca_authorities") as batch:
        batch.add_column(sa.Column("overlap_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("identity_generation", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("leading", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("leading")
        batch.drop_column("identity_generation")
    with op.batch_alter_table("ca_authorities") as batch:
        batch.drop_column("overlap_seconds")
    with op.batch_alter_table("ca_leaves") as batch:
        batch.drop_column("generation")
    op.drop_table("ca_state")
