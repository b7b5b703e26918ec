"""The mesh at any retained revision, rebuilt from the resources and the change log, and how
long the log keeps it.

A resource that no change after revision R touched is at R what it is now; one that a later
change touched was at R what its newest change at or before R wrote (absent if that was a
deletion, or if it has none). So the mesh at R costs a read of the resources and of the rows
of the keys changed since. That holds as long as pruning keeps, for every resource, its newest
write at or below the revision the history now starts from (`prune_history`): a diff between
two revisions, or a rollback to one, is exact anywhere in the retained range. Before it, a
revision is out of reach (NotFound, naming where history starts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import aliased

from meshplane.errors import NotFound
from meshplane.model import Key
from meshplane.store.repo import ChangeOp
from meshplane.store.tables import ChangeRow, MeshStateRow, ResourceRow, RevisionMessageRow

__all__ = [
    "DEFAULT_HISTORY_REVISIONS",
    "PRUNE_EVERY",
    "Difference",
    "StateAt",
    "differences",
    "history_range",
    "mesh_at",
    "prune_history",
    "save_message",
    "stored_states",
]

DEFAULT_HISTORY_REVISIONS = 100_000  # months of writes at a few hundred a day
PRUNE_EVERY = 1_000  # revisions between two prunes of the log


@dataclass(frozen=True, slots=True)
class StateAt:
    """A resource as it was at a revision: its stored spec (JSON) and who owned it ("api",
    or "auto" for an auto-registered endpoint)."""

    kind: str
    name: str
    spec: dict[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class Difference:
    """One resource between two revisions: `before` None if it did not exist at the older one,
    `after` None if it no longer does at the newer one."""

    kind: str
    name: str
    before: StateAt | None
    after: StateAt | None

    @property
    def op(self) -> ChangeOp:
        if self.before is None:
            return "created"
        return "deleted" if self.after is None else "configured"


_STORED = select(ResourceRow.kind, ResourceRow.name, ResourceRow.spec, ResourceRow.source)
_RANGE = select(MeshStateRow.history_start, MeshStateRow.revision).where(MeshStateRow.id == 1)


def history_range(connection: Connection) -> tuple[int, int]:
    """The oldest revision the log can rebuild, and the current one."""
    start, current = connection.execute(_RANGE).one()
    return start, current


def stored_states(connection: Connection) -> list[StateAt]:
    """Every resource as it is now."""
    return [StateAt(*row) for row in connection.execute(_STORED)]


def mesh_at(
    connection: Connection, revision: int, *, kind: str | None = None, name: str | None = None
) -> list[StateAt]:
    """Every resource (of `kind`, named `name`, if given) as it was at `revision`, by kind and
    name. NotFound if the revision is not in the retained range."""
    _check_in_range(connection, revision)
    query = _STORED
    changed = _keys_changed(revision, None)
    if kind is not None:
        query, changed = (
            query.where(ResourceRow.kind == kind),
            changed.where(ChangeRow.kind == kind),
        )
    if name is not None:
        query, changed = (
            query.where(ResourceRow.name == name),
            changed.where(ChangeRow.name == name),
        )
    states = {(r.kind, r.name): StateAt(*r) for r in connection.execute(query)}
    for key, then in _states(connection, changed, revision).items():
        if then is None:
            states.pop(key, None)
        else:
            states[key] = then
    return [states[key] for key in sorted(states)]


def differences(connection: Connection, older: int, newer: int) -> list[Difference]:
    """What changed between two revisions of the retained range (older < newer), by kind and
    name: only the resources some change in between touched, and of those only the ones that
    differ at the two ends (one put back as it was is no difference)."""
    _check_in_range(connection, older)
    _check_in_range(connection, newer)
    keys = _keys_changed(older, newer)
    before, after = _states(connection, keys, older), _states(connection, keys, newer)
    found = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was != now:
            found.append(Difference(key[0], key[1], was, now))
    return found


def save_message(connection: Connection, revision: int, message: str) -> None:
    """Keep the message given with the write that made `revision`."""
    connection.execute(insert(RevisionMessageRow), {"revision": revision, "message": message})


def prune_history(connection: Connection, revision: int, keep: int) -> int | None:
    """Every PRUNE_EVERY revisions, let the history start `keep` revisions back: drop the
    log's rows and messages at or below that revision, except each resource's newest write
    there when it was not a deletion (what rebuilding a later revision needs). Returns where
    history now starts, or None when nothing was pruned."""
    if revision % PRUNE_EVERY:
        return None
    start, _ = history_range(connection)
    cutoff = revision - keep
    if cutoff <= start:
        return None
    later = aliased(ChangeRow)
    superseded = exists().where(
        later.kind == ChangeRow.kind,
        later.name == ChangeRow.name,
        later.revision > ChangeRow.revision,
        later.revision <= cutoff,
    )
    old = ChangeRow.revision <= cutoff
    connection.execute(delete(ChangeRow).where(old, or_(ChangeRow.op == "deleted", superseded)))
    connection.execute(delete(RevisionMessageRow).where(RevisionMessageRow.revision <= cutoff))
    connection.execute(
        update(MeshStateRow).where(MeshStateRow.id == 1).values(history_start=cutoff)
    )
    return cutoff


def _check_in_range(connection: Connection, revision: int) -> None:
    start, current = history_range(connection)
    if revision > current:
        raise NotFound(f"revision {revision} does not exist yet (the mesh is at {current})")
    if revision < start:
        raise NotFound(
            f"revision {revision} is older than the history kept, which starts at revision "
            f"{start} (MESHPLANE_HISTORY_REVISIONS)"
        )


def _keys_changed(after: int, until: int | None) -> Select[str, str]:
    """The (kind, name) of every resource a change after revision `after` (and at or before
    `until`) touched."""
    query = select(ChangeRow.kind, ChangeRow.name).where(ChangeRow.revision > after)
    if until is not None:
        query = query.where(ChangeRow.revision <= until)
    return query.distinct()


def _states(
    connection: Connection, keys: Select[str, str], revision: int
) -> dict[Key, StateAt | None]:
    """Each of `keys` at `revision`: its newest change at or before it (None: deleted, or no
    change yet: it did not exist). NotFound for one whose first logged change is older than
    what the log knows (a log pruned before it kept what a change did)."""
    wanted = tuple_(ChangeRow.kind, ChangeRow.name).in_(keys)
    rank = func.row_number().over(
        partition_by=(ChangeRow.kind, ChangeRow.name), order_by=ChangeRow.revision.desc()
    )
    ranked = (
        select(ChangeRow.kind, ChangeRow.name, ChangeRow.spec, ChangeRow.source, ChangeRow.op)
        .add_columns(rank.label("rank"))
        .where(ChangeRow.revision <= revision, wanted)
        .subquery()
    )
    newest = select(ranked.c.kind, ranked.c.name, ranked.c.spec, ranked.c.source, ranked.c.op)
    states: dict[Key, StateAt | None] = {}
    for kind, name, spec, source, op in connection.execute(newest.where(ranked.c.rank == 1)):
        deleted = op == "deleted" or spec is None
        states[(kind, name)] = None if deleted else StateAt(kind, name, spec, source)
    unknown = select(ChangeRow.kind, ChangeRow.name).where(
        ChangeRow.revision > revision, ChangeRow.op.is_(None), wanted
    )
    for kind, name in connection.execute(unknown):
        if (kind, name) not in states:
            raise NotFound(
                f"revision {revision} is older than what the history knows of {kind}/{name} "
                "(its log was pruned before this version kept it whole)"
            )
    for kind, name in connection.execute(keys):
        states.setdefault((kind, name), None)
    return states
