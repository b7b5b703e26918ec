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

from collections.abc import Callable, Mapping
from types import MappingProxyType

from meshplane.xds.resources import CachedResource, Snapshot, cold_clusters
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

__all__ = ["Held", "desired_view"]

Held = Mapping[str, Mapping[str, CachedResource]]  # type URL -> name -> resource
_NOTHING: Mapping[str, CachedResource] = MappingProxyType({})
Holding = Mapping[str, CachedResource]
# Answers a snapshot remembers for proxies holding other mappings than its own (a few earlier
# snapshots' while proxies catch up; a delta stream's own mappings are not shared).
_MEMO_SIZE = 32


def _of(held: Held, type_url: str) -> Mapping[str, CachedResource]:
    return held.get(type_url) or _NOTHING


def _cold(snapshot: Snapshot, acked: Held) -> frozenset[str]:
    """The clusters the snapshot's listeners and routes need that are not warm on the proxy.

    A proxy that acknowledged the snapshot's own clusters and load assignments (the same
    mappings: a stream keeps what it was sent, and snapshots keep unchanged mappings) has
    exactly the snapshot's warm clusters, worked out once per snapshot; otherwise its own.
    """
    clusters, endpoints = _of(acked, CLUSTER), _of(acked, ENDPOINT)
    if clusters is snapshot.of(CLUSTER) and endpoints is snapshot.of(ENDPOINT):
        return snapshot.cold
    if not snapshot.needs:
        return frozenset()
    return _remembered(snapshot, "cold", clusters, endpoints, _cold_on)


def _cold_on(snapshot: Snapshot, clusters: Holding, endpoints: Holding) -> frozenset[str]:
    return cold_clusters(snapshot.needs, clusters, endpoints)


def _dropped(snapshot: Snapshot, held: Holding, _: Holding) -> frozenset[str]:
    return frozenset(held.keys() - snapshot.of(CLUSTER).keys())


def _remembered(
    snapshot: Snapshot,
    what: str,
    first: Holding,
    second: Holding,
    work: Callable[[Snapshot, Holding, Holding], frozenset[str]],
) -> frozenset[str]:
    """`work(snapshot, first, second)`, remembered by the snapshot for these mappings."""
    key = (what, id(first), id(second))
    known = snapshot.memo.get(key)
    if known is not None and known[0] is first and known[1] is second:
        return known[2]
    answer = work(snapshot, first, second)
    if len(snapshot.memo) < _MEMO_SIZE:
        snapshot.memo[key] = (first, second, answer)
    return answer


def _gated(
    wanted: Mapping[str, CachedResource],
    current: Mapping[str, CachedResource],
    cold: frozenset[str],
) -> Mapping[str, CachedResource]:
    """Take each wanted resource whose clusters are warm; otherwise keep what the proxy has."""
    if all(r.clusters.isdisjoint(cold) for r in wanted.values()):
        return wanted
    out: dict[str, CachedResource] = {}
    for name, resource in wanted.items():
        if resource.clusters.isdisjoint(cold):
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
    view: dict[str, Mapping[str, CachedResource]] = dict(snapshot.resources)
    cold = _cold(snapshot, acked)
    if cold:
        for type_url in (LISTENER, ROUTE):
            view[type_url] = _gated(snapshot.of(type_url), _of(coming, type_url), cold)
    kept = _kept_clusters(snapshot, acked, coming, view)
    if kept:
        view[CLUSTER] = {**snapshot.of(CLUSTER), **kept}
        endpoints = dict(snapshot.of(ENDPOINT))
        for cluster in kept.values():
            for dep in cluster.warm_deps:
                held_cla = _of(coming, ENDPOINT).get(dep) or _of(acked, ENDPOINT).get(dep)
                if dep not in endpoints and held_cla is not None:
                    endpoints[dep] = held_cla
        view[ENDPOINT] = endpoints
    return view


def _kept_clusters(
    snapshot: Snapshot, acked: Held, coming: Held, view: Held
) -> dict[str, CachedResource]:
    """Clusters the snapshot dropped that the proxy holds (or is being sent) and that a listener
    or route configuration it holds, is being sent, or is to be sent still points at: they stay,
    at the version the proxy has."""
    clusters = snapshot.of(CLUSTER)
    held_clusters = [_of(held, CLUSTER) for held in (coming, acked)]
    dropped: set[str] = set()
    for held in held_clusters:
        if held is not clusters:
            dropped |= _remembered(snapshot, "dropped", held, _NOTHING, _dropped)
    if not dropped:
        return {}
    in_use: set[str] = set()
    for type_url in (LISTENER, ROUTE):
        for holder in (_of(acked, type_url), _of(coming, type_url), view[type_url]):
            for resource in holder.values():
                in_use |= resource.clusters & dropped
    return {
        name: held_clusters[0].get(name) or held_clusters[1][name]
        for name in sorted(in_use)
        if name in held_clusters[0] or name in held_clusters[1]
    }
