"""What a change not yet written would change on the connected proxies: per proxy group (with
the node ids connected in it), the Envoy resources added, changed and removed, by type and name.

A dry run (`POST /api/v1/apply?dry_run=true`) asks; the snapshot builder builds the groups'
snapshots after the change on a fork (`SnapshotBuilder.preview`), and this compares them with
the snapshots served now, resource by resource, by content version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from google.protobuf.message import Message

from meshplane.model import Change, ProxyGroup
from meshplane.xds.builder import SnapshotBuilder
from meshplane.xds.envoy_check import envoy_verdicts
from meshplane.xds.resources import CachedResource, Snapshot
from meshplane.xds.static_config import static_bootstrap
from meshplane.xds.streams import StreamTable
from meshplane.xds.type_urls import PUSH_ORDER, SHORT_NAMES

__all__ = ["ChangePreview", "GroupPreview", "ResourceChanges"]


@dataclass(frozen=True, slots=True)
class ResourceChanges:
    """The names of one type's resources a change adds, changes and removes."""

    added: list[str]
    changed: list[str]
    removed: list[str]


@dataclass(frozen=True, slots=True)
class GroupPreview:
    """One proxy group the change reaches: its connected proxies, per type (short name) what
    changes, and, when Envoy was asked (`envoy_check.py`), why it would refuse it (None: it
    would take it)."""

    group: ProxyGroup
    nodes: list[str]
    changes: dict[str, ResourceChanges]
    envoy_error: str | None = None


class ChangePreview:
    """Previews changes against the snapshots the connected proxies are served; `envoy` is
    the binary that checks them, if any (see envoy_check.find_envoy)."""

    def __init__(
        self, builder: SnapshotBuilder, streams: StreamTable, envoy: str | None = None
    ) -> None:
        self._builder = builder
        self._streams = streams
        self.envoy = envoy

    async def preview(
        self, changes: Sequence[Change], *, validate: bool = False
    ) -> list[GroupPreview]:
        """The groups `changes` would change something for, with what, and (`validate`, which
        needs `envoy`) whether Envoy would take each one's configuration; call on the control
        plane's loop."""
        nodes: dict[ProxyGroup, set[str]] = {}
        for handle in self._streams:
            if handle.proxy is not None:
                nodes.setdefault(handle.proxy.group, set()).add(handle.node_id)
        found: list[GroupPreview] = []
        snapshots: list[Snapshot] = []
        for group, now, after in await self._builder.preview(changes):
            differences = _differences(now, after)
            if differences and group in nodes:
                found.append(GroupPreview(group, sorted(nodes[group]), differences))
                snapshots.append(after)
        if validate:
            errors = await self._verdicts(snapshots)
            found = [replace(p, envoy_error=e) for p, e in zip(found, errors, strict=True)]
        return sorted(found, key=lambda p: p.nodes)

    async def _verdicts(self, snapshots: list[Snapshot]) -> list[str | None]:
        """Whether Envoy takes each snapshot's configuration (None) or why not."""
        if self.envoy is None:
            raise ValueError("no Envoy binary to validate with")
        bootstraps = [await asyncio.to_thread(static_bootstrap, _messages(s)) for s in snapshots]
        return await envoy_verdicts(self.envoy, bootstraps)


def _messages(snapshot: Snapshot) -> dict[str, list[Message]]:
    return {
        type_url: [r.message for r in of_type.values() if r.message is not None]
        for type_url, of_type in snapshot.resources.items()
    }


def _differences(now: Snapshot | None, after: Snapshot) -> dict[str, ResourceChanges]:
    found = {}
    for type_url in PUSH_ORDER:
        was = now.of(type_url) if now is not None else {}
        changes = _compare(was, after.of(type_url))
        if changes.added or changes.changed or changes.removed:
            found[SHORT_NAMES[type_url]] = changes
    return found


def _compare(
    was: Mapping[str, CachedResource], now: Mapping[str, CachedResource]
) -> ResourceChanges:
    return ResourceChanges(
        added=sorted(now.keys() - was.keys()),
        changed=sorted(n for n in now.keys() & was.keys() if now[n].version != was[n].version),
        removed=sorted(was.keys() - now.keys()),
    )
