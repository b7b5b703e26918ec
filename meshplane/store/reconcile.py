"""What makes the stored mesh equal to a target: the writes and deletions of a rollback to a
retained revision, and the deletions of an apply that prunes.

Both touch only what operators write: an auto-registered endpoint (source "auto", now or at
the revision rolled back to) is neither put back nor removed, except that `cascade` removes the
auto-registered endpoints of a service the rollback removes (else the rollback is refused: they
would refer to nothing).
Certificates and tokens are not resources, so neither is ever rolled back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from meshplane.errors import Conflict, InvalidMesh
from meshplane.model import KINDS, Key
from meshplane.store.batch import Document
from meshplane.store.invalid import parse_stored
from meshplane.store.repo import referrers_of
from meshplane.store.revisions import StateAt, mesh_at, stored_states
from meshplane.store.tables import ResourceRow

__all__ = ["Plan", "prune_deletes", "rollback_plan"]

_OPERATOR = "api"  # the source of what operators write


@dataclass(frozen=True, slots=True)
class Plan:
    """The puts and deletions of one batch."""

    documents: list[Document]
    deletes: list[Key]


def rollback_plan(connection: Connection, revision: int, *, cascade: bool) -> Plan:
    """The batch that makes what operators wrote equal to what it was at `revision`. NotFound
    if the revision is not retained; InvalidMesh for a resource of then whose spec no longer
    validates; Conflict for a deletion that would leave auto-registered endpoints referring
    to nothing (unless `cascade`)."""
    at = {(s.kind, s.name): s for s in mesh_at(connection, revision)}
    then = {key: state for key, state in at.items() if state.source == _OPERATOR}
    now = {(s.kind, s.name): s for s in stored_states(connection)}
    documents = [
        _document(state, revision)
        for key, state in then.items()
        if key not in now or now[key].spec != state.spec or now[key].source != _OPERATOR
    ]
    # What operators wrote since; one auto-registered then is no operator's to remove.
    deletes = [key for key, s in now.items() if s.source == _OPERATOR and key not in at]
    deletes += _auto_referrers(connection, deletes, now, cascade=cascade)
    return Plan(documents, deletes)


def prune_deletes(connection: Connection, kinds: Collection[str], keep: Iterable[Key]) -> list[Key]:
    """What operators wrote of `kinds` (plurals) that is not among `keep`: what an apply that
    prunes deletes."""
    kept = set(keep)
    query = select(ResourceRow.kind, ResourceRow.name).where(
        ResourceRow.kind.in_(sorted(kinds)), ResourceRow.source == _OPERATOR
    )
    found = connection.execute(query.order_by(ResourceRow.kind, ResourceRow.name))
    return [(kind, name) for kind, name in found if (kind, name) not in kept]


def _document(state: StateAt, revision: int) -> Document:
    spec = parse_stored(state.kind, state.spec)
    if isinstance(spec, str):
        label = f"{KINDS[state.kind].singular} {state.name!r}"
        raise InvalidMesh(f"{label} at revision {revision} no longer validates: {spec}")
    return Document(state.kind, state.name, spec)


def _auto_referrers(
    connection: Connection, deletes: list[Key], now: dict[Key, StateAt], *, cascade: bool
) -> list[Key]:
    """The auto-registered resources that refer to one of `deletes`: to delete as well with
    `cascade`, else Conflict naming them."""
    found: list[Key] = []
    for key, referrers in referrers_of(connection, deletes).items():
        auto = [r for r in referrers if r in now and now[r].source != _OPERATOR]
        if auto and not cascade:
            listed = ", ".join(f"{k}/{n}" for k, n in auto)
            raise Conflict(
                f"{key[0]}/{key[1]} did not exist then, and the auto-registered {listed} "
                "refer to it now; roll back with cascade to remove them as well"
            )
        found += [r for r in auto if r not in found]
    return found
