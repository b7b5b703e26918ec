"""Serialized, content-versioned resources and the immutable snapshots that group them.

A CachedResource is made once per distinct content (`pack`), and the same object is shared by every
snapshot and stream that serves it; its bytes are ready to be spliced into responses (see wire.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from google.protobuf.message import Message

from meshplane.xds import type_urls, wire
from meshplane.xds.references import referenced_clusters
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

__all__ = [
    "CachedResource",
    "ResourceSet",
    "Snapshot",
    "cold_clusters",
    "item_digest",
    "pack",
    "placeholder",
    "set_digest",
    "set_version",
    "version_of",
]


@dataclass(frozen=True, slots=True, eq=False)
class CachedResource:
    """One resource at one content version.

    `clusters`: clusters this resource sends traffic to (listeners and route configurations): it
    must not reach a proxy before those clusters are warm there. `warm_deps`: for a cluster, the
    load assignment names it needs before it is warm. `message` is None for a placeholder standing
    for a resource a reconnecting proxy says it holds at a version we cannot map to content.
    """

    type_url: str
    name: str
    version: str
    message: Message | None
    any_bytes: bytes
    delta_bytes: bytes
    clusters: frozenset[str] = frozenset()
    warm_deps: frozenset[str] = frozenset()
    sotw_frame: bytes = b""  # any_bytes as field 2 of a DiscoveryResponse, framed once
    delta_frame: bytes = b""  # delta_bytes as field 2 of a DeltaDiscoveryResponse
    digest: int = 0  # its share of its set's digest (see set_digest), hashed once


def _warm_deps(message: Message) -> frozenset[str]:
    # Cluster.DiscoveryType.EDS == 3
    if getattr(message, "type", None) == 3:
        service_name: str = message.eds_cluster_config.service_name  # type: ignore[attr-defined]
        return frozenset({service_name or message.name})  # type: ignore[attr-defined]
    return frozenset()


def pack(type_url: str, message: Message, clusters: frozenset[str] | None = None) -> CachedResource:
    """Serialize `message` deterministically, once, and version it by its content hash.

    `clusters`: the clusters it sends traffic to, when the caller knows them already (a route
    configuration assembled from translated routes); otherwise they are read from `message`.
    """
    value = message.SerializeToString(deterministic=True)
    name: str = message.name if type_url != type_urls.ENDPOINT else message.cluster_name  # type: ignore[attr-defined]
    version = hashlib.sha256(value).hexdigest()[:20]
    packed = wire.any_bytes(type_url, value)
    if clusters is None:
        clusters = (
            referenced_clusters(message)
            if type_url in (type_urls.LISTENER, type_urls.ROUTE)
            else frozenset()
        )
    warm = _warm_deps(message) if type_url == type_urls.CLUSTER else frozenset()
    delta = wire.delta_resource_bytes(name, version, packed)
    return CachedResource(
        type_url,
        name,
        version,
        message,
        packed,
        delta,
        clusters,
        warm,
        wire.frame(packed),
        wire.frame(delta),
        _digest(name, version),
    )


def placeholder(type_url: str, name: str, version: str) -> CachedResource:
    """Stand for a resource a proxy holds at a version we do not know the content of."""
    return CachedResource(type_url, name, version, None, b"", b"", digest=_digest(name, version))


def _digest(name: str, version: str) -> int:
    data = f"{name}\0{version}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "big")


def item_digest(resource: CachedResource) -> int:
    """A resource's contribution to its set's digest (name and content version)."""
    return resource.digest


def set_digest(resources: Iterable[CachedResource]) -> int:
    """XOR of the members' digests: order-free, and updated in O(1) when one member changes."""
    digest = 0
    for resource in resources:
        digest ^= item_digest(resource)
    return digest


def version_of(digest: int) -> str:
    return f"{digest:032x}"[:20]


def set_version(resources: Iterable[CachedResource]) -> str:
    """Version of a set of resources: stable whatever the order, changes when any member does."""
    return version_of(set_digest(resources))


