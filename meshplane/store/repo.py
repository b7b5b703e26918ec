"""Data functions over one open connection: the write rules of the mesh, without transactions.

The caller (`Store`, through `Database`) begins and commits; nothing here commits, so a function
that raises leaves the transaction for the caller to roll back. Every write path starts with
`bump_revision`, whose row lock serialises writers, so the reads that follow it see the latest
committed state and a check made here still holds at commit.

These run on a database thread (see `database.py`), synchronously, with SQLAlchemy Core: a write
is a handful of statements, and each one saved is worth more than any tuning of the others.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, tuple_, update

from meshplane.errors import Conflict, InvalidMesh, NotFound, PreconditionFailed
from meshplane.model import (
    KINDS,
    NAME_PATTERN,
    Change,
    Key,
    Kind,
    Reference,
    RouteSpec,
    ServiceSpec,
    Spec,
    TlsCertificateSpec,
)
from meshplane.store.edge_keys import keep_edge_key
from meshplane.store.invalid import (
    InvalidResource,
    StoredInvalid,
    invalid_reference,
    parse_stored,
)
from meshplane.store.mesh_rules import check_mesh_rules
from meshplane.store.replica_feed import notify_revision
from meshplane.store.route_slots import SLOTS_DELETE, SLOTS_INSERT, slot_rows
from meshplane.store.service_ports import PORTS_DELETE, PORTS_INSERT, port_rows
from meshplane.store.tables import ChangeRow, MeshStateRow, RefRow, ResourceRow

__all__ = [
    "ChangeOp",
    "IfMatch",
    "PendingWrites",
    "PreparedWrite",
    "Source",
    "StoredResource",
    "WriteOutcome",
    "all_specs",
    "bump_revision",
    "canonical",
    "changes_after",
    "check_references",
    "commit_write",
    "current_revision",
    "delete_resource",
    "find_rows",
    "gather_delete",
    "get_resource",
    "kind_of",
    "list_resources",
    "prepare_write",
    "put_resource",
    "referrers_of",
    "refuse_referred",
]

Source = Literal["api", "auto"]
# What a change did to its resource, as the change log says (`ChangeRow.op`).
ChangeOp = Literal["created", "configured", "deleted"]
# A version number, or "*" for "any version, but it must exist" (HTTP If-Match semantics).
IfMatch = int | Literal["*"] | None

_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class StoredResource:
    """A resource as stored: `version` is the revision that last wrote it."""

    kind: str
    name: str
    spec: Spec
    version: int
    source: Source
    created_at: datetime
    updated_at: datetime
    updated_by: str | None = None  # the API token's name, "auto"; None if written before kept


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a write did. `changed` False means the caller must roll back the revision bump."""

    resource: StoredResource
    created: bool
    changed: bool


def kind_of(kind: str) -> Kind:
    """Look up a kind by its plural; NotFound if there is no such kind."""
    try:
        return KINDS[kind]
    except KeyError:
        raise NotFound(f"unknown kind {kind!r}; known: {', '.join(KINDS)}") from None


def canonical(spec: Spec) -> dict[str, Any]:
    """The JSON form specs are stored, compared and served in."""
    return spec.model_dump(mode="json", exclude_none=True)


# The columns of a resource row, in the order `_record` reads them.
_COLUMNS = (
    ResourceRow.id,
    ResourceRow.kind,
    ResourceRow.name,
    ResourceRow.spec,
    ResourceRow.version,
    ResourceRow.source,
    ResourceRow.created_at,
    ResourceRow.updated_at,
    ResourceRow.updated_by,
)


# Statements run on every write, built once: building one costs more than running it.
_BUMP = (
    update(MeshStateRow)
    .where(MeshStateRow.id == 1)
    .values(revision=MeshStateRow.revision + 1)
    .returning(MeshStateRow.revision)
)
_FIND = select(*_COLUMNS).where(
    ResourceRow.kind == bindparam("kind"), ResourceRow.name == bindparam("name")
)
_FIND_ALL = select(*_COLUMNS).where(
    ResourceRow.kind.in_(bindparam("kinds", expanding=True)),
    ResourceRow.name.in_(bindparam("names", expanding=True)),
)
_INSERT = insert(ResourceRow)
_UPDATE = update(ResourceRow).where(ResourceRow.id == bindparam("row_id"))
_INSERT_REFS = insert(RefRow)
_DELETE_REFS = delete(RefRow).where(
    RefRow.from_kind == bindparam("kind"), RefRow.from_name == bindparam("name")
)
_DELETE_ROW = delete(ResourceRow).where(ResourceRow.id == bindparam("row_id"))
_INSERT_CHANGE = insert(ChangeRow)
_HISTORY_RANGE = select(MeshStateRow.history_start, MeshStateRow.revision).where(
    MeshStateRow.id == 1
)


