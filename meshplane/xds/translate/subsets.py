"""Which label subsets of services get their own cluster.

Only subsets some route destination (or mirror) names exist, so the cluster count grows with what
users route to, not with every label combination endpoints carry. A destination with weight 0
still creates its subset: the cluster is then warm before a later write shifts traffic onto it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from meshplane.model import Destination, Mesh, Mirror, selects
from meshplane.xds.translate.names import cluster_name

__all__ = ["Subset", "subsets_by_service", "used_subsets"]


@dataclass(frozen=True, slots=True)
class Subset:
    """The endpoints of `service` whose labels include every pair of `labels`."""

    name: str
    service: str
    labels: Mapping[str, str]

    def admits(self, endpoint_labels: Mapping[str, str]) -> bool:
        return selects(self.labels, endpoint_labels)


def used_subsets(mesh: Mesh) -> list[Subset]:
    """Return the label subsets route destinations and mirrors use, of services that exist,
    sorted by name."""
    found: dict[str, Subset] = {}
    for route in mesh.routes.values():
        targets: list[Destination | Mirror] = [*route.destinations, *route.mirrors]
        for target in targets:
            if not target.labels or target.service not in mesh.services:
                continue
            name = cluster_name(target.service, target.labels)
            if name not in found:
                labels = MappingProxyType(dict(target.labels))
                found[name] = Subset(name, target.service, labels)
    return [found[name] for name in sorted(found)]


def subsets_by_service(mesh: Mesh) -> dict[str, list[Subset]]:
    """`used_subsets` by the service they belong to (services without one are left out): routes
    decide which subsets exist, and the subsets decide a service's clusters and assignments."""
    subsets: dict[str, list[Subset]] = {}
    for subset in used_subsets(mesh):
        subsets.setdefault(subset.service, []).append(subset)
    return subsets
