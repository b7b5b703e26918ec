"""What the snapshot builder keeps between builds, and the build steps that advance it.

A BuildState is the builder's memory: the mesh it last built, the label subsets each service has
(routes decide that), the resources every proxy shares (clusters, and load assignments per
zone), load assignments updated since and not yet folded in, and the packed objects of the last
build (so unchanged resources keep their identity). Its steps translate and pack, and touch
nothing else: no cache, no event loop, no I/O; identities and the time of the change are
arguments, not state. That is what lets a build run in a worker thread: the builder gives the
worker a `fork` (containers of its own), keeps serving from the original on the event loop, and
adopts the fork when the build ends. Meshes, subset lists and packed resources never change once
made, so a fork shares them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from google.protobuf.message import Message

from meshplane.model import Change, IdentityState, Mesh, ProxyGroup, Role, RouteSpec
from meshplane.xds.resources import CachedResource, ResourceSet, Snapshot, pack
from meshplane.xds.translate import (
    RouteMemo,
    Subset,
    group_config,
    service_clusters,
    service_load_assignments,
    shared_resources,
    skipped_ports,
    subsets_by_service,
    zone_resources,
)
from meshplane.xds.type_urls import CLUSTER, ENDPOINT

__all__ = ["BuildState", "Built", "Groups", "TranslateHook"]

log = logging.getLogger(__name__)

# Test seam: may rewrite translated messages before they are packed: a group's (all that
# group_config gave it, secrets included), or with group None the shared ones. Builds call it
# from a worker thread, the event loop from its own (a stream of a group not built yet).
TranslateHook = Callable[[ProxyGroup | None, dict[str, list[Message]]], None]

_Interned = dict[tuple[str, str, str], CachedResource]
# The groups to build, each with the snapshot it is served now (None: none yet): a new snapshot
# keeps that one's mapping of every type whose content did not change (see Snapshot).
Groups = Mapping[ProxyGroup, Snapshot | None]


@dataclass(frozen=True)
class Built:
    """What a build step made: the snapshots of the groups it built, and `scope`: what it
    rebuilt, when not everything (for the log)."""

    snapshots: list[tuple[ProxyGroup, Snapshot]] = field(default_factory=list)
    scope: str = ""


class BuildState:
    """The mesh last built and what was made from it; see the module docstring."""

    def __init__(self, mesh: Mesh, hook: TranslateHook | None = None) -> None:
        self.mesh = mesh
        self._hook = hook
        # Set by each full build: which subsets each service has, so an endpoint-only change
        # knows which load assignments it touches; None until then.
        self.subsets: dict[str, list[Subset]] | None = None
        # Load assignments updated by endpoint-only changes, per zone, not yet folded into the
        # shared lists (folded when a group's snapshot is next built from them).
        self._pending: dict[str | None, dict[str, CachedResource]] = {}
        self._shared: list[CachedResource] = []
        self._zoned: dict[str, list[CachedResource]] = {}  # zone -> its shared resources
        # zone -> (the list `_shared_for` gave, that list as a set): grouped and hashed once per
        # list, not per group and build; a list is replaced, never changed, when they change.
        self._sets: dict[str | None, tuple[list[CachedResource], ResourceSet]] = {}
        self._interned: _Interned = {}
        # Whether `_interned` is this state's alone: a fork shares it with the state it was
        # forked from until either writes to it (copy on write). A build replaces it whole,
        # so a route write's build never copies it (20,000 entries at 10,000 services).
        self._interned_own = True
        self._routes = RouteMemo()  # Envoy routes of earlier builds (a route write translates one)
        # Per sidecar group, the tcp services whose mesh port it uses itself (no listener for
        # them), as last reported: logged when it changes, not at every build.
        self._skipped: dict[ProxyGroup, list[tuple[str, int]]] = {}

    def fork(self) -> BuildState:
        """A copy whose containers are its own: building on it leaves this one as it was."""
        fork = BuildState(self.mesh, self._hook)
        fork.subsets = self.subsets  # replaced by builds, never changed in place
        fork._pending = {zone: dict(updates) for zone, updates in self._pending.items()}
        fork._shared = self._shared  # likewise
        fork._zoned = dict(self._zoned)
        fork._sets = dict(self._sets)
        fork._interned = self._interned  # copied by whichever writes to it first
        fork._interned_own = self._interned_own = False
        fork._skipped = dict(self._skipped)
        fork._routes = self._routes.fork()
        return fork

    def reload(
        self, mesh: Mesh, groups: Groups, identities: IdentityState, at: float | None
    ) -> Built:
        """Build everything anew from `mesh` (read whole from the store)."""
        self.mesh = mesh
        return self.rebuild(groups, identities, at)

    def follow(
        self,
        mesh: Mesh,
        changes: Sequence[Change],
        groups: Groups,
        identities: IdentityState,
        at: float | None,
        *,
        everything: bool,
    ) -> Built:
        """Move to `mesh` (the current one after `changes`) and build what the changes need:
        when endpoints and label subsets stay, the groups' listeners and routes, and the clusters
        of the services the changes touch (load assignments too, for added ones), or, when only
        routes of some gateways changed, just those gateways' groups; otherwise, or when
        `everything` (more moved than the changes name), all of it."""
        before, self.mesh = self.mesh, mesh
        if everything:
            self.subsets = None
        kinds = {c.kind for c in changes}
        if (
            self.subsets is not None
            and "endpoints" not in kinds
            and (_subsets_stay(before, mesh, changes) or subsets_by_service(mesh) == self.subsets)
        ):
            services = _ServiceChanges.between(before, mesh, changes)
            gateways = None if services else _gateways_reached(before, mesh, changes)
            if gateways is not None:
                built = self.rebuild(groups, identities, at, shared=False, gateways=gateways)
                return Built(built.snapshots, f"routes of gateways {', '.join(sorted(gateways))}")
            scope = "listeners and routes"
            if services:
                self._update_services(services)
                scope += f", clusters of {services}"
            built = self.rebuild(groups, identities, at, shared=False)
            return Built(built.snapshots, scope)
        return self.rebuild(groups, identities, at)

    def rebuild(
        self,
        groups: Groups,
        identities: IdentityState,
        at: float | None,
        *,
        shared: bool = True,
        gateways: Set[str] | None = None,
    ) -> Built:
        """Build every group's snapshot; `shared` False keeps the clusters and load assignments
        of the last build (the caller knows nothing they depend on changed). With `gateways`,
        only their groups (and groups never built) are built: the others are served as they
        are, at the new revision (the caller knows the change reaches no other group)."""
        previous, self._interned = self._interned, {}
        self._interned_own = True
        self._routes.advance(keep=gateways is not None)
        if shared:
            by_type = shared_resources(self.mesh)
            if self._hook is not None:
                self._hook(None, by_type)
            self._shared = self._pack_all(by_type, previous)
            self._zoned = {}
            self._pending = {}
            self.subsets = subsets_by_service(self.mesh)
        revision = self.mesh.revision
        return Built(
            [
                (g, like.at_revision(revision))
                if like is not None and gateways is not None and g.gateway not in gateways
                else (g, self.snapshot(g, identities, at, previous, like))
                for g, like in groups.items()
            ]
        )

    def snapshots(self, groups: Groups, identities: IdentityState, at: float | None) -> Built:
        """Build the snapshots of `groups` from what is built already."""
        built = [(g, self.snapshot(g, identities, at, like=like)) for g, like in groups.items()]
        return Built(built, "groups")

    def snapshot(
        self,
        group: ProxyGroup,
        identities: IdentityState,
        at: float | None,
        previous: _Interned | None = None,
        like: Snapshot | None = None,
    ) -> Snapshot:
        """The group's snapshot at the mesh's revision, with `identities`' secrets; `at`: when
        the change it carries was noticed (monotonic); `like`: the one it replaces."""
        own = group_config(self.mesh, group, identities, self._routes)
        if group.role == Role.SIDECAR:
            self._report_skipped(group)
        if self._hook is not None:
            self._hook(group, own)
        packed = self._pack_all(own, previous or {})
        return Snapshot.build(
            self.mesh.revision,
            packed,
            identities.version,
            at,
            like=like,
            shared=self._shared_set(group.zone, previous or {}),
        )

    def _report_skipped(self, group: ProxyGroup) -> None:
        """Log the tcp services a sidecar group gets no listener for, since their mesh port is
        one of its own (see translate/tcp_listeners.py), when that changes."""
        skipped = skipped_ports(self.mesh, group)
        if skipped == self._skipped.get(group, []):
            return
        self._skipped[group] = skipped
        for service, port in skipped:
            log.warning(
                "tcp listener skipped service=%s port=%d group_service=%s: the sidecar uses "
                "that port itself (inbound, app, outbound or admin); its app cannot reach the "
                "service through the mesh until one of the two ports changes",
                service,
                port,
                group.service,
            )

    def endpoints(self, services: Iterable[str]) -> dict[str | None, dict[str, CachedResource]]:
        """Only endpoints of `services` changed: their load assignments (and their subsets'),
        per zone (None: proxies without one), to swap into the current snapshots. Clusters,
        listeners and routes do not depend on endpoints, so this costs work proportional to the
        change, not to the mesh."""
        touched = sorted(s for s in services if s in self.mesh.services)
        fresh: dict[str | None, dict[str, CachedResource]] = {}
        for zone in [None, *self._zoned]:
            fresh[zone] = self._assignments(touched, zone)
            self._pending.setdefault(zone, {}).update(fresh[zone])
        return fresh

    def _update_services(self, services: _ServiceChanges) -> None:
        """Translate just the clusters of the changed and added services (and their subsets'),
        and the load assignments of the added ones; drop the removed ones' resources; swap all
        of it into the shared resources of every zone. Listeners and routes, which read
        services' protocols and policies, are rebuilt after."""
        assert self.subsets is not None
        subsets = self.subsets
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
        assert self.subsets is not None
        messages: list[Message] = []
        for service in services:
            if service in self.mesh.services:
                subsets = self.subsets.get(service, [])
                messages += service_load_assignments(self.mesh, service, subsets, zone)
        by_type: dict[str, list[Message]] = {ENDPOINT: messages}
        if messages and self._hook is not None:
            self._hook(None, by_type)
        return {r.name: r for r in self._pack_all(by_type, {})}

    def _shared_for(self, zone: str | None, previous: _Interned) -> list[CachedResource]:
        """The shared resources as proxies in `zone` see them: the same clusters, and load
        assignments built once per zone and revision (on first use)."""
        pending = self._pending.pop(zone, None)
        if pending:  # fold load assignments updated since (see `endpoints`)
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

    def _shared_set(self, zone: str | None, previous: _Interned) -> ResourceSet:
        """`_shared_for(zone)` as a set, made once per list."""
        resources = self._shared_for(zone, previous)
        held = self._sets.get(zone)
        if held is None or held[0] is not resources:
            held = self._sets[zone] = (resources, ResourceSet.of(resources))
        return held[1]

    def _held(self, key: tuple[str, str, str]) -> CachedResource | None:
        """The shared resource of that type, name and version that a group is served now."""
        for _, held in self._sets.values():
            if (resource := held.get(*key)) is not None:
                return resource
        return None

    def _pack_all(
        self, by_type: dict[str, list[Message]], previous: _Interned
    ) -> list[CachedResource]:
        """Pack messages; equal content (also across groups) yields one shared object.

        `previous` holds the last build's objects and the shared sets the objects served now,
        so unchanged resources keep their identity; what this build produced replaces
        `previous`, so nothing outlives the build after it.
        """
        out: list[CachedResource] = []
        if not self._interned_own:
            self._interned, self._interned_own = dict(self._interned), True
        # A hook may have changed what the memo assembled: then read the clusters again.
        assembled = self._routes.clusters if self._hook is None else _unknown
        for type_url, messages in by_type.items():
            for message in messages:
                resource = pack(type_url, message, assembled(message))
                key = (type_url, resource.name, resource.version)
                resource = (
                    self._interned.get(key) or previous.get(key) or self._held(key) or resource
                )
                self._interned[key] = resource
                out.append(resource)
        return out


def _unknown(message: object) -> None:
    return None


def _subsets_stay(before: Mesh, after: Mesh, changes: Iterable[Change]) -> bool:
    """Whether the changes alone show that label subsets stay as they are, without deriving
    them from every route: no route they touch names a labelled target, before or after, and
    no service comes or goes (a subset exists only for a service that does). False means
    "cannot tell", not "they changed"."""
    for change in changes:
        name = change.name
        if change.kind == "routes":
            specs = (before.routes.get(name), after.routes.get(name))
            if any(_labelled(spec) for spec in specs):
                return False
        elif change.kind == "services" and (name in before.services) != (name in after.services):
            return False
    return True


def _gateways_reached(before: Mesh, after: Mesh, changes: Iterable[Change]) -> set[str] | None:
    """The gateways whose groups alone the changes reach: every change is to a route attached
    to gateways (before and after), so sidecars and other gateways see nothing new. None when
    a change may reach further."""
    gateways: set[str] = set()
    for change in changes:
        if change.kind != "routes":
            return None
        for spec in (before.routes.get(change.name), after.routes.get(change.name)):
            if spec is not None and not spec.gateways:
                return None
            gateways.update(spec.gateways if spec is not None else ())
    return gateways


def _labelled(route: RouteSpec | None) -> bool:
    if route is None:
        return False
    return any(d.labels for d in route.destinations) or any(m.labels for m in route.mirrors)


def _swapped(
    resources: list[CachedResource], type_url: str, fresh: Mapping[str, CachedResource]
) -> list[CachedResource]:
    """`resources` with those of `type_url` that `fresh` names replaced by its versions."""
    return [fresh.get(r.name, r) if r.type_url == type_url else r for r in resources]


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
