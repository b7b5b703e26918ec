"""The Store: one short transaction per call, driver errors mapped, the feed told after commit.

This is the store's only public face; `repo` holds the rules, this module holds the
transactions. Each method opens its own session, so a Store is safe to share between tasks.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from meshplane.errors import Conflict
from meshplane.model import Change, Mesh, Spec
from meshplane.store import repo
from meshplane.store.engine import WRITE, create_engine, migrate
from meshplane.store.feed import ChangeFeed
from meshplane.store.repo import IfMatch, Source, StoredResource

__all__ = ["Store", "open_store"]

log = logging.getLogger(__name__)


class Store:
    """The mesh's resources in SQL, with a global revision bumped once per committed write."""

    def __init__(self, engine: AsyncEngine, feed: ChangeFeed) -> None:
        self._engine = engine
        self._feed = feed
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def feed(self) -> ChangeFeed:
        """Published to after every commit; wait on it, then call `changes_since`."""
        return self._feed

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection; the Store is unusable afterwards."""
        await self._engine.dispose()

    @asynccontextmanager
    async def _transaction(
        self, *, snapshot: bool = False, write: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """One session, one transaction: committed if the block returns, else rolled back.

        `write` takes SQLite's write lock up front, so concurrent writers queue (busy timeout)
        instead of failing; PostgreSQL serialises them on the revision row anyway.

        `snapshot` makes every read in the block see one consistent state. SQLite's single
        transaction already does (WAL readers read one snapshot); PostgreSQL's default READ
        COMMITTED takes a new snapshot per statement, so ask for REPEATABLE READ there.
        """
        try:
            async with self._sessions() as session:
                if write and not self._postgres:
                    await session.connection(execution_options={WRITE: True})
                if snapshot and self._postgres:
                    await session.connection(
                        execution_options={
                            "isolation_level": "REPEATABLE READ",
                            "postgresql_readonly": True,
                        }
                    )
                yield session
                await session.commit()
        except IntegrityError as exc:
            # Only reachable if a check in repo was bypassed by a concurrent writer that did not
            # take the revision lock; the database refused, so nothing changed.
            raise Conflict(f"the write conflicts with another one: {exc.orig}") from exc

    def _committed(self, revision: int) -> None:
        if revision % repo.PRUNE_EVERY == 0:
            log.info("pruned change log revision=%d keep=%d", revision, repo.CHANGE_LOG_KEEP)
        self._feed.publish(revision)

    async def revision(self) -> int:
        """The revision of the newest committed write (0 for an empty mesh)."""
        async with self._transaction() as session:
            return await repo.current_revision(session)

    async def get(self, kind: str, name: str) -> StoredResource:
        """One resource by kind plural and name; NotFound if it does not exist."""
        async with self._transaction() as session:
            return await repo.get_resource(session, kind, name)

    async def list(self, kind: str) -> list[StoredResource]:
        """Every resource of a kind, ordered by name."""
        async with self._transaction() as session:
            return await repo.list_resources(session, kind)

    async def put(
        self,
        kind: str,
        name: str,
        spec: Spec,
        *,
        if_match: IfMatch = None,
        source: Source = "api",
    ) -> tuple[StoredResource, bool]:
        """Create or replace a resource; return it and whether it was created.

        A spec equal to the stored one changes nothing (no revision, same version). Raises
        PreconditionFailed (stale `if_match`; "*" requires it to exist), InvalidMesh (a
        reference to a missing resource; `field` names it), NotFound (unknown kind).
        """
        now = datetime.now(UTC)
        async with self._transaction(write=True) as session:
            revision = await repo.bump_revision(session)
            outcome = await repo.put_resource(
                session,
                kind,
                name,
                spec,
                revision=revision,
                if_match=if_match,
                source=source,
                now=now,
            )
            if not outcome.changed:
                await session.rollback()
        if outcome.changed:
            self._committed(revision)
            log.info("put kind=%s name=%s revision=%d source=%s", kind, name, revision, source)
        return outcome.resource, outcome.created

    async def delete(
        self, kind: str, name: str, *, if_match: IfMatch = None, source: Source = "api"
    ) -> None:
        """Delete a resource.

        Raises NotFound, PreconditionFailed (stale `if_match`), or Conflict naming every
        resource that still refers to it.
        """
        async with self._transaction(write=True) as session:
            revision = await repo.bump_revision(session)
            await repo.delete_resource(
                session, kind, name, revision=revision, if_match=if_match, source=source
            )
        self._committed(revision)
        log.info("delete kind=%s name=%s revision=%d source=%s", kind, name, revision, source)

    async def load_mesh(self) -> Mesh:
        """The whole mesh at one revision, read from one snapshot."""
        async with self._transaction(snapshot=True) as session:
            revision = await repo.current_revision(session)
            specs = await repo.all_specs(session)
        return Mesh.of(revision, specs)

    async def changes_since(self, revision: int) -> builtins.list[Change] | None:
        """Changes after `revision`, oldest first; None if the log no longer reaches back.

        On None, reload with `load_mesh`: the log keeps only the newest ~10,000 changes.
        """
        async with self._transaction(snapshot=True) as session:
            return await repo.changes_after(session, revision)


async def open_store(url: str) -> Store:
    """Connect to `url`, bring its schema up to date, and return a Store with a primed feed.

    The caller owns the result and must `await store.close()`.
    """
    engine = create_engine(url)
    try:
        await migrate(engine)
        store = Store(engine, ChangeFeed())
        store.feed.publish(await store.revision())
    except BaseException:
        await engine.dispose()
        raise
    return store
