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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from meshplane.errors import Conflict
from meshplane.model import Change, Key, Mesh, Spec
from meshplane.store import repo
from meshplane.store.batch import Document, write_batch
from meshplane.store.database import Database, open_database
from meshplane.store.feed import ChangeFeed
from meshplane.store.history import HistoryEntry, history
from meshplane.store.holders import release
from meshplane.store.invalid import InvalidResource, InvalidResources, StoredInvalid
from meshplane.store.repo import IfMatch, Source, StoredResource, WriteOutcome

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

    def __init__(self, database: Database, feed: ChangeFeed) -> None:
        self._database = database
        self._feed = feed
        self._invalid = InvalidResources()

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

    async def _committed(self, revision: int, changes: Sequence[Change]) -> None:
        if revision % repo.PRUNE_EVERY == 0:
            log.info("pruned change log revision=%d keep=%d", revision, repo.CHANGE_LOG_KEEP)
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
    ) -> tuple[StoredResource, bool]:
        """Create or replace a resource; return it and whether it was created.

        A spec equal to the stored one changes nothing (no revision, same version). Raises
        PreconditionFailed (stale `if_match`; "*" requires it to exist), InvalidMesh (a
        reference to a missing resource, or to one whose stored spec no longer validates;
        `field` names it), NotFound (unknown kind). A put over a stored spec that no longer
        validates fixes it. `by` says who writes (an API token's name; "auto" when `source`
        is); it is kept on the resource and in the change log.
        """
        now = datetime.now(UTC)
        by = _who(source, by)
        invalid = self._invalid.by_key() if self._invalid else None

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
            )
            if not outcome.changed:
                connection.rollback()  # gives the revision number back
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
        self, documents: Sequence[Document], *, source: Source = "api", by: str | None = None
    ) -> tuple[int, builtins.list[Applied]]:
        """Create or replace every document in one transaction, at one revision: all or none.

        Each document is checked as a put is (If-Match, references, the mesh rules), but
        against the mesh as it will be after the whole batch (`batch.py`), so the order of the
        documents never matters. The first refusal raises, naming its document
        (`MeshplaneError.document`), and nothing is written. Returns the revision (the current
        one when nothing changed) and each document's outcome, in their order.
        """
        now = datetime.now(UTC)
        by = _who(source, by)
        invalid = self._invalid.by_key()

        def work(connection: Connection) -> tuple[int, builtins.list[WriteOutcome]]:
            revision = repo.bump_revision(connection)
            outcomes = write_batch(
                connection,
                documents,
                revision=revision,
                source=source,
                now=now,
                by=by,
                invalid=invalid,
            )
            if not any(o.changed for o in outcomes):
                connection.rollback()  # gives the revision number back
                revision -= 1
            return revision, outcomes

        revision, outcomes = await self._write(work)
        changes = [
            Change(revision, o.resource.kind, o.resource.name, o.resource.spec)
            for o in outcomes
            if o.changed
        ]
        if changes:
            for o in outcomes:
                if o.changed:
                    self._invalid.cleared((o.resource.kind, o.resource.name), revision)
            await self._committed(revision, changes)
            log.info(
                "apply documents=%d changed=%d revision=%d by=%s",
                len(documents),
                len(changes),
                revision,
                by,
            )
        return revision, [Applied(o.resource, _outcome(o)) for o in outcomes]

    async def delete(
        self,
        kind: str,
        name: str,
        *,
        if_match: IfMatch = None,
        source: Source = "api",
        by: str | None = None,
        held_by: str | None = None,
    ) -> None:
        """Delete a resource (`by` as for `put`); `held_by` (an auto-registered endpoint's)
        deletes it only if that replica still holds its sidecar (store/holders.py).

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
        limit: int = 100,
    ) -> builtins.list[HistoryEntry]:
        """What changed, newest first: per resource each revision changed, when and who."""
        return await self._database.read(
            functools.partial(history, kind=kind, name=name, by=by, before=before, limit=limit)
        )

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
    """What a batch did to one of its documents."""

    resource: StoredResource
    outcome: Literal["created", "configured", "unchanged"]


def _outcome(outcome: WriteOutcome) -> Literal["created", "configured", "unchanged"]:
    if outcome.created:
        return "created"
    return "configured" if outcome.changed else "unchanged"


def _who(source: Source, by: str | None) -> str | None:
    """Who makes a write: the caller's name for it, else "auto" for auto-registration."""
    return by if by is not None else ("auto" if source == "auto" else None)


async def open_store(url: str) -> Store:
    """Connect to `url`, bring its schema up to date, and return a Store with a primed feed.

    The caller owns the result and must `await store.close()`.
    """
    database = open_database(url)
    try:
        await database.migrate()
        store = Store(database, ChangeFeed())
        store.feed.publish(await store.revision())
    except BaseException:
        await database.dispose()
        raise
    return store
