"""The certificate authority shared by replicas: a generation that every CA write bumps (and
that orders their states), the generation of each leaf (so a replica reads only what changed),
the overlap a rotation was started with (any replica may start one; the leader runs it), and
the identity generation each replica's proxies all hold (a rotation step waits for every one),
which replica leads, and which replica holds each auto-registered sidecar's stream (only it
removes the endpoint; the leader removes those of dead replicas), and the status of every
replica's xDS streams (any replica lists them all).

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
    op.create_table(
        "endpoint_holders",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("replica_id", sa.String(length=32), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_endpoint_holders")),
    )
    op.create_table(
        "replica_proxies",
        sa.Column("replica_id", sa.String(length=32), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", "stream_id", name=op.f("pk_replica_proxies")),
    )
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("identity_generation", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("leading", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    op.drop_table("replica_proxies")
    op.drop_table("endpoint_holders")
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("leading")
        batch.drop_column("identity_generation")
    with op.batch_alter_table("ca_authorities") as batch:
        batch.drop_column("overlap_seconds")
    with op.batch_alter_table("ca_leaves") as batch:
        batch.drop_column("generation")
    op.drop_table("ca_state")
