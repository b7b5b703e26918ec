"""The snapshot builder: follows the store's change feed and keeps every watched group's snapshot.

Coalescing without delay (shared/DESIGN.md rule 7): the first change after a quiet period is built
at once; changes committed while a build runs are folded into the next build, which starts as
soon as the current one ends. A snapshot always reflects whole commits, never half a write.
Resources every proxy sees (clusters, endpoints) are translated and serialized once per revision
and shared by all groups; only listeners and route configurations are built per group. Work
follows the change: an endpoint-only change rebuilds just the load assignments it touches; a
change that leaves endpoints and label subsets alone (a route's weights, matches, timeouts; a
gateway; a policy; a service added, removed or with new settings) rebuilds the groups' listeners
and routes, and the clusters (and, for an added service, load assignments) of those services; a
change to routes attached to gateways only rebuilds those gateways' groups (the others are served
their snapshot as it is, at the new revision).

Builds run off the event loop, so every xDS stream keeps being served meanwhile (the API has a
loop of its own, see api/core_loop.py):
translation and packing run in a worker thread on a fork of the build state (build_state.py),
and the loop adopts the fork and publishes to the cache when the build ends (the cache is only
written on the loop). One build runs at a time. A stream whose group was not built yet is
served at once from the last build (`ensure`); a group that connected, or identities that
changed, during a build are built again right after it (no snapshot is published with secrets
older than the current identities). Endpoint-only changes stay on the loop: their work is
proportional to the change (about a millisecond), less than a build in a thread would cost the
loop in interpreter-lock handoffs.
While the store is unreachable the last snapshots keep serving, and the builder tries again,
backing off, until it catches up; the store reports the outage once, so the builder logs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from meshplane.metrics import Metrics
from meshplane.model import Change, EndpointSpec, IdentityState, Mesh, ProxyGroup
from meshplane.xds.build_state import BuildState, Built, Groups, TranslateHook
from meshplane.xds.cache import ResourceCache
from meshplane.xds.resources import Snapshot
from meshplane.xds.store_port import EdgeKeySource, MeshSource, when_reachable
from meshplane.xds.type_urls import ENDPOINT

__all__ = ["SnapshotBuilder", "TranslateHook"]

log = logging.getLogger(__name__)

# A build step: given the fork it builds on, the groups to build, the identities and the time of
# the change, what it made.
_Step = Callable[[BuildState, Groups, IdentityState, float | None], Built]


class SnapshotBuilder:
    """Mesh (from the store) -> translate -> pack -> ResourceCache, for the groups being watched."""

    def __init__(
        self,
        source: MeshSource,
        cache: ResourceCache,
        *,
        hook: TranslateHook | None = None,
        trust_domain: str = "meshplane.local",
        on_missing_identity: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
        edge_keys: EdgeKeySource | None = None,
    ) -> None:
        self._edge_key_source = edge_keys
        self._metrics = metrics
        self._changed_at: float | None = None  # when the change being built was noticed
        self._source = source
        self._cache = cache
        self._trust_domain = trust_domain
        self._identities = IdentityState(trust_domain)
        self._on_missing_identity = on_missing_identity
        self._state = BuildState(Mesh(trust_domain=trust_domain), hook)  # loop-owned
        self.ready = asyncio.Event()

    @property
    def mesh(self) -> Mesh:
        """The mesh of the last finished build: what the cache's snapshots are built from."""
        return self._state.mesh

    async def load(self) -> None:
        """Read the whole mesh and build the shared resources; call before serving streams."""
        await self._reload()
        self.ready.set()

    async def run(self) -> None:
        """Follow the change feed forever (until cancelled)."""
        if not self.ready.is_set():
            await self.load()
        while True:
            await self._source.wait_beyond(self.mesh.revision)
            self._changed_at = time.monotonic()
            # A failed attempt changed nothing: catch_up fails at its first read, if at all.
            await when_reachable(self.catch_up)

    async def catch_up(self) -> None:
        """Apply every change committed since the mesh's revision and republish."""
        changes = await self._source.changes_since(self.mesh.revision)
        if changes is None:
            log.info("change log pruned past revision=%d; reloading the mesh", self.mesh.revision)
            await self._reload()
            return
        if not changes:
            return
        before = self.mesh
        after = before.with_changes(changes)
        if any(c.kind == "tls-certificates" for c in changes):
            await self._fetch_edge_keys(after)
        moved = _quarantine_moved(before, after)
        if (
            self._state.subsets is not None
            and not moved
            and {c.kind for c in changes} == {"endpoints"}
        ):
            self._state.mesh = after  # no build runs: the loop owns the state
            self._update_endpoints(_services_touched(before, changes))
            return

        await self._build(
            lambda state, groups, ids, at: state.follow(
                after, changes, groups, ids, at, everything=moved
            )
        )

    async def preview(
        self, changes: Sequence[Change]
    ) -> list[tuple[ProxyGroup, Snapshot | None, Snapshot]]:
        """Each watched group's snapshot now and as it would be after `changes` (a dry run's
        uncommitted batch), built on a fork in a worker thread as a build is: nothing is
        published, and builds go on meanwhile."""
        after = self.mesh.with_changes(changes)
        current = {group: self._cache.snapshot(group) for group in self._cache.watched_groups()}
        fork = self._state.fork()
        moved = _quarantine_moved(self.mesh, after)
        built = await asyncio.to_thread(
            functools.partial(fork.follow, everything=moved),
            after,
            changes,
            current,
            self._identities,
            None,
        )
        return [(group, current[group], snapshot) for group, snapshot in built.snapshots]

    async def _reload(self) -> None:
        mesh = replace(await self._source.load_mesh(), trust_domain=self._trust_domain)
        await self._fetch_edge_keys(mesh)
        await self._build(lambda state, groups, ids, at: state.reload(mesh, groups, ids, at))

    async def _build(self, step: _Step) -> None:
        """Run `step` for every watched group; then build again the groups it left stale
        (connected, or given new identities, while it ran) until none is."""
        await self._run(step, self._cache.watched_groups())
        while stale := [g for g in self._cache.watched_groups() if self._stale(g)]:
            await self._run(BuildState.snapshots, stale)

    async def _run(self, step: _Step, groups: list[ProxyGroup]) -> None:
        """Run `step` on a fork of the state in a worker thread; adopt the fork and publish
        what it built for groups still watched, unless identities changed meanwhile."""
        started = time.perf_counter()
        fork = self._state.fork()
        current = {group: self._cache.snapshot(group) for group in groups}
        built = await asyncio.to_thread(step, fork, current, self._identities, self._changed_at)
        self._state = fork
        watched = set(self._cache.watched_groups())
        for group, snapshot in built.snapshots:
            if group in watched and snapshot.identity_version == self._identities.version:
                self._cache.publish(group, snapshot)
            self._ask_for_identity(group)
        self._built(started, len(built.snapshots), "", built.scope)

    def _stale(self, group: ProxyGroup) -> bool:
        """Whether the group's snapshot is missing or older than the built mesh or identities."""
        snapshot = self._cache.snapshot(group)
        return (
            snapshot is None
            or snapshot.revision < self.mesh.revision
            or snapshot.identity_version < self._identities.version
        )

    def _update_endpoints(self, services: set[str]) -> None:
        """Swap the fresh load assignments of `services` into every watched group's snapshot
        (see BuildState.endpoints)."""
        started = time.perf_counter()
        fresh = self._state.endpoints(services)
        count = 0
        for group in self._cache.watched_groups():
            current = self._cache.snapshot(group)
            if current is None:
                continue
            updated = current.replacing(
                ENDPOINT,
                fresh[group.zone if group.zone in fresh else None],
                self.mesh.revision,
                self._changed_at,
            )
            self._cache.publish(group, updated)
            count += 1
        self._built(started, count, f"clusters={len(fresh[None])}", "endpoints only")

    async def _fetch_edge_keys(self, mesh: Mesh) -> None:
        """Read the keys of `mesh`'s edge certificates not read yet (before building it, so
        its gateways' secrets are whole); keys no certificate uses any more are dropped."""
        wanted = {s.info.fingerprint for s in mesh.tls_certificates.values() if s.issued}
        known = self._identities.edge_keys
        missing = wanted - known.keys()
        fetched = await self._edge_key_source(missing) if missing and self._edge_key_source else {}
        if missing or known.keys() - wanted:
            keys = {f: k for f, k in {**known, **fetched}.items() if f in wanted}
            self._identities = replace(self._identities, edge_keys=keys)

    def set_identities(self, state: IdentityState) -> None:
        """New certificates or trust bundle: republish every watched group with its secrets."""
        self._identities = replace(state, edge_keys=self._identities.edge_keys)
        self._changed_at = time.monotonic()
        for group in self._cache.watched_groups():
            self._cache.publish(group, self._group_snapshot(group))

    def ensure(self, group: ProxyGroup) -> Snapshot:
        """The group's current snapshot, built now if no stream of the group was connected."""
        snapshot = self._cache.snapshot(group)
        if snapshot is None or self._stale(group):
            snapshot = self._group_snapshot(group)
            self._cache.publish(group, snapshot)
        return snapshot

    def _group_snapshot(self, group: ProxyGroup) -> Snapshot:
        """The group's snapshot from the last build, built on the loop (a stream is waiting)."""
        like = self._cache.snapshot(group)
        snapshot = self._state.snapshot(group, self._identities, self._changed_at, like=like)
        self._ask_for_identity(group)
        return snapshot

    def _built(self, started: float, groups: int, detail: str, scope: str) -> None:
        """Time a finished build (metric and log line); `scope` says what it rebuilt if not all."""
        elapsed = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.build_seconds.observe(elapsed)
        log.info(
            "built revision=%d groups=%d %sms=%.2f%s",
            self.mesh.revision,
            groups,
            f"{detail} " if detail else "",
            elapsed * 1000,
            f" ({scope})" if scope else "",
        )

    def _ask_for_identity(self, group: ProxyGroup) -> None:
        """Ask the CA for the group's identity if it has none yet (its secrets then carry only
        the trust bundle; the certificate follows with the next identity state)."""
        subject = group.subject
        if (
            subject is not None
            and subject not in self._identities.leaves
            and self._on_missing_identity is not None
        ):
            self._on_missing_identity(subject)


def _quarantine_moved(before: Mesh, after: Mesh) -> bool:
    """Whether stored resources that no longer validate, or what they keep out, changed: then
    more moved than the changes name (see `Mesh`), and a full build is the simple answer."""
    return before.invalid != after.invalid or before.left_out != after.left_out


def _services_touched(before: Mesh, changes: Iterable[Change]) -> set[str]:
    """The services whose endpoints the changes add, alter, move or remove."""
    touched: set[str] = set()
    for change in changes:
        old = before.endpoints.get(change.name)
        if old is not None:
            touched.add(old.service)
        if isinstance(change.spec, EndpointSpec):
            touched.add(change.spec.service)
    return touched