def _record(row: Row[Any]) -> StoredResource | InvalidResource:
    """The row as a StoredResource, or as an InvalidResource if its spec no longer validates."""
    spec = parse_stored(row.kind, row.spec)
    if isinstance(spec, str):
        return InvalidResource(row.kind, row.name, row.version, spec)
    return _stored(row, spec)


def _stored(row: Row[Any], spec: Spec) -> StoredResource:
    source: Source = "auto" if row.source == "auto" else "api"
    return StoredResource(
        kind=row.kind,
        name=row.name,
        spec=spec,
        version=row.version,
        source=source,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _label(kind: str, name: str) -> str:
    return f"{kind_of(kind).singular} {name!r}"


def current_revision(connection: Connection) -> int:
    revision = connection.scalar(select(MeshStateRow.revision).where(MeshStateRow.id == 1))
    if revision is None:
        raise RuntimeError("mesh_state has no row; run the migrations")
    return revision


def bump_revision(connection: Connection) -> int:
    """Take the writers' lock and return the next revision.

    The UPDATE locks the single mesh_state row on PostgreSQL (and takes SQLite's write lock),
    so concurrent writers queue here; rolling back gives the number back. On PostgreSQL the
    other replicas are told at commit (replica_feed.py).
    """
    revision: int = connection.execute(_BUMP).scalar_one()
    if connection.dialect.name == "postgresql":
        notify_revision(connection, revision)
    return revision


def _find(connection: Connection, kind: str, name: str) -> Row[Any] | None:
    return connection.execute(_FIND, {"kind": kind, "name": name}).first()


def _find_all(
    connection: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Row[Any]]:
    """The rows of every (kind, name) in `keys` that exists, in one statement through the
    (kind, name) index: it asks for each kind with each name and keeps the keys asked for (a
    list of (kind, name) pairs, `IN (VALUES ...)`, makes SQLite scan the whole table)."""
    wanted = set(keys)
    kinds, names = sorted({k for k, _ in wanted}), sorted({n for _, n in wanted})
    rows = connection.execute(_FIND_ALL, {"kinds": kinds, "names": names})
    return {(row.kind, row.name): row for row in rows if (row.kind, row.name) in wanted}


def find_rows(
    connection: Connection, keys: Iterable[tuple[str, str]], chunk: int = 2_000
) -> dict[tuple[str, str], Row[Any]]:
    """`_find_all` for any number of keys: a few thousand names per statement (the drivers
    cap a statement's parameters)."""
    by_kind: dict[str, list[str]] = {}
    for kind, name in set(keys):
        by_kind.setdefault(kind, []).append(name)
    found: dict[tuple[str, str], Row[Any]] = {}
    for kind, names in by_kind.items():
        names.sort()
        for start in range(0, len(names), chunk):
            found |= _find_all(connection, [(kind, n) for n in names[start : start + chunk]])
    return found


def _known(
    rows: Mapping[tuple[str, str], Row[Any]], keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Row[Any]]:
    return {key: rows[key] for key in keys if key in rows}


def get_resource(connection: Connection, kind: str, name: str) -> StoredResource:
    """One resource; NotFound if absent, StoredInvalid if its spec no longer validates."""
    row = _find(connection, kind_of(kind).plural, name)
    if row is None:
        raise NotFound(f"{_label(kind, name)} not found")
    record = _record(row)
    if isinstance(record, InvalidResource):
        raise StoredInvalid(record)
    return record


def list_resources(
    connection: Connection, kind: str
) -> tuple[list[StoredResource], list[InvalidResource]]:
    """Every resource of a kind by name: those that validate, and those that no longer do."""
    rows = connection.execute(
        select(*_COLUMNS).where(ResourceRow.kind == kind_of(kind).plural).order_by(ResourceRow.name)
    )
    valid: list[StoredResource] = []
    invalid: list[InvalidResource] = []
    for row in rows:
        record = _record(row)
        if isinstance(record, InvalidResource):
            invalid.append(record)
        else:
            valid.append(record)
    return valid, invalid


def all_specs(
    connection: Connection,
) -> tuple[list[tuple[str, str, Spec]], list[InvalidResource]]:
    """Every resource as (kind, name, spec), for building a Mesh, and apart those whose spec no
    longer validates."""
    rows = connection.execute(
        select(ResourceRow.kind, ResourceRow.name, ResourceRow.spec, ResourceRow.version)
    )
    specs: list[tuple[str, str, Spec]] = []
    invalid: list[InvalidResource] = []
    for kind, name, data, version in rows:
        spec = parse_stored(kind, data)
        if isinstance(spec, str):
            invalid.append(InvalidResource(kind, name, version, spec))
        else:
            specs.append((kind, name, spec))
    return specs, invalid


def referrers_of(connection: Connection, keys: Iterable[Key]) -> dict[Key, list[Key]]:
    """For each of `keys`, the resources whose specs refer to it (from the reference table)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = connection.execute(
        select(RefRow.to_kind, RefRow.to_name, RefRow.from_kind, RefRow.from_name)
        .where(tuple_(RefRow.to_kind, RefRow.to_name).in_(wanted))
        .order_by(RefRow.from_kind, RefRow.from_name)
    )
    found: dict[Key, list[Key]] = {}
    for to_kind, to_name, from_kind, from_name in rows:
        found.setdefault((to_kind, to_name), []).append((from_kind, from_name))
    return found


def _check_if_match(row: Row[Any] | None, kind: str, name: str, if_match: IfMatch) -> None:
    if if_match is None:
        return
    if row is None:
        raise PreconditionFailed(f"{_label(kind, name)} does not exist (If-Match: {if_match})")
    if if_match != "*" and row.version != if_match:
        raise PreconditionFailed(
            f"{_label(kind, name)} is at version {row.version}, not {if_match}; nothing changed"
        )


def _rewrite_refs(
    pending: PendingWrites,
    kind: str,
    name: str,
    references: Iterable[Reference],
    old: Iterable[Reference] | None,
    *,
    created: bool,
) -> None:
    """Make the refs table say what `references` say; `old` (those of the replaced spec, None
    when unknown: a create, or a stored spec that no longer validates) lets an unchanged set
    cost no statement at all."""
    targets = sorted({(ref.kind, ref.name) for ref in references})
    if not created:
        if old is not None and targets == sorted({(ref.kind, ref.name) for ref in old}):
            return
        pending.deleted_refs.append({"kind": kind, "name": name})
    pending.refs += [
        {"from_kind": kind, "from_name": name, "to_kind": k, "to_name": n} for k, n in targets
    ]


def _change_row(
    revision: int,
    kind: str,
    name: str,
    spec: dict[str, Any] | None,
    source: Source,
    by: str | None,
    now: datetime,
    op: ChangeOp,
) -> dict[str, Any]:
    return {
        "revision": revision,
        "kind": kind,
        "name": name,
        "spec": spec,
        "source": source,
        "by": by,
        "at": now,
        "op": op,
    }


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """A put read and checked as far as it can be alone (kind, name, If-Match), not written:
    what `commit_write` writes. `unchanged` holds the outcome when there is nothing to write."""

    plural: str
    name: str
    spec: Spec
    data: dict[str, Any]
    source: Source
    row: Row[Any] | None
    old: (
        Spec | None
    )  # the stored spec it replaces (None: a create, or one that no longer validates)
    references: list[Reference]
    found: Container[tuple[str, str]]  # which of `references` are stored
    unchanged: WriteOutcome | None


def prepare_write(
    connection: Connection,
    kind: str,
    name: str,
    spec: Spec,
    *,
    if_match: IfMatch,
    source: Source,
    rows: Mapping[tuple[str, str], Row[Any]] | None = None,
    references: Sequence[Reference] | None = None,
) -> PreparedWrite:
    """Read what a put of `spec` replaces and check what needs nothing else: the name and
    If-Match (PreconditionFailed). An identical spec comes back `unchanged`. An "api" source
    sticks: an "auto" write never takes a resource away from the operator. `rows` (from
    `find_rows`, for a batch) holds the rows already read, and `references` the spec's
    references, when the caller has them; else they are read and found here."""
    plural = kind_of(kind).plural
    if not isinstance(spec, KINDS[plural].spec):
        raise TypeError(f"{plural} take a {KINDS[plural].spec.__name__}, not {type(spec).__name__}")
    if not _NAME.match(name):
        raise InvalidMesh(f"{name!r} is not a valid name (pattern {NAME_PATTERN})")
    only = KINDS[plural].only_name
    if only is not None and name != only:
        raise InvalidMesh(f"there is one {KINDS[plural].singular} resource, named {only!r}")
    references = list(KINDS[plural].references(spec) if references is None else references)
    keys = [(plural, name), *((r.kind, r.name) for r in references)]
    found = _find_all(connection, keys) if rows is None else _known(rows, keys)
    row = found.get((plural, name))
    _check_if_match(row, plural, name, if_match)
    data = canonical(spec)
    new_source: Source = "api" if source == "api" or (row and row.source == "api") else "auto"
    unchanged = None
    if row is not None and row.spec == data and row.source == new_source:
        unchanged = WriteOutcome(_stored(row, spec), created=False, changed=False)
    parsed = None if row is None else parse_stored(plural, row.spec)
    old = None if isinstance(parsed, str) else parsed  # one that no longer validates: unknown
    return PreparedWrite(
        plural, name, spec, data, new_source, row, old, references, found.keys(), unchanged
    )


def check_references(
    write: PreparedWrite,
    invalid: Mapping[Key, InvalidResource],
    also: Container[tuple[str, str]] = (),
) -> None:
    """InvalidMesh naming the field for a reference to what is neither stored nor in `also`
    (a batch's other documents), or to one of the `invalid` resources known to the caller."""
    for ref in write.references:
        key = (ref.kind, ref.name)
        if key not in write.found and key not in also:
            raise InvalidMesh(f"{_label(ref.kind, ref.name)} does not exist", field=ref.field)
        if (bad := invalid.get(key)) is not None:
            raise InvalidMesh(invalid_reference(bad.kind, bad.name, bad.reason), field=ref.field)


@dataclass(slots=True)
class PendingWrites:
    """The statements of many writes, gathered to run together (`flush`): one executemany per
    statement for a whole batch, instead of a round of statements per document."""

    deleted_refs: list[dict[str, Any]] = field(default_factory=list)
    deleted_slots: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    inserted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    refs: list[dict[str, Any]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)
    deleted_ports: list[dict[str, Any]] = field(default_factory=list)
    ports: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def flush(self, connection: Connection) -> None:
        """Run everything gathered, rows before what refers to them, and start empty again."""
        statements = (
            (_DELETE_REFS, self.deleted_refs),
            (SLOTS_DELETE, self.deleted_slots),
            (PORTS_DELETE, self.deleted_ports),
            (_DELETE_ROW, self.deleted),
            (_INSERT, self.inserted),
            (_UPDATE, self.updated),
            (_INSERT_REFS, self.refs),
            (SLOTS_INSERT, self.slots),
            (PORTS_INSERT, self.ports),
            (_INSERT_CHANGE, self.changes),
        )
        for statement, rows in statements:
            if rows:
                connection.execute(statement, rows)
                rows.clear()


def commit_write(
    connection: Connection,
    write: PreparedWrite,
    *,
    revision: int,
    now: datetime,
    by: str | None,
    pending: PendingWrites | None = None,
) -> WriteOutcome:
    """Write a prepared, checked put at `revision`: the row, its references, its route slots
    (or service port) and its change log entry (with `by`, who writes, and `now`). With
    `pending`, the statements are gathered there to run at its `flush` instead of at once."""
    own = pending is None
    gathered = PendingWrites() if pending is None else pending
    plural, name, spec, row, old = write.plural, write.name, write.spec, write.row, write.old
    values = {
        "spec": write.data,
        "version": revision,
        "source": write.source,
        "updated_at": now,
        "updated_by": by,
    }
    if row is None:
        gathered.inserted.append({"kind": plural, "name": name, "created_at": now, **values})
        created_at = now
    else:
        gathered.updated.append({"row_id": row.id, **values})
        created_at = row.created_at
    old_refs = None if old is None else KINDS[plural].references(old)
    _rewrite_refs(gathered, plural, name, write.references, old_refs, created=row is None)
    if isinstance(spec, RouteSpec):
        old_route = old if isinstance(old, RouteSpec) else None
        if (slots := slot_rows(name, spec, old_route, created=row is None)) is not None:
            drop, rows = slots
            gathered.deleted_slots += [{"name": name}] if drop else []
            gathered.slots += rows
    if isinstance(spec, ServiceSpec):
        ports = port_rows(name, spec, old, created=row is None)
        if ports is not None:
            drop, port_list = ports
            gathered.deleted_ports += [{"name": name}] if drop else []
            gathered.ports += port_list
    op: ChangeOp = "created" if row is None else "configured"
    gathered.changes.append(
        _change_row(revision, plural, name, write.data, write.source, by, now, op)
    )
    if own:
        gathered.flush(connection)
    stored = StoredResource(plural, name, spec, revision, write.source, created_at, now, by)
    return WriteOutcome(stored, created=row is None, changed=True)


def put_resource(
    connection: Connection,
    kind: str,
    name: str,
    spec: Spec,
    *,
    revision: int,
    if_match: IfMatch,
    source: Source,
    now: datetime,
    invalid: Mapping[Key, InvalidResource] | None = None,
    by: str | None = None,
    sealed: Mapping[str, bytes] | None = None,
) -> WriteOutcome:
    """Create or replace a resource at `revision` (from `bump_revision` in this transaction).

    Checks in this order, changing nothing on failure: the name, If-Match (PreconditionFailed),
    references (InvalidMesh naming the field, also for a reference to one of the `invalid`
    resources known to the caller), the mesh-wide rules of `model.rules` (InvalidMesh, or
    Conflict for a route another one hides). An identical spec is a no-op (`changed` False).
    Replacing a stored spec that no longer validates is a write like any other. `by` (who
    writes: an API token's name, "auto") is kept on the resource and in the change log. A
    certificate's key is kept from `sealed` (see edge_keys.py).
    """
    write = prepare_write(connection, kind, name, spec, if_match=if_match, source=source)
    if write.unchanged is not None:
        return write.unchanged
    check_references(write, invalid or {})
    if isinstance(spec, TlsCertificateSpec):
        keep_edge_key(connection, spec, sealed or {}, now)
    check_mesh_rules(connection, write.plural, name, spec, write.old, revision)
    return commit_write(connection, write, revision=revision, now=now, by=by)


def delete_resource(
    connection: Connection,
    kind: str,
    name: str,
    *,
    revision: int,
    if_match: IfMatch,
    source: Source,
    now: datetime,
    by: str | None = None,
) -> None:
    """Delete a resource at `revision`; `by` (who) and `now` go in the change log.

    NotFound if absent; PreconditionFailed on a stale If-Match; Conflict listing every resource
    that still refers to it.
    """
    plural = kind_of(kind).plural
    row = _find(connection, plural, name)
    if row is None:
        raise NotFound(f"{_label(plural, name)} not found")
    _check_if_match(row, plural, name, if_match)
    refuse_referred([(plural, name)], referrers_of(connection, [(plural, name)]))
    pending = PendingWrites()
    gather_delete(pending, row, revision=revision, source=source, now=now, by=by)
    pending.flush(connection)


def gather_delete(
    pending: PendingWrites,
    row: Row[Any],
    *,
    revision: int,
    source: Source,
    now: datetime,
    by: str | None,
) -> None:
    """Gather the statements that delete the resource of `row` (its references and route slots
    go with it) and log the deletion. Check first that nothing else still refers to it."""
    pending.deleted_refs.append({"kind": row.kind, "name": row.name})
    pending.deleted.append({"row_id": row.id})
    change = _change_row(revision, row.kind, row.name, None, source, by, now, "deleted")
    pending.changes.append(change)


def refuse_referred(deleted: Iterable[Key], referrers: Mapping[Key, Sequence[Key]]) -> None:
    """Conflict naming every resource that still refers to one of `deleted`."""
    for key in deleted:
        if found := referrers.get(key):
            listed = ", ".join(f"{k}/{n}" for k, n in found)
            raise Conflict(f"{_label(*key)} is still referenced by {listed}")


def changes_after(connection: Connection, revision: int) -> list[Change] | None:
    """Every change with a revision above `revision`, oldest first (a spec that no longer
    validates comes as a Change with `invalid` set).

    None when the log cannot answer: `revision` is below where its history starts (pruned),
    or ahead of the mesh (a client that saw another database); either way the caller must
    reload the whole mesh. Call inside one snapshot so the log and the revision agree.
    """
    start, current = connection.execute(_HISTORY_RANGE).one()
    if not start <= revision <= current:
        return None
    rows: Sequence[Row[Any]] = connection.execute(
        select(ChangeRow.revision, ChangeRow.kind, ChangeRow.name, ChangeRow.spec)
        .where(ChangeRow.revision > revision)
        .order_by(ChangeRow.revision)
    ).all()
    return [_change(row.revision, row.kind, row.name, row.spec) for row in rows]


def _change(revision: int, kind: str, name: str, data: object | None) -> Change:
    """A change from the log; a spec that no longer validates becomes an `invalid` one."""
    if data is None:
        return Change(revision, kind, name, None)
    spec = parse_stored(kind, data)
    if isinstance(spec, str):
        return Change(revision, kind, name, None, invalid=spec)
    return Change(revision, kind, name, spec)
