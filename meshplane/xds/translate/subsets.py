"""Which label subsets of services get their own cluster.

Only subsets some route destination names exist, so the cluster count grows with what users route
to, not with every label combination endpoints carry. A destination with weight 0 still creates its
subset: the cluster is then warm before a later write shifts traffic onto it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from meshplane.model import Mesh
from meshplane.xds.translate.names import cluster_name

__all__ = ["Subset", "used_subsets"]


@dataclass(frozen=True, slots=True)
class Subset:
    """The endpoints of `service` whose labels include every pair of `labels`."""

    name: str
    service: str
    labels: Mapping[str, str]

    def admits(self, endpoint_labels: Mapping[str, str]) -> bool:
        return all(endpoint_labels.get(key) == value for key, value in self.labels.items())


def used_subsets(mesh: Mesh) -> list[Subset]:
    """Return the label subsets route destinations use, of services that exist, sorted by name."""
    found: dict[str, Subset] = {}
    for route in mesh.routes.values():
        for destination in route.destinations:
            if not destination.labels or destination.service not in mesh.services:
                continue
            name = cluster_name(destination.service, destination.labels)
            if name not in found:
                labels = MappingProxyType(dict(destination.labels))
                found[name] = Subset(name, destination.service, labels)
    return [found[name] for name in sorted(found)]