_NOTHING: Mapping[str, CachedResource] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """Resources by type and name, with each type's set digest. The part of a snapshot that
    many share (every proxy's clusters and load assignments) is grouped and hashed once as a
    set, not again for each group and build: at 10,000 services that was most of a route
    write's build."""

    by_type: Mapping[str, Mapping[str, CachedResource]]
    digests: Mapping[str, int]

    @classmethod
    def of(cls, resources: Iterable[CachedResource]) -> ResourceSet:
        by_type: dict[str, dict[str, CachedResource]] = {}
        for resource in resources:
            by_type.setdefault(resource.type_url, {})[resource.name] = resource
        return cls(by_type, {t: set_digest(rs.values()) for t, rs in by_type.items()})

    def joined(self, other: ResourceSet) -> ResourceSet:
        """This set with `other`'s members added (`other`'s win where both name one); a type
        only one of them has keeps that one's mapping, the same object."""
        by_type, digests = dict(self.by_type), dict(self.digests)
        for type_url, members in other.by_type.items():
            mine = self.by_type.get(type_url)
            if mine is None:
                by_type[type_url], digests[type_url] = members, other.digests[type_url]
                continue
            merged = {**mine, **members}
            by_type[type_url] = merged
            disjoint = len(merged) == len(mine) + len(members)
            digests[type_url] = (
                self.digests[type_url] ^ other.digests[type_url]
                if disjoint
                else set_digest(merged.values())
            )
        return ResourceSet(by_type, digests)

    def get(self, type_url: str, name: str, version: str) -> CachedResource | None:
        """The member of that type, name and content version, if it holds it."""
        resource = self.by_type.get(type_url, _NOTHING).get(name)
        return resource if resource is not None and resource.version == version else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one proxy group is to be served at one mesh revision. Never changes once built.

    Two facts every stream of the group asks on every step are worked out once here, off the
    streams' path (see make_before_break): `needs`, the clusters its listeners and route
    configurations send traffic to, and `cold`, those of them that are not warm even on a proxy
    holding its clusters and load assignments (usually none). A type whose content did not
    change since the snapshot it was built `like` keeps that snapshot's mapping (the same
    object), so a stream that holds it can tell it is current by identity, not by walking it.
    """

    revision: int
    resources: Mapping[str, Mapping[str, CachedResource]]
    versions: Mapping[str, str] = field(default_factory=dict)
    identity_version: int = 0  # the IdentityState its secrets come from
    changed_at: float | None = None  # monotonic time of the change it carries (convergence)
    digests: Mapping[str, int] = field(default_factory=dict)  # per type, see set_digest
    needs: frozenset[str] = frozenset()
    cold: frozenset[str] = frozenset()
    # Streams' memo (make_before_break): what it works out for a proxy holding other mappings
    # than these (its cold clusters, the clusters it holds that these dropped), by what and by
    # those mappings' identity. Proxies catching up hold the same earlier mappings, so one
    # answer serves them all. Only the event loop touches it.
    memo: dict[tuple[str, int, int], tuple[object, object, frozenset[str]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(
        cls,
        revision: int,
        resources: Iterable[CachedResource],
        identity_version: int = 0,
        changed_at: float | None = None,
        *,
        like: Snapshot | None = None,
        shared: ResourceSet | None = None,
    ) -> Snapshot:
        """A snapshot of `resources` and the `shared` set, keeping the mappings of `like` whose
        content is equal."""
        own = ResourceSet.of(resources)
        whole = shared.joined(own) if shared is not None else own
        fresh, digests = whole.by_type, dict(whole.digests)
        by_type: dict[str, Mapping[str, CachedResource]] = dict(fresh)
        if like is not None:
            for t, digest in digests.items():
                if like.digests.get(t) == digest and len(like.of(t)) == len(fresh[t]):
                    by_type[t] = like.resources[t]
        versions = {t: version_of(d) for t, d in digests.items()}
        same = {t for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE) if like and _same(by_type, like, t)}
        needs = like.needs if like and {LISTENER, ROUTE} <= same else _needs(by_type)
        if like and len(same) == 4:
            cold = like.cold
        elif like and {CLUSTER, ENDPOINT} <= same:  # warmth is like's: only new needs to check
            cold = (like.cold & needs) | _cold(needs - like.needs, by_type)
        else:
            cold = _cold(needs, by_type)
        return cls(revision, by_type, versions, identity_version, changed_at, digests, needs, cold)

    def replacing(
        self,
        type_url: str,
        updates: Mapping[str, CachedResource],
        revision: int,
        changed_at: float | None,
    ) -> Snapshot:
        """This snapshot with some resources of one type replaced or added: O(changed) hashing.

        Every other type keeps its mappings (same objects), so streams see nothing new there.
        """
        current = self.resources.get(type_url, _NOTHING)
        members = dict(current)
        digest = self.digests.get(type_url, 0)
        for name, resource in updates.items():
            old = current.get(name)
            if old is not None:
                digest ^= item_digest(old)
            digest ^= item_digest(resource)
            members[name] = resource
        resources = {**self.resources, type_url: members}
        needs = _needs(resources) if type_url in (LISTENER, ROUTE) else self.needs
        # Warmth depends on which load assignments exist, not on their content.
        same_names = type_url == ENDPOINT and len(members) == len(current)
        same = same_names or type_url not in (CLUSTER, ENDPOINT, LISTENER, ROUTE)
        cold = self.cold if same else _cold(needs, resources)
        return Snapshot(
            revision,
            resources,
            {**self.versions, type_url: version_of(digest)},
            self.identity_version,
            changed_at,
            {**self.digests, type_url: digest},
            needs,
            cold,
        )

    def at_revision(self, revision: int) -> Snapshot:
        """This snapshot's content at a later `revision`, for a group the change does not
        reach: every mapping (and the streams' memo) is this one's, so no stream sends."""
        return replace(self, revision=revision)

    def of(self, type_url: str) -> Mapping[str, CachedResource]:
        return self.resources.get(type_url, _NOTHING)


def cold_clusters(
    needed: frozenset[str],
    clusters: Mapping[str, CachedResource],
    endpoints: Mapping[str, CachedResource],
) -> frozenset[str]:
    """Those of the `needed` clusters not warm on a proxy holding `clusters` and `endpoints`: a
    cluster is warm once the proxy holds it and every load assignment it waits for (its
    `warm_deps`)."""
    return frozenset(
        name
        for name in needed
        if (cluster := clusters.get(name)) is None
        or not all(dep in endpoints for dep in cluster.warm_deps)
    )


def _needs(resources: Mapping[str, Mapping[str, CachedResource]]) -> frozenset[str]:
    needed: set[str] = set()
    for type_url in (LISTENER, ROUTE):
        for resource in resources.get(type_url, _NOTHING).values():
            needed |= resource.clusters
    return frozenset(needed)


def _cold(
    needs: frozenset[str], resources: Mapping[str, Mapping[str, CachedResource]]
) -> frozenset[str]:
    return cold_clusters(needs, resources.get(CLUSTER, _NOTHING), resources.get(ENDPOINT, _NOTHING))


def _same(
    resources: Mapping[str, Mapping[str, CachedResource]], like: Snapshot, type_url: str
) -> bool:
    return resources.get(type_url, _NOTHING) is like.of(type_url)
