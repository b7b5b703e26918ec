"""The database schema: resources, their references, the global revision and the change log.

Every constraint is named (see `Base.metadata`), so Alembic's batch mode can rebuild SQLite
tables and the same migration runs on SQLite and PostgreSQL. Kinds are stored as plurals
("services"), the keys of `meshplane.model.KINDS`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import false
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiTokenRow",
    "Base",
    "CaStateRow",
    "ChangeRow",
    "EndpointHolderRow",
    "MeshStateRow",
    "RefRow",
    "ReplicaProxyRow",
    "ReplicaRow",
    "ResourceRow",
    "RevisionMessageRow",
    "RouteSlotRow",
    "TokenRevocationRow",
    "UtcDateTime",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Long enough for every plural in KINDS and every name NAME_PATTERN allows (63 characters).
_KIND = String(32)
_NAME = String(63)
_SOURCE = String(8)
_HOST = String(253)  # the longest host name the model accepts
_DIGEST = String(64)  # SHA-256, hex
# Who made a write: an API token's name (a NAME_PATTERN name), or "auto" for auto-registration.
_WHO = String(63)


class UtcDateTime(TypeDecorator[datetime]):
    """Store aware datetimes and always read them back aware, in UTC.

    SQLite keeps no time zone, so without this a timestamp would come back naive there and aware
    on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; pass an aware one (UTC)")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UtcDateTime}


class ResourceRow(Base):
    """One resource as last written; `version` is the revision of that write."""

    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(_KIND)
    name: Mapped[str] = mapped_column(_NAME)
    spec: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(_SOURCE)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(_WHO)  # NULL: written before it was kept


class RefRow(Base):
    """Resource (from_kind, from_name) names (to_kind, to_name) somewhere in its spec.

    Rewritten on every write of the referring resource. The foreign key on the target makes the
    database itself refuse to delete a resource something still points at, even if a check in
    Python were skipped; the one on the source drops the rows with their resource.
    """

    __tablename__ = "refs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["from_kind", "from_name"],
            ["resources.kind", "resources.name"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["to_kind", "to_name"], ["resources.kind", "resources.name"]),
        # Who refers to a resource, answered from the index alone; with the referrer's kind in
        # it, SQLite takes it over the primary key for "the routes that send to service s".
        Index("ix_refs_to", "to_kind", "to_name", "from_kind", "from_name"),
    )

    from_kind: Mapped[str] = mapped_column(_KIND, primary_key=True)
    from_name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    to_kind: Mapped[str] = mapped_column(_KIND, primary_key=True)
    to_name: Mapped[str] = mapped_column(_NAME, primary_key=True)


class RouteSlotRow(Base):
    """Route `route` sits on gateway `scope` ('' for the sidecars), on `host` ('' for every
    host of that gateway), with the path condition whose digest is `path`: one row per slot
    (`meshplane.model.route_slots`).

    Only routes sharing a slot can hide one another, so a route write's rule check reads the
    routes beside it through `ix_route_slots_place` rather than every route of its gateway.
    Rewritten with the route (see `route_slots.py`); the foreign key drops the rows with it.
    """

    __tablename__ = "route_slots"
    __table_args__ = (
        ForeignKeyConstraint(
            ["kind", "route"], ["resources.kind", "resources.name"], ondelete="CASCADE"
        ),
        CheckConstraint("kind = 'routes'", name="routes_only"),
        Index("ix_route_slots_place", "scope", "path", "host"),
        # The sidecar routes on a host whatever their path: those a service turning tcp must
        # check (`model.streams`).
        Index("ix_route_slots_host", "scope", "host"),
    )

    kind: Mapped[str] = mapped_column(_KIND, primary_key=True)  # "routes": for the foreign key
    route: Mapped[str] = mapped_column(_NAME, primary_key=True)
    scope: Mapped[str] = mapped_column(_NAME, primary_key=True)
    host: Mapped[str] = mapped_column(_HOST, primary_key=True)
    path: Mapped[str] = mapped_column(_DIGEST)


class ServicePortRow(Base):
    """tcp service `service` is reached through the mesh on `port` (its spec's `port`).

    No two tcp services may share a port (`model.streams`); a service write's rule check reads
    the services with its port through `ix_service_ports_port` rather than every service. Not
    unique in the database: a batch may move a port from one service to another, and the rule
    checks the batch as a whole. Rewritten with the service; the foreign key drops the row.
    """

    __tablename__ = "service_ports"
    __table_args__ = (
        ForeignKeyConstraint(
            ["kind", "service"], ["resources.kind", "resources.name"], ondelete="CASCADE"
        ),
        CheckConstraint("kind = 'services'", name="services_only"),
        Index("ix_service_ports_port", "port"),
    )

    kind: Mapped[str] = mapped_column(_KIND, primary_key=True)  # "services": for the foreign key
    service: Mapped[str] = mapped_column(_NAME, primary_key=True)
    port: Mapped[int] = mapped_column(Integer)


