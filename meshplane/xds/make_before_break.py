"""What a proxy may be sent now, given what it already holds: never break traffic mid-change.

A snapshot says where the proxy should end up; this module says how far it may go in one step:
- a listener or route configuration that sends traffic to a cluster waits until that cluster is
  warm on this proxy (the cluster ACKed and, for EDS clusters, its endpoints ACKed); until then the
  proxy keeps the version it has (or does not get the resource yet);
- a cluster that the snapshot dropped stays while a listener or route configuration the proxy
  holds or is being sent still points at it, at the version the proxy already has.
Pure: works on immutable snapshots and the per-stream record of what was ACKed and sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshplane.xds.resources import CachedResource, Snapshot
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

__all__ = ["Held", "desired_view"]

Held = Mapping[str, Mapping[str, CachedResource]]  # type URL -> name -> resource


def _of(held: Held, type_url: str) -> Mapping[str, CachedResource]:
    return held.get(type_url) or {}


def _warm_clusters(acked: Held, needed: set[str]) -> set[str]:
    """Which of the `needed` clusters are warm on the proxy (only those matter to _gated)."""
    endpoints = _of(acked, ENDPOINT)
    clusters = _of(acked, CLUSTER)
    return {
        name
        for name in needed
        if (cluster := clusters.get(name)) is not None
        and all(dep in endpoints for dep in cluster.warm_deps)
    }


def _gated(
    wanted: Mapping[str, CachedResource],
    current: Mapping[str, CachedResource],
    warm: set[str],
) -> Mapping[str, CachedResource]:
    """Take each wanted resource whose clusters are warm; otherwise keep what the proxy has."""
    if all(r.clusters <= warm for r in wanted.values()):
        return wanted
    out: dict[str, CachedResource] = {}
    for name, resource in wanted.items():
        if resource.clusters <= warm:
            out[name] = resource
        elif name in current:
            out[name] = current[name]
    return out


def desired_view(
    snapshot: Snapshot, acked: Held, coming: Held
) -> dict[str, Mapping[str, CachedResource]]:
    """Resources by type that the proxy should hold after the next step.

    `acked`: what the proxy confirmed holding; `coming`: what it will hold once responses already
    in flight apply (equal to `acked` for types with nothing in flight). Mappings of the snapshot
    are returned as they are (same objects) when nothing needs holding back, which keeps the common
    case cheap and lets callers reuse the snapshot's precomputed versions.
    """
    needed: set[str] = set()
    for type_url in (LISTENER, ROUTE):
        for resource in snapshot.of(type_url).values():
            needed |= resource.clusters
    warm = _warm_clusters(acked, needed)
    view: dict[str, Mapping[str, CachedResource]] = dict(snapshot.resources)
    for type_url in (LISTENER, ROUTE):
        view[type_url] = _gated(snapshot.of(type_url), _of(coming, type_url), warm)

    in_use: set[str] = set()
    for type_url in (LISTENER, ROUTE):
        for held in (_of(acked, type_url), _of(coming, type_url), view[type_url]):
            for resource in held.values():
                in_use |= resource.clusters

    clusters = snapshot.of(CLUSTER)
    kept = {
        name: (_of(coming, CLUSTER).get(name) or _of(acked, CLUSTER)[name])
        for name in in_use
        if name not in clusters and (name in _of(coming, CLUSTER) or name in _of(acked, CLUSTER))
    }
    if kept:
        view[CLUSTER] = {**clusters, **kept}
        endpoints = dict(snapshot.of(ENDPOINT))
        for cluster in kept.values():
            for dep in cluster.warm_deps:
                held_cla = _of(coming, ENDPOINT).get(dep) or _of(acked, ENDPOINT).get(dep)
                if dep not in endpoints and held_cla is not None:
                    endpoints[dep] = held_cla
        view[ENDPOINT] = endpoints
    return view
