"""A batch of puts in one transaction, checked against the mesh as it will be after all of them.

A batch may also delete resources (`deletes`: what a prune or a rollback removes); each is
checked to exist and, once everything is written, that nothing left refers to it.

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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from meshplane.errors import DocumentRef, InvalidMesh, MeshplaneError, NotFound
from meshplane.model import KINDS, Key, Mesh, Spec, TlsCertificateSpec
from meshplane.store.edge_keys import keep_edge_key
from meshplane.store.invalid import InvalidResource
from meshplane.store.mesh_rules import (
    Reads,
    holds_no_neighbours,
    refuse_problems,
    rule_neighbourhood,
)
from meshplane.store.repo import (
    IfMatch,
    PendingWrites,
    PreparedWrite,
    Source,
    WriteOutcome,
    check_references,
    commit_write,
    find_rows,
    gather_delete,
    prepare_write,
    referrers_of,
    refuse_referred,
)

__all__ = ["BatchResult", "Document", "write_batch"]

_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Document:
    """One resource of a batch: kind (plural), name, spec, and an optional If-Match on its
    stored version."""

    kind: str
    name: str
    spec: Spec
    if_match: IfMatch = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch did: each document's outcome, the stored spec each replaced (None for a
    create), and the spec each deletion removed."""

    outcomes: list[WriteOutcome]
    replaced: list[dict[str, Any] | None]
    deleted: list[dict[str, Any]]


def write_batch(
    connection: Connection,
    documents: Sequence[Document],
    *,
    revision: int,
    source: Source,
    now: datetime,
    by: str | None,
    invalid: Mapping[Key, InvalidResource],
    deletes: Sequence[Key] = (),
    sealed: Mapping[str, bytes] | None = None,
) -> BatchResult:
    """Write every changed document and delete every one of `deletes` at `revision`, or raise
    naming the first refused one (a deletion by its place after the documents). Certificates'
    keys are kept from `sealed` (see edge_keys.py)."""
    _refuse_duplicates([*((d.kind, d.name) for d in documents), *deletes])
    order = sorted(range(len(documents)), key=lambda i: _KIND_ORDER[documents[i].kind])
    references = [list(KINDS[d.kind].references(d.spec)) for d in documents]
    keys = {(d.kind, d.name) for d in documents} | set(deletes)
    keys.update((r.kind, r.name) for refs in references for r in refs)
    rows = find_rows(connection, keys)
    for j, key in enumerate(deletes):
        if key not in rows:
            raise NotFound(f"{key[0]}/{key[1]} does not exist").about(
                DocumentRef(len(documents) + j, *key)
            )
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
    known_invalid = {k: r for k, r in invalid.items() if k not in batch and k not in deletes}
    before: dict[int, Mesh] = {}
    writes = [prepared[i] for i in changed]
    reads = _knowing((w.plural, w.name, w.old) for w in writes)  # before the batch
    reads.nothing_stored = holds_no_neighbours(connection)
    for i in changed:
        with _about(documents, i):
            check_references(prepared[i], known_invalid, also=batch)
            if isinstance(spec := prepared[i].spec, TlsCertificateSpec):
                keep_edge_key(connection, spec, sealed or {}, now)
            if (seen := _neighbourhood(connection, prepared[i], reads)) is not None:
                before[i] = seen
    outcomes = {i: w.unchanged for i, w in prepared.items() if w.unchanged is not None}
    pending = PendingWrites()
    for i in changed:
        outcomes[i] = commit_write(
            connection, prepared[i], revision=revision, now=now, by=by, pending=pending
        )
    pending.flush(connection)
    _delete(connection, documents, deletes, rows, revision, source, now, by)
    reads = _knowing((w.plural, w.name, w.spec) for w in writes)  # and after it
    for i, was in before.items():
        with _about(documents, i):
            write = prepared[i]
            now_seen = _neighbourhood(connection, write, reads)
            assert now_seen is not None
            refuse_problems(was, now_seen, write.plural, write.name, write.spec)
    return BatchResult(
        [outcomes[i] for i in range(len(documents))],
        [None if (row := prepared[i].row) is None else row.spec for i in range(len(documents))],
        [rows[key].spec for key in deletes],
    )


def _delete(
    connection: Connection,
    documents: Sequence[Document],
    deletes: Sequence[Key],
    rows: Mapping[Key, Row[Any]],
    revision: int,
    source: Source,
    now: datetime,
    by: str | None,
) -> None:
    """Delete `deletes` once the documents are written (their references as they will be),
    refusing the first that something left in the mesh still refers to."""
    gone = set(deletes)
    referrers = {
        key: [r for r in found if r not in gone]
        for key, found in referrers_of(connection, deletes).items()
    }
    pending = PendingWrites()
    for j, key in enumerate(deletes):
        with _about_index(len(documents) + j, key):
            refuse_referred([key], referrers)
        gather_delete(pending, rows[key], revision=revision, source=source, now=now, by=by)
    pending.flush(connection)


def _neighbourhood(connection: Connection, write: PreparedWrite, reads: Reads) -> Mesh | None:
    """The rules' view around `write` (None: no rule needs one), as the database holds it
    now: before the batch's writes, or after them."""
    return rule_neighbourhood(
        connection,
        write.plural,
        write.name,
        write.spec,
        write.old,
        reads,
        stored=write.row is not None,
    )


def _knowing(specs: Iterable[tuple[str, str, Spec | None]]) -> Reads:
    """Reads of one database state that take the batch's own specs as parsed: what the batch
    writes (or the valid spec it replaces, before it) is what a read of its row would parse,
    as the change feed hands the written specs to the builder."""
    reads = Reads()
    reads.parsed.update(((kind, name), spec) for kind, name, spec in specs if spec is not None)
    return reads


def _about(documents: Sequence[Document], index: int) -> AbstractContextManager[None]:
    """Name document `index` in whatever refusal the block raises."""
    return _about_index(index, (documents[index].kind, documents[index].name))


@contextmanager
def _about_index(index: int, key: Key) -> Iterator[None]:
    """Name the batch's entry `index`, `key`, in whatever refusal the block raises."""
    try:
        yield
    except MeshplaneError as exc:
        raise exc.about(DocumentRef(index, *key)) from None


def _refuse_duplicates(keys: Sequence[Key]) -> None:
    seen: set[Key] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise InvalidMesh(f"{key[0]}/{key[1]} appears twice").about(DocumentRef(i, *key))
        seen.add(key)
