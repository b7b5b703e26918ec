"""The snapshot builder: follows the store's change feed and keeps every watched group's snapshot.

Coalescing without delay (shared/DESIGN.md rule 7): the first change after a quiet period is built
at once; changes committed while a build runs are folded into the next build, which starts as
soon as the current one ends. A snapshot always reflects whole commits, never half a write.
Resources every proxy sees (clusters, endpoints) are translated and serialized once per revision
and shared by all groups; only listeners and route configurations are built per group. Work
follows the change: an endpoint-only change rebuilds just the load assignments it touches; a
change that leaves endpoints and label subsets alone (a route's weights, matches, timeouts; a
gateway; a policy; a service added, removed or with new settings) rebuilds the groups' listeners
and routes, and the clusters (and, for an added service, load assignments) of those services.
While the store is unreachable the last snapshots keep serving, and the builder tries again,
backing off, until it catches up; the store reports the outage once, so the builder logs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from google.protobuf.message import Message

from meshplane.metrics import Metrics
from meshplane.model import Change, EndpointSpec, IdentityState, Mesh, ProxyGroup
from meshplane.xds.cache import ResourceCache
from meshplane.xds.resources import CachedResource, Snapshot, pack
from meshplane.xds.store_port import MeshSource, when_reachable
from meshplane.xds.translate import (
    Subset,
    group_config,
    service_clusters,
    service_load_assignments,
    shared_resources,
    subsets_by_service,
    zone_resources,
)
from meshplane.xds.type_urls import CLUSTER, ENDPOINT

__all__ = ["SnapshotBuilder", "TranslateHook"]

log = logging.getLogger(__name__)

# Test seam: may rewrite translated messages before they are packed: a group's (all that
# group_config gave it, secrets included), or with group None the shared ones.
TranslateHook = Callable[[ProxyGroup | None, dict[str, list[Message]]], None]


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
    ) -> None:
        self._metrics = metrics
        self._changed_at: float | None = None  # when the change being built was noticed
        self._source = source
        self._cache = cache
        self._hook = hook
        self._trust_domain = trust_domain
        self._identities = IdentityState(trust_domain)
        self._on_missing_identity = on_missing_identity
        self.mesh = Mesh(trust_domain=trust_domain)
        # Set by each full rebuild: which subsets each service has (routes decide that), so an
        # endpoint-only change knows which load assignments it touches; None until then.
        self._subsets: dict[str, list[Subset]] | None = None
        # Load assignments updated by endpoint-only changes, per zone, not yet folded into the
        # shared lists (folded when a group's snapshot is next built from them).
        self._pending: dict[str | None, dict[str, CachedResource]] = {}
        self._shared: list[CachedResource] = []
        self._zoned: dict[str, list[CachedResource]] = {}  # zone -> its shared resources
        self._interned: dict[tuple[str, str, str], CachedResource] = {}
        self.ready = asyncio.Event()

    async def load(self) -> None:
        """Read the whole mesh and build the shared resources; call before serving streams."""
        self.mesh = replace(await self._source.load_mesh(), trust_domain=self._trust_domain)
        self._rebuild(self._cache.watched_groups())
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
            self.mesh = replace(await self._source.load_mesh(), trust_domain=self._trust_domain)
        elif changes:
            before = self.mesh
            self.mesh = self.mesh.with_changes(changes)
            kinds = {c.kind for c in changes}
            if _quarantine_moved(before, self.mesh):
                self._subsets = None  # more moved than the changes name: build everything
            if self._subsets is not None and kinds == {"endpoints"}:
                self._update_endpoints(_services_touched(before, changes))
                return
            if (
                self._subsets is not None
                and "endpoints" not in kinds
                and subsets_by_service(self.mesh) == self._subsets
            ):
                # Load assignments stay but for added or removed services; clusters too, but
                # for those and the services whose settings changed.
                services = _ServiceChanges.between(before, self.mesh, changes)
                scope = "listeners and routes"
                if services:
                    self._update_services(services)
                    scope += f", clusters of {services}"
                self._rebuild(self._cache.watched_groups(), shared=False, scope=scope)
                return
        else:
            return
        self._rebuild(self._cache.watched_groups())

    def _update_services(self, services: _ServiceChanges) -> None:
        """Translate just the clusters of the changed and added services (and their subsets'),
        and the load assignments of the added ones; drop the removed ones' resources; swap all
        of it into the shared resources of every zone. Listeners and routes, which read
        services' protocols and policies, are rebuilt after."""
        assert self._subsets is not None
        subsets = self._subsets
        messages: list[Message] = []
        for service in sorted(services.changed | services.added):
            messages += service_clusters(self.mesh, service, subsets.get(service, []))
        by_type: dict[str, list[Message]] = {CLUSTER: messages}
        if self._hook is not None:
            self._hook(None, by_type)
        clusters = {r.name: r for r in self._pack_all(by_type, {})}
        gone = {n for s in services.removed for n in (s, *(x.name for x in subsets.get(s, [])))}

        def revised(resources: list[CachedResource], zone: str | None) -> list[CachedResource]:
            kept = _swapped([r for r in resources if r.name not in gone], CLUSTER, clusters)
            held = {r.name for r in kept if r.type_url == CLUSTER}
            added = [r for name, r in clusters.items() if name not in held]
            return [*kept, *added, *self._assignments(sorted(services.added), zone).values()]

        self._shared = revised(self._shared, None)
        self._zoned = {zone: revised(resources, zone) for zone, resources in self._zoned.items()}

    def _assignments(self, services: Iterable[str], zone: str | None) -> dict[str, CachedResource]:
        """The load assignments of `services` and of their subsets, as proxies in `zone` see
        them, packed."""
        assert self._subsets is not None
        messages: list[Message] = []
        for service in services:
            if service in self.mesh.services:
                subsets = self._subsets.get(service, [])
                messages += service_load_assignments(self.mesh, service, subsets, zone)
        by_type: dict[str, list[Message]] = {ENDPOINT: messages}
        if messages and self._hook is not None:
            self._hook(None, by_type)
        return {r.name: r for r in self._pack_all(by_type, {})}

    def _update_endpoints(self, services: set[str]) -> None:
        """Only endpoints changed: rebuild just the load assignments of the services they
        belong to (and of those services' subsets), per zone, and swap them into the current
        snapshots. Clusters, listeners and routes do not depend on endpoints, so this costs work
        proportional to the change, not to the mesh."""
        started = time.perf_counter()
        touched = sorted(s for s in services if s in self.mesh.services)
        fresh: dict[str | None, dict[str, CachedResource]] = {}
        for zone in [None, *self._zoned]:
            fresh[zone] = self._assignments(touched, zone)
            self._pending.setdefault(zone, {}).update(fresh[zone])
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

    def set_identities(self, state: IdentityState) -> None:
        """New certificates or trust bundle: republish every watched group with its secrets."""
        self._identities = state
        self._changed_at = time.monotonic()
        for group in self._cache.watched_groups():
            self._cache.publish(group, self._group_snapshot(group))

    def ensure(self, group: ProxyGroup) -> Snapshot:
        """The group's current snapshot, built now if no stream of the group was connected."""
        snapshot = self._cache.snapshot(group)
        if (
            snapshot is None
            or snapshot.revision < self.mesh.revision
            or snapshot.identity_version < self._identities.version
        ):
            snapshot = self._group_snapshot(group)
            self._cache.publish(group, snapshot)
        return snapshot

    def _rebuild(
        self, groups: Iterable[ProxyGroup], *, shared: bool = True, scope: str = ""
    ) -> None:
        """Republish every group's snapshot; `shared` False keeps the clusters and load
        assignments of the last build (the caller knows nothing they depend on changed)."""
        started = time.perf_counter()
        previous, self._interned = self._interned, {}
        if shared:
            by_type = shared_resources(self.mesh)
            if self._hook is not None:
                self._hook(None, by_type)
            self._shared = self._pack_all(by_type, previous)
            self._zoned = {}
            self._pending = {}
            self._subsets = subsets_by_service(self.mesh)
        else:  # keep them interned, so the next build still finds them
            for resource in (*self._shared, *(r for z in self._zoned.values() for r in z)):
                self._interned[(resource.type_url, resource.name, resource.version)] = resource
        count = 0
        for group in groups:
            self._cache.publish(group, self._group_snapshot(group, previous))
            count += 1
        self._built(started, count, "", scope)

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

    def _group_snapshot(
        self, group: ProxyGroup, previous: dict[tuple[str, str, str], CachedResource] | None = None
    ) -> Snapshot:
        own = group_config(self.mesh, group, self._identities)
        self._ask_for_identity(group)
        if self._hook is not None:
            self._hook(group, own)
        packed = self._pack_all(own, previous or {})
        return Snapshot.build(
            self.mesh.revision,
            [*self._shared_for(group.zone, previous or {}), *packed],
            self._identities.version,
            self._changed_at,
        )

    def _shared_for(
        self, zone: str | None, previous: dict[tuple[str, str, str], CachedResource]
    ) -> list[CachedResource]:
        """The shared resources as proxies in `zone` see them: the same clusters, and load
        assignments built once per zone and revision (on first use)."""
        pending = self._pending.pop(zone, None)
        if pending:  # fold load assignments updated since (see _update_endpoints)
            if zone is None:
                self._shared = _swapped(self._shared, ENDPOINT, pending)
            elif zone in self._zoned:
                self._zoned[zone] = _swapped(self._zoned[zone], ENDPOINT, pending)
        if zone is None:
            return self._shared
        if zone not in self._zoned:
            zoned = zone_resources(self.mesh, zone)
            if self._hook is not None:
                self._hook(None, zoned)
            clusters = [r for r in self._shared if r.type_url != ENDPOINT]
            self._zoned[zone] = [*clusters, *self._pack_all(zoned, previous)]
        return self._zoned[zone]

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

    def _pack_all(
        self,
        by_type: dict[str, list[Message]],
        previous: dict[tuple[str, str, str], CachedResource],
    ) -> list[CachedResource]:
        """Pack messages; equal content (also across groups) yields one shared object.

        `previous` holds the last build's objects, so unchanged resources keep their identity;
        what this build produced replaces it, so nothing outlives the build after it.
        """
        out: list[CachedResource] = []
        for type_url, messages in by_type.items():
            for message in messages:
                resource = pack(type_url, message)
                key = (type_url, resource.name, resource.version)
                resource = self._interned.get(key) or previous.get(key) or resource
                self._interned[key] = resource
                out.append(resource)
        return out


def _swapped(
    resources: list[CachedResource], type_url: str, fresh: Mapping[str, CachedResource]
) -> list[CachedResource]:
    """`resources` with those of `type_url` that `fresh` names replaced by its versions."""
    return [fresh.get(r.name, r) if r.type_url == type_url else r for r in resources]


def _quarantine_moved(before: Mesh, after: Mesh) -> bool:
    """Whether stored resources that no longer validate, or what they keep out, changed: then
    more moved than the changes name (see `Mesh`), and a full build is the simple answer."""
    return before.invalid != after.invalid or before.left_out != after.left_out


@dataclass(frozen=True)
class _ServiceChanges:
    """Services a batch of changes alters, adds and removes (by name)."""

    changed: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    @classmethod
    def between(cls, before: Mesh, after: Mesh, changes: Iterable[Change]) -> _ServiceChanges:
        names = {c.name for c in changes if c.kind == "services"}
        was, now = before.services, after.services
        return cls(
            frozenset(n for n in names if n in was and n in now and was[n] != now[n]),
            frozenset(n for n in names if n not in was and n in now),
            frozenset(n for n in names if n in was and n not in now),
        )

    def __bool__(self) -> bool:
        return bool(self.changed or self.added or self.removed)

    def __str__(self) -> str:
        counts = [(len(self.changed), "changed"), (len(self.added), "added")]
        counts.append((len(self.removed), "removed"))
        return ", ".join(f"{n} {what}" for n, what in counts if n) + " services"


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
