"""A batch of puts in one transaction, checked against the mesh as it will be after all of them.

Three passes over one connection, after the caller's `bump_revision`:
1. read what each document replaces (every row in a few statements) and check what it alone
   decides (name, If-Match); its references may point at what is stored or at another
   document of the batch;
2. read, for every document a mesh rule governs, the neighbourhood the rules look at, as it is
   before the batch; then write every changed document, each statement once for the whole
   batch (`PendingWrites`);
3. read each of those neighbourhoods again, now holding the whole batch, and refuse the first
   document whose rules find a problem between the two. So the order of the documents never
   matters, and a problem one document makes and another mends is no problem.
Every refusal names its document (`MeshplaneError.document`); the caller rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from meshplane.errors import DocumentRef, InvalidMesh, MeshplaneError
from meshplane.model import KINDS, Key, Mesh, Spec
from meshplane.store.invalid import InvalidResource
from meshplane.store.mesh_rules import refuse_problems, rule_neighbourhood
from meshplane.store.repo import (
    IfMatch,
    PendingWrites,
    PreparedWrite,
    Source,
    WriteOutcome,
    check_references,
    commit_write,
    find_rows,
    prepare_write,
    prune_changes,
)

__all__ = ["Document", "write_batch"]

_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Document:
    """One resource of a batch: kind (plural), name, spec, and an optional If-Match on its
    stored version."""

    kind: str
    name: str
    spec: Spec
    if_match: IfMatch = None


def write_batch(
    connection: Connection,
    documents: Sequence[Document],
    *,
    revision: int,
    source: Source,
    now: datetime,
    by: str | None,
    invalid: Mapping[Key, InvalidResource],
) -> list[WriteOutcome]:
    """Write every changed document at `revision`, or raise naming the first refused one;
    returns each document's outcome, in their order."""
    _refuse_duplicates(documents)
    order = sorted(range(len(documents)), key=lambda i: _KIND_ORDER[documents[i].kind])
    references = [list(KINDS[d.kind].references(d.spec)) for d in documents]
    keys = {(d.kind, d.name) for d in documents}
    keys.update((r.kind, r.name) for refs in references for r in refs)
    rows = find_rows(connection, keys)
    prepared: dict[int, PreparedWrite] = {}
    for i in order:
        with _about(documents, i):
            d = documents[i]
            prepared[i] = prepare_write(
                connection,
                d.kind,
                d.name,
                d.spec,
                if_match=d.if_match,
                source=source,
                rows=rows,
                references=references[i],
            )
    changed = [i for i in order if prepared[i].unchanged is None]
    batch = {(d.kind, d.name) for d in documents}
    known_invalid = {k: r for k, r in invalid.items() if k not in batch}
    before: dict[int, Mesh] = {}
    hosts: dict[str, list[str] | None] = {}  # the gateways' hosts before the batch
    for i in changed:
        with _about(documents, i):
            check_references(prepared[i], known_invalid, also=batch)
            if (seen := _neighbourhood(connection, prepared[i], hosts)) is not None:
                before[i] = seen
    outcomes = {i: w.unchanged for i, w in prepared.items() if w.unchanged is not None}
    pending = PendingWrites()
    for i in changed:
        outcomes[i] = commit_write(
            connection, prepared[i], revision=revision, now=now, by=by, pending=pending
        )
    pending.flush(connection)
    prune_changes(connection, revision)
    hosts = {}  # and after it
    for i, was in before.items():
        with _about(documents, i):
            write = prepared[i]
            now_seen = _neighbourhood(connection, write, hosts, written=True)
            assert now_seen is not None
            refuse_problems(was, now_seen, write.plural, write.name, write.spec)
    return [outcomes[i] for i in range(len(documents))]


def _neighbourhood(
    connection: Connection,
    write: PreparedWrite,
    hosts: dict[str, list[str] | None],
    *,
    written: bool = False,
) -> Mesh | None:
    """The rules' view around `write`, before the batch or (`written`) after it."""
    return rule_neighbourhood(
        connection,
        write.plural,
        write.name,
        write.spec,
        write.old,
        stored=written or write.row is not None,
        gateway_hosts=hosts,
    )


@contextmanager
def _about(documents: Sequence[Document], index: int) -> Iterator[None]:
    """Name document `index` in whatever refusal the block raises."""
    try:
        yield
    except MeshplaneError as exc:
        d = documents[index]
        raise exc.about(DocumentRef(index, d.kind, d.name)) from None


def _refuse_duplicates(documents: Sequence[Document]) -> None:
    seen: set[tuple[str, str]] = set()
    for i, document in enumerate(documents):
        key = (document.kind, document.name)
        if key in seen:
            raise InvalidMesh(f"{document.kind}/{document.name} appears twice").about(
                DocumentRef(i, document.kind, document.name)
            )
        seen.add(key)
