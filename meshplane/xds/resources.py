"""Serialized, content-versioned resources and the immutable snapshots that group them.

A CachedResource is made once per distinct content (`pack`), and the same object is shared by every
snapshot and stream that serves it; its bytes are ready to be spliced into responses (see wire.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf.message import Message

from meshplane.xds import type_urls, wire
from meshplane.xds.references import referenced_clusters

__all__ = [
    "CachedResource",
    "Snapshot",
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


def _warm_deps(message: Message) -> frozenset[str]:
    # Cluster.DiscoveryType.EDS == 3
    if getattr(message, "type", None) == 3:
        service_name: str = message.eds_cluster_config.service_name  # type: ignore[attr-defined]
        return frozenset({service_name or message.name})  # type: ignore[attr-defined]
    return frozenset()


def pack(type_url: str, message: Message) -> CachedResource:
    """Serialize `message` deterministically, once, and version it by its content hash."""
    value = message.SerializeToString(deterministic=True)
    name: str = message.name if type_url != type_urls.ENDPOINT else message.cluster_name  # type: ignore[attr-defined]
    version = hashlib.sha256(value).hexdigest()[:20]
    packed = wire.any_bytes(type_url, value)
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
    )


def placeholder(type_url: str, name: str, version: str) -> CachedResource:
    """Stand for a resource a proxy holds at a version we do not know the content of."""
    return CachedResource(type_url, name, version, None, b"", b"")


def item_digest(resource: CachedResource) -> int:
    """A resource's contribution to its set's digest (name and content version)."""
    data = f"{resource.name}\0{resource.version}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "big")


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
class Snapshot:
    """Everything one proxy group is to be served at one mesh revision. Never changes once built."""

    revision: int
    resources: Mapping[str, Mapping[str, CachedResource]]
    versions: Mapping[str, str] = field(default_factory=dict)
    identity_version: int = 0  # the IdentityState its secrets come from
    changed_at: float | None = None  # monotonic time of the change it carries (convergence)
    digests: Mapping[str, int] = field(default_factory=dict)  # per type, see set_digest

    @classmethod
    def build(
        cls,
        revision: int,
        resources: Iterable[CachedResource],
        identity_version: int = 0,
        changed_at: float | None = None,
    ) -> Snapshot:
        by_type: dict[str, dict[str, CachedResource]] = {}
        for resource in resources:
            by_type.setdefault(resource.type_url, {})[resource.name] = resource
        digests = {t: set_digest(rs.values()) for t, rs in by_type.items()}
        versions = {t: version_of(d) for t, d in digests.items()}
        return cls(revision, by_type, versions, identity_version, changed_at, digests)

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
        return Snapshot(
            revision,
            resources,
            {**self.versions, type_url: version_of(digest)},
            self.identity_version,
            changed_at,
            {**self.digests, type_url: digest},
        )

    def of(self, type_url: str) -> Mapping[str, CachedResource]:
        return self.resources.get(type_url, _NOTHING)
