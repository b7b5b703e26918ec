"""The resource cache: the latest snapshot of each proxy group, and who is watching it.

Only this cache and the streams hold xDS state in memory. The builder publishes, streams watch;
a watcher is a plain callback so a publish costs one call per connected stream of the group.
"""

from __future__ import annotations

from collections.abc import Callable

from meshplane.model import ProxyGroup
from meshplane.xds.resources import Snapshot

__all__ = ["ResourceCache", "Watcher"]

Watcher = Callable[[Snapshot], None]


class ResourceCache:
    """Latest Snapshot per ProxyGroup, with watchers notified on every publish."""

    def __init__(self) -> None:
        self._snapshots: dict[ProxyGroup, Snapshot] = {}
        self._watchers: dict[ProxyGroup, set[Watcher]] = {}

    def snapshot(self, group: ProxyGroup) -> Snapshot | None:
        return self._snapshots.get(group)

    def publish(self, group: ProxyGroup, snapshot: Snapshot) -> None:
        """Make `snapshot` current for `group`, tell its watchers; older revisions are ignored."""
        current = self._snapshots.get(group)
        if current is not None and (current.revision, current.identity_version) > (
            snapshot.revision,
            snapshot.identity_version,
        ):
            return
        self._snapshots[group] = snapshot
        for watcher in tuple(self._watchers.get(group, ())):
            watcher(snapshot)

    def watch(self, group: ProxyGroup, watcher: Watcher) -> None:
        self._watchers.setdefault(group, set()).add(watcher)

    def unwatch(self, group: ProxyGroup, watcher: Watcher) -> None:
        """Stop notifying `watcher`; a group nobody watches any more is forgotten."""
        watchers = self._watchers.get(group)
        if watchers is None:
            return
        watchers.discard(watcher)
        if not watchers:
            del self._watchers[group]
            self._snapshots.pop(group, None)

    def watched_groups(self) -> list[ProxyGroup]:
        return list(self._watchers)

    def footprint(self) -> dict[str, tuple[int, int]]:
        """Per type URL: distinct resources held and their serialized bytes (shared ones once)."""
        seen: set[int] = set()
        out: dict[str, tuple[int, int]] = {}
        for snapshot in self._snapshots.values():
            for type_url, resources in snapshot.resources.items():
                for resource in resources.values():
                    if id(resource) in seen:
                        continue
                    seen.add(id(resource))
                    count, size = out.get(type_url, (0, 0))
                    out[type_url] = (count + 1, size + len(resource.any_bytes))
        return out
