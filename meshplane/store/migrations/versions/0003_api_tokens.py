"""API and node tokens (only their hashes), node tokens' revocations (which every replica polls
to end the xDS streams a revoked token opened), who made each write (resources and the change
log) and when (the change log, whose rows become one per resource a revision changed), the
route-slot index (where each route sits: gateway, host, path condition) for the write
rules, and the refs index by target covering who refers (so SQLite takes it over the primary
key).

The slot index is filled from the stored routes as they are, computed as the code of this
revision computes it (`meshplane.store.route_slots`) but from the stored JSON, without the
models; a row whose JSON is not even an object gets no slots (it does not validate either, so
it is out of the mesh until a write, which writes its slots).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESOURCES = sa.table(
    "resources",
    sa.column("kind", sa.String),
    sa.column("name", sa.String),
    sa.column("spec", sa.JSON),
)


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
        batch.add_column(sa.Column("at", sa.DateTime(timezone=True), nullable=True))
        # A batch apply changes several resources at one revision: one row each.
        batch.drop_constraint("pk_changes", type_="primary")
        batch.create_primary_key("pk_changes", ["revision", "kind", "name"])
    slots = op.create_table(
        "route_slots",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=63), nullable=False),
        sa.Column("scope", sa.String(length=63), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("path", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind = 'routes'", name=op.f("ck_route_slots_routes_only")),
        sa.ForeignKeyConstraint(
            ["kind", "route"],
            ["resources.kind", "resources.name"],
            name=op.f("fk_route_slots_kind_route_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "route", "scope", "host", name=op.f("pk_route_slots")),
    )
    op.create_index("ix_route_slots_place", "route_slots", ["scope", "path", "host"])
    op.drop_index("ix_refs_to", table_name="refs")
    op.create_index("ix_refs_to", "refs", ["to_kind", "to_name", "from_kind", "from_name"])
    assert slots is not None
    routes = op.get_bind().execute(
        sa.select(_RESOURCES.c.name, _RESOURCES.c.spec).where(_RESOURCES.c.kind == "routes")
    )
    rows = [row for name, spec in routes for row in _slots(name, spec)]
    if rows:
        op.bulk_insert(slots, rows)


def downgrade() -> None:
    op.drop_index("ix_refs_to", table_name="refs")
    op.create_index("ix_refs_to", "refs", ["to_kind", "to_name"])
    op.drop_index("ix_route_slots_place", table_name="route_slots")
    op.drop_table("route_slots")
    with op.batch_alter_table("changes") as batch:
        batch.drop_constraint("pk_changes", type_="primary")
        batch.create_primary_key("pk_changes", ["revision"])
        batch.drop_column("at")
        batch.drop_column("by")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("updated_by")
    op.drop_table("token_revocations")
    op.drop_table("api_tokens")


def _slots(name: str, spec: Any) -> Iterator[dict[str, str]]:
    """The slot rows of a stored route spec (canonical JSON: hosts already lower case)."""
    try:
        match = spec.get("match") or {}
        kind = next((k for k in ("path", "regex") if match.get(k) is not None), "prefix")
        value = match.get(kind) or "/"
        scopes = list(spec.get("gateways") or [""])
        hosts = list(dict.fromkeys(spec.get("hosts") or [""]))
    except (AttributeError, TypeError):
        return
    path = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
    for scope in dict.fromkeys(scopes):
        for host in hosts:
            if isinstance(scope, str) and isinstance(host, str) and _fits(scope, host):
                yield {"kind": "routes", "route": name, "scope": scope, "host": host, "path": path}


def _fits(scope: str, host: str) -> bool:
    return len(scope) <= 63 and len(host) <= 253
