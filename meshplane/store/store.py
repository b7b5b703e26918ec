"""The Store: one short transaction per call, driver errors mapped, the feed told after commit.

This is the store's only public face; `repo` holds the rules, this module holds the
transactions, each run whole on a database thread (`database.py`). A Store is safe to share
between tasks. It also keeps track of the stored resources that no longer validate
(`invalid.py`): every read notes those it meets, a write or delete of that name forgets it.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from meshplane.errors import Conflict
from meshplane.model import Change, Key, Mesh, Spec
from meshplane.store import repo
from meshplane.store.batch import BatchResult, Document, write_batch
from meshplane.store.database import Database, open_database
from meshplane.store.edge_keys import KeySealer, keyless, open_keys, sealed_keys
from meshplane.store.feed import ChangeFeed
from meshplane.store.history import HistoryEntry, history
from meshplane.store.holders import release
from meshplane.store.invalid import InvalidResource, InvalidResources, StoredInvalid
from meshplane.store.reconcile import Plan, prune_deletes, rollback_plan
from meshplane.store.repo import IfMatch, Source, StoredResource, WriteOutcome
from meshplane.store.revisions import (
    DEFAULT_HISTORY_REVISIONS,
    Difference,
    StateAt,
    differences,
    history_range,
    mesh_at,
    prune_history,
    save_message,
)

__all__ = ["Applied", "Document", "InvalidReport", "Store", "open_store"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_YIELDS_FOR_THE_PUSH = 2


@dataclass(frozen=True, slots=True)
class InvalidReport:
    """A stored resource that no longer validates, and the resources it keeps out of the
    translation because they refer to it."""

    resource: InvalidResource
    left_out: tuple[Key, ...]


class Store:
    """The mesh's resources in SQL, with a global revision bumped once per committed write."""

    def __init__(
        self,
        database: Database,
        feed: ChangeFeed,
        *,
        history_revisions: int = DEFAULT_HISTORY_REVISIONS,
        sealer: KeySealer | None = None,
    ) -> None:
        self._database = database
        self._feed = feed
        self._sealer = sealer  # seals edge certificates' keys; None: such writes are refused
        self._invalid = InvalidResources()
        self._history_revisions = history_revisions

    @property
    def feed(self) -> ChangeFeed:
        """Published to after every commit, with the committed change; see `changes_since`."""
        return self._feed

    @property
    def database(self) -> Database:
        return self._database

    async def close(self) -> None:
        """Close every pooled connection; the Store is unusable afterwards."""
        await self._database.dispose()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        try:
            return await self._database.write(work)
        except IntegrityError as exc:
            # Only reachable if a check in repo was bypassed by a concurrent writer that did not
            # take the revision lock; the database refused, so nothing changed.
            raise Conflict(f"the write conflicts with another one: {exc.orig}") from exc

    def _logged(self, connection: Connection, revision: int, message: str | None) -> None:
        """In a write's transaction, after its changes: keep its message, prune the history."""
        if message:
            save_message(connection, revision, message)
        if (start := prune_history(connection, revision, self._history_revisions)) is not None:
            log.info("pruned history revision=%d history_start=%d", revision, start)

    async def _committed(self, revision: int, changes: Sequence[Change]) -> None:
        self._feed.publish(revision, changes)
        # When the writer runs on the feed's own loop (an app served in place, as tests do), let
        # the push go before its answer: the first yield runs the snapshot builder the publish
        # woke, the second lets the streams send. Ordering only: nothing waits here if no
        # builder is listening. `meshplane serve` runs the API on a loop of its own (see
        # api/core_loop.py): there the feed's loop takes the publish as soon as it is free.
        for _ in range(_YIELDS_FOR_THE_PUSH):
            await asyncio.sleep(0)

    async def revision(self) -> int:
        """The revision of the newest committed write (0 for an empty mesh)."""
        return await self._database.read(repo.current_revision)

    async def get(self, kind: str, name: str) -> StoredResource:
        """One resource by kind plural and name; NotFound if it does not exist, StoredInvalid
        (a Conflict) if its stored spec no longer validates."""
        try:
            return await self._database.read(
                functools.partial(repo.get_resource, kind=kind, name=name)
            )
        except StoredInvalid as exc:
            self._invalid.found([exc.resource])
            raise

    async def list(self, kind: str) -> list[StoredResource]:
        """Every resource of a kind that validates, ordered by name."""
        return (await self.listing(kind))[0]

    async def listing(
        self, kind: str
    ) -> tuple[builtins.list[StoredResource], builtins.list[InvalidResource]]:
        """Every resource of a kind, ordered by name: those that validate, and apart those
        whose stored spec no longer does."""
        valid, invalid = await self._database.read(
            functools.partial(repo.list_resources, kind=kind)
        )
        self._invalid.found(invalid)
        return valid, invalid

    async def invalid_resources(self) -> builtins.list[InvalidReport]:
        """The stored resources that no longer validate, by kind and name, each with what it
        keeps out of the translation. Known from the last full load (made now if none was),
        the reads since, and the change log."""
        if not self._invalid.loaded:
            await self.load_mesh()
        known = self._invalid.all()
        if not known:
            return []
        referrers = await self._database.read(
            functools.partial(repo.referrers_of, keys=[r.key for r in known])
        )
        return [InvalidReport(r, tuple(referrers.get(r.key, ()))) for r in known]

    async def put(
        self,
        kind: str,
        name: str,
        spec: Spec,
        *,
        if_match: IfMatch = None,
        source: Source = "api",
        by: str | None = None,
        message: str | None = None,
    ) -> tuple[StoredResource, bool]:
        """Create or replace a resource; return it and whether it was created.

        A spec equal to the stored one changes nothing (no revision, same version). Raises
        PreconditionFailed (stale `if_match`; "*" requires it to exist), InvalidMesh (a
        reference to a missing resource, or to one whose stored spec no longer validates;
        `field` names it), NotFound (unknown kind). A put over a stored spec that no longer
        validates fixes it. `by` says who writes (an API token's name; "auto" when `source`
        is); it is kept on the resource and in the change log, with `message` (why).
        """
        now = datetime.now(UTC)
        by = _who(source, by)
        invalid = self._invalid.by_key() if self._invalid else None
        sealed = sealed_keys([spec], self._sealer)
        spec = keyless(spec)

        def work(connection: Connection) -> WriteOutcome:
            revision = repo.bump_revision(connection)
            outcome = repo.put_resource(
                connection,
                kind,
                name,
                spec,
                revision=revision,
                if_match=if_match,
                source=source,
                now=now,
                invalid=invalid,
                by=by,
                sealed=sealed,
            )
            if not outcome.changed:
                connection.rollback()  # gives the revision number back
            else:
                self._logged(connection, revision, message)
            return outcome

        outcome = await self._write(work)
        stored = outcome.resource
        if outcome.changed:
            self._invalid.cleared((stored.kind, name), stored.version)
            change = Change(stored.version, stored.kind, name, stored.spec)
            await self._committed(stored.version, [change])
            log.info(
                "put kind=%s name=%s revision=%d source=%s by=%s",
                kind,
                name,
                stored.version,
                source,
                by,
            )
        return stored, outcome.created

    async def apply(
        self,
        documents: Sequence[Document],
        *,
        source: Source = "api",
        by: str | None = None,
        message: str | None = None,
        prune: Sequence[str] = (),
        dry_run: bool = False,
    ) -> tuple[int, builtins.list[Applied]]:
        """Create or replace every document in one transaction, at one revision: all or none.

        Each document is checked as a put is (If-Match, references, the mesh rules), but
        against the mesh as it will be after the whole batch (`batch.py`), so the order of the
        documents never matters. `prune` (kind plurals) also deletes what operators wrote of
        those kinds that the documents do not name (never an auto-registered endpoint). The
        first refusal raises, naming its document (`MeshplaneError.document`; a deletion by
        its place after the documents), and nothing is written. `dry_run` checks everything
        the same way and writes nothing. Returns the revision (the current one when nothing
        changed; the one it would have been, for a dry run that changes something) and each
        document's outcome, in their order, then each deletion's.
        """
        keep = [(d.kind, d.name) for d in documents]
        sealed = sealed_keys([d.spec for d in documents], self._sealer)
        documents = [_keyless(d) for d in documents]

        def plan(connection: Connection) -> Plan:
            deletes = prune_deletes(connection, prune, keep) if prune else []
            return Plan(list(documents), deletes)

        return await self._batch(
            plan, source=source, by=by, message=message, dry_run=dry_run, sealed=sealed
        )

    async def rollback(
        self,
        revision: int,
        *,
        cascade: bool = False,
        by: str | None = None,
        message: str | None = None,
        dry_run: bool = False,
    ) -> tuple[int, builtins.list[Applied]]:
        """Make what operators wrote equal to what it was at `revision`, as one new revision
        (the history is never rewritten), checked as any batch is (`reconcile.py` says what
        is and is not rolled back). NotFound if `revision` is not retained; Conflict if it
        would leave auto-registered endpoints referring to nothing, unless `cascade` removes
        them. Returns as `apply` does (nothing to do: the current revision, no outcome)."""
        message = message or f"rollback to revision {revision}"
        return await self._batch(
            functools.partial(rollback_plan, revision=revision, cascade=cascade),
            source="api",
            by=by,
            message=message,
            dry_run=dry_run,
        )

    async def _batch(
        self,
        plan: Callable[[Connection], Plan],
        *,
        source: Source,
        by: str | None,
        message: str | None,
        dry_run: bool,
        sealed: Mapping[str, bytes] | None = None,
    ) -> tuple[int, builtins.list[Applied]]:
        """Write, in one transaction at one revision, the batch `plan` makes in it (with the
        sealed keys of the certificates it carried in, see edge_keys.py)."""
        now = datetime.now(UTC)
        by = _who(source, by)
        invalid = self._invalid.by_key()

        def work(connection: Connection) -> tuple[int, Plan, BatchResult]:
            revision = repo.bump_revision(connection)
            batch = plan(connection)
            result = write_batch(
                connection,
                batch.documents,
                revision=revision,
                source=source,
                now=now,
                by=by,
                invalid=invalid,
                deletes=batch.deletes,
                sealed=sealed,
            )
            changed = bool(batch.deletes) or any(o.changed for o in result.outcomes)
            if dry_run or not changed:
                connection.rollback()  # writes nothing, and gives the revision number back
                revision -= 0 if dry_run and changed else 1
            else:
                self._logged(connection, revision, message)
            return revision, batch, result

        revision, batch, result = await self._write(work)
        applied = _applied(batch, result, revision)
        changes = [change for a in applied if (change := a.change) is not None]
        if changes and not dry_run:
            for change in changes:
                self._invalid.cleared((change.kind, change.name), revision)
            await self._committed(revision, changes)
            log.info(
                "apply documents=%d deleted=%d changed=%d revision=%d by=%s",
                len(batch.documents),
                len(batch.deletes),
                len(changes),
                revision,
                by,
            )
        return revision, applied

    async def mesh_at(
        self, revision: int, *, kind: str | None = None, name: str | None = None
    ) -> builtins.list[StateAt]:
        """Every resource (of `kind`, named `name`) as it was at `revision`; NotFound if that
        revision is not in the retained history."""
        return await self._database.read(
            functools.partial(mesh_at, revision=revision, kind=kind, name=name), snapshot=True
        )

    async def differences(self, older: int, newer: int) -> builtins.list[Difference]:
        """What differs between two retained revisions (older < newer)."""
        return await self._database.read(
            functools.partial(differences, older=older, newer=newer), snapshot=True
        )

    async def history_range(self) -> tuple[int, int]:
        """The oldest revision the history can rebuild, and the current one."""
        return await self._database.read(history_range)

    async def delete(
        self,
        kind: str,
        name: str,
        *,
        if_match: IfMatch = None,
        source: Source = "api",
        by: str | None = None,
        held_by: str | None = None,
        message: str | None = None,
    ) -> None:
        """Delete a resource (`by` and `message` as for `put`); `held_by` (an auto-registered
        endpoint's) deletes it only if that replica still holds its sidecar (holders.py).

        Raises NotFound, PreconditionFailed (stale `if_match`, or held by another replica), or
        Conflict naming every resource that still refers to it.
        """

        by = _who(source, by)
        now = datetime.now(UTC)

        def work(connection: Connection) -> int:
            revision = repo.bump_revision(connection)
            if held_by is not None:
                release(connection, name, held_by)
            repo.delete_resource(
                connection,
                kind,
                name,
                revision=revision,
                if_match=if_match,
                source=source,
                now=now,
                by=by,
            )
            self._logged(connection, revision, message)
            return revision

        revision = await self._write(work)
        self._invalid.cleared((kind, name), revision)
        await self._committed(revision, [Change(revision, kind, name, None)])
        log.info(
            "delete kind=%s name=%s revision=%d source=%s by=%s", kind, name, revision, source, by
        )

    async def history(
        self,
        *,
        kind: str | None = None,
        name: str | None = None,
        by: str | None = None,
        before: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[HistoryEntry]:
        """What changed, newest first: per resource each revision changed, when, who, what it
        did and why (the message given with it)."""
        return await self._database.read(
            functools.partial(
                history,
                kind=kind,
                name=name,
                by=by,
                before=before,
                since=since,
                until=until,
                limit=limit,
            )
        )

    async def referrers(self, keys: Iterable[Key]) -> dict[Key, builtins.list[Key]]:
        """For each of `keys`, the resources whose specs refer to it, by kind and name."""
        wanted = list(keys)
        return await self._database.read(functools.partial(repo.referrers_of, keys=wanted))

    async def edge_keys(self, fingerprints: Iterable[str]) -> dict[str, bytes]:
        """The private keys (PEM) of the edge certificates with these fingerprints, opened; for
        the xDS side, which serves them over SDS to the gateways presenting them."""
        if self._sealer is None:
            return {}
        sealer, wanted = self._sealer, list(fingerprints)
        return await self._database.read(lambda c: open_keys(c, wanted, sealer))

    async def load_mesh(self) -> Mesh:
        """The whole mesh at one revision, read from one snapshot.

        Resources whose stored spec no longer validates are left out of it, with whatever
        refers to them (see `Mesh`), and logged the first time they are found.
        """

        def work(connection: Connection) -> tuple[Mesh, builtins.list[InvalidResource]]:
            revision = repo.current_revision(connection)
            specs, invalid = repo.all_specs(connection)
            return Mesh.of(revision, specs, [(r.kind, r.name, r.reason) for r in invalid]), invalid

        mesh, invalid = await self._database.read(work, snapshot=True)
        self._invalid.reloaded(mesh.revision, invalid)
        return mesh

    async def changes_since(self, revision: int) -> builtins.list[Change] | None:
        """Changes after `revision`, oldest first; None if the log no longer reaches back.

        Recent changes come from the feed's memory of this process's commits; older ones from
        the change log. On None, reload with `load_mesh`: the log keeps only the newest ~10,000.
        """
        recent = self._feed.changes_after(revision)
        if recent is not None:
            return recent
        changes = await self._database.read(
            functools.partial(repo.changes_after, revision=revision), snapshot=True
        )
        for change in changes or ():
            if change.invalid is None:
                self._invalid.cleared((change.kind, change.name), change.revision)
            else:
                self._invalid.found(
                    [InvalidResource(change.kind, change.name, change.revision, change.invalid)]
                )
        return changes


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch did to one of its documents, or to a resource it deleted: `before` is the
    stored spec it replaced or deleted (None for a create), `resource` what is stored now
    (None for a deletion)."""

    kind: str
    name: str
    outcome: Literal["created", "configured", "unchanged", "deleted"]
    version: int  # the batch's revision, unless unchanged
    before: dict[str, Any] | None
    resource: StoredResource | None

    @property
    def after(self) -> dict[str, Any] | None:
        return None if self.resource is None else repo.canonical(self.resource.spec)

    @property
    def change(self) -> Change | None:
        """What the feed is told of it (None: unchanged), at the batch's revision."""
        if self.outcome == "unchanged":
            return None
        spec = None if self.resource is None else self.resource.spec
        return Change(self.version, self.kind, self.name, spec)


def _applied(batch: Plan, result: BatchResult, revision: int) -> builtins.list[Applied]:
    applied = [
        Applied(
            o.resource.kind, o.resource.name, _outcome(o), o.resource.version, before, o.resource
        )
        for o, before in zip(result.outcomes, result.replaced, strict=True)
    ]
    applied += [
        Applied(kind, name, "deleted", revision, spec, None)
        for (kind, name), spec in zip(batch.deletes, result.deleted, strict=True)
    ]
    return applied


def _outcome(outcome: WriteOutcome) -> Literal["created", "configured", "unchanged"]:
    if outcome.created:
        return "created"
    return "configured" if outcome.changed else "unchanged"


def _keyless(document: Document) -> Document:
    """`document` without the key its certificate carried in (the same object when none)."""
    spec = keyless(document.spec)
    return document if spec is document.spec else replace(document, spec=spec)


def _who(source: Source, by: str | None) -> str | None:
    """Who makes a write: the caller's name for it, else "auto" for auto-registration."""
    return by if by is not None else ("auto" if source == "auto" else None)


async def open_store(
    url: str,
    *,
    history_revisions: int = DEFAULT_HISTORY_REVISIONS,
    sealer: KeySealer | None = None,
) -> Store:
    """Connect to `url`, bring its schema up to date, and return a Store with a primed feed
    that keeps `history_revisions` revisions of history and seals edge keys with `sealer`.

    The caller owns the result and must `await store.close()`.
    """
    database = open_database(url)
    try:
        await database.migrate()
        store = Store(database, ChangeFeed(), history_revisions=history_revisions, sealer=sealer)
        store.feed.publish(await store.revision())
    except BaseException:
        await database.dispose()
        raise
    return store