class MeshStateRow(Base):
    """The single row holding the mesh's revision; bumping it is what serialises writers."""

    __tablename__ = "mesh_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
    # The oldest revision whose mesh the change log can rebuild (see ChangeRow).
    history_start: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ChangeRow(Base):
    """One resource a committed write changed, keyed by the revision it produced and the
    resource; `spec` NULL (JSON null) means deleted, and `op` says so too: created,
    configured or deleted (NULL: a write logged before this was kept, whose effect is unknown).

    Revisions are contiguous: every bump of `mesh_state.revision` writes at least one row in
    the same transaction (one per resource; a batch apply writes several). Pruning drops the
    rows at and below a revision, `mesh_state.history_start`, but keeps there each resource's
    newest write if it was not a deletion: so the mesh at any revision from `history_start`
    on can be rebuilt from the log and the resources (`store/revisions.py`).
    """

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_key", "kind", "name", "revision"),)

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(_KIND, primary_key=True)
    name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    spec: Mapped[dict[str, Any] | None]
    source: Mapped[str] = mapped_column(_SOURCE)
    by: Mapped[str | None] = mapped_column(_WHO)  # NULL: written before it was kept
    at: Mapped[datetime | None]  # when it was committed; NULL: written before it was kept
    op: Mapped[str | None] = mapped_column(String(10))


class RevisionMessageRow(Base):
    """The message given with the write that made a revision (`X-Change-Message`, `meshplane
    apply -m`); pruned with the change log."""

    __tablename__ = "revision_messages"

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message: Mapped[str] = mapped_column(Text)


class EdgeKeyRow(Base):
    """The private key of an edge certificate (a `tls-certificates` spec holds only the public
    chain), sealed; keyed by the SHA-256 of the certificate's DER, so every revision of the
    spec that names this certificate (history, a rollback) finds its key."""

    __tablename__ = "edge_keys"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class CaAuthorityRow(Base):
    """A CA meshplane signs with or trusts. `state`: issuing | incoming | outgoing | retired.

    incoming: trusted, not yet signing (root rotation, first phase); outgoing: still trusted while
    leaves move to the new issuer, until `retire_at`. The private key is sealed (encrypted).
    """

    __tablename__ = "ca_authorities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    chain_pem: Mapped[str] = mapped_column(Text)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    retire_at: Mapped[datetime | None]
    # incoming: the overlap the rotation was started with (any replica starts one, the leader
    # runs it); 0 once `meshplane ca finish` asked for none.
    overlap_seconds: Mapped[float | None] = mapped_column(Float)


class CaStateRow(Base):
    """The single row holding the CA's generation: every CA write bumps it in its transaction,
    which orders the writes of all replicas and numbers the identity states they serve."""

    __tablename__ = "ca_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)


class CaLeafRow(Base):
    """The current certificate of one identity (its Subject's text); its key sealed;
    `generation` the CA write that stored it (replicas read only what is newer than theirs)."""

    __tablename__ = "ca_leaves"

    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    cert_chain_pem: Mapped[str] = mapped_column(Text)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    serial: Mapped[str] = mapped_column(String(64))
    authority_id: Mapped[int] = mapped_column(ForeignKey("ca_authorities.id"))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    renew_at: Mapped[datetime]
    generation: Mapped[int] = mapped_column(BigInteger, server_default="1")


class ApiTokenRow(Base):
    """An API token: its name, role and scope, and only the SHA-256 of the token itself.

    `role`: admin | editor | viewer | bootstrap | node; `scope` lists the identities (Subject
    texts) a bootstrap token may fetch bootstraps for, or the one identity a node token speaks
    for on xDS. Deleting the row revokes the token.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_api_tokens_created_at", "created_at"),
    )

    name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    scope: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(_WHO)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class TokenRevocationRow(Base):
    """A node token revoked at `revoked_at`: every replica polls these to end the xDS streams
    that token opened (new streams are refused already, its api_tokens row being gone). Kept
    only long enough for every replica to see it."""

    __tablename__ = "token_revocations"
    __table_args__ = (Index("ix_token_revocations_revoked_at", "revoked_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    identity: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime]


class ReplicaRow(Base):
    """A running `meshplane serve`: where proxies and clients reach it, and its last heartbeat.
    A replica whose heartbeat stopped is dead (`meshplane.store.replicas`)."""

    __tablename__ = "replicas"
    __table_args__ = (Index("ix_replicas_heartbeat_at", "heartbeat_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    xds_host: Mapped[str] = mapped_column(_HOST)
    xds_port: Mapped[int] = mapped_column(Integer)
    api_url: Mapped[str] = mapped_column(String(512))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    # The CA generation every proxy of this replica holds (NULL: not reported yet); the
    # leader's rotation steps wait for every live replica (certs/authority.py).
    identity_generation: Mapped[int | None] = mapped_column(BigInteger)
    leading: Mapped[bool] = mapped_column(Boolean, server_default=false())  # see store/leader.py


class EndpointHolderRow(Base):
    """The replica holding the stream of an auto-registered sidecar (`name`: its endpoint), so
    that only it removes the endpoint (meshplane.store.holders)."""

    __tablename__ = "endpoint_holders"

    name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    replica_id: Mapped[str] = mapped_column(String(32))
    held_at: Mapped[datetime]


class ReplicaProxyRow(Base):
    """One open xDS stream of a replica, as `GET /api/v1/proxies` shows it (JSON), so that
    every replica lists every replica's proxies (meshplane.store.proxy_views)."""

    __tablename__ = "replica_proxies"

    replica_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stream_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[dict[str, Any]]
