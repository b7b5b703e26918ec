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

__all__ = ["CachedResource", "Snapshot", "pack", "placeholder", "set_version"]


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
    return CachedResource(
        type_url,
        name,
        version,
        message,
        packed,
        wire.delta_resource_bytes(name, version, packed),
        clusters,
        warm,
    )


def placeholder(type_url: str, name: str, version: str) -> CachedResource:
    """Stand for a resource a proxy holds at a version we do not know the content of."""
    return CachedResource(type_url, name, version, None, b"", b"")


def set_version(resources: Iterable[CachedResource]) -> str:
    """Version of a set of resources: stable whatever the order, changes when any member does."""
    digest = hashlib.sha256()
    for resource in sorted(resources, key=lambda r: r.name):
        digest.update(f"{resource.name}\0{resource.version}\n".encode())
    return digest.hexdigest()[:20]


_NOTHING: Mapping[str, CachedResource] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one proxy group is to be served at one mesh revision. Never changes once built."""

    revision: int
    resources: Mapping[str, Mapping[str, CachedResource]]
    versions: Mapping[str, str] = field(default_factory=dict)
    identity_version: int = 0  # the IdentityState its secrets come from
    changed_at: float | None = None  # monotonic time of the change it carries (convergence)

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
        versions = {t: set_version(rs.values()) for t, rs in by_type.items()}
        return cls(revision, by_type, versions, identity_version, changed_at)

    def of(self, type_url: str) -> Mapping[str, CachedResource]:
        return self.resources.get(type_url, _NOTHING)
