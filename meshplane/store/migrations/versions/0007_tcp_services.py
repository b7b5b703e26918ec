"""TCP through the mesh: the service-port index (`service_ports`: which tcp service has which
mesh port, for the rule that no two share one) and an index of route slots by host whatever
their path (the sidecar routes a service turning tcp must check). Services stored before this
migration have no port, so nothing is backfilled.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_ports",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind = 'services'", name=op.f("ck_service_ports_services_only")),
        sa.ForeignKeyConstraint(
            ["kind", "service"],
            ["resources.kind", "resources.name"],
            name=op.f("fk_service_ports_kind_service_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "service", name=op.f("pk_service_ports")),
    )
    op.create_index("ix_service_ports_port", "service_ports", ["port"])
    op.create_index("ix_route_slots_host", "route_slots", ["scope", "host"])


def downgrade() -> None:
    op.drop_index("ix_route_slots_host", table_name="route_slots")
    op.drop_index("ix_service_ports_port", table_name="service_ports")
    op.drop_table("service_ports")
