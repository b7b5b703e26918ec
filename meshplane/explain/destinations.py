"""Where a route sends what it forwards: its destinations as clusters, with their endpoints
and the service policies in effect, shared by the HTTP and the TCP explanations."""

from __future__ import annotations

from collections.abc import Sequence

from meshplane.explain.models import Destination, Endpoint, ServicePolicies
from meshplane.model import Destination as DestinationSpec
from meshplane.model import Mesh, selects

__all__ = ["cluster_name", "route_destinations"]


def route_destinations(mesh: Mesh, destinations: Sequence[DestinationSpec]) -> list[Destination]:
    """Destinations that get traffic, merged per cluster like the translator's weighted clusters
    (weight 0 and missing services left out)."""
    merged: dict[str, Destination] = {}
    for d in destinations:
        service = mesh.services.get(d.service)
        if d.weight == 0 or service is None:
            continue
        cluster = cluster_name(d.service, d.labels)
        if cluster in merged:
            merged[cluster].weight += d.weight
            continue
        endpoints = [
            Endpoint(address=f"{e.address}:{e.port}", zone=e.zone, labels=e.labels, weight=e.weight)
            for _, e in sorted(mesh.endpoints_of(d.service).items())
            if selects(d.labels, e.labels)
        ]
        merged[cluster] = Destination(
            service=d.service,
            labels=d.labels,
            weight=d.weight,
            percent=0,
            cluster=cluster,
            endpoints=endpoints,
            policies=ServicePolicies(
                lb_policy=service.lb_policy,
                circuit_breaker=service.circuit_breaker,
                outlier_detection=service.outlier_detection,
                health_check=service.health_check,
                rate_limit=service.rate_limit,
            ),
        )
    total = sum(d.weight for d in merged.values())
    for destination in merged.values():
        destination.percent = round(100 * destination.weight / total, 4)
    return sorted(merged.values(), key=lambda d: d.cluster)


def cluster_name(service: str, labels: dict[str, str]) -> str:
    """The Envoy cluster name translate/names.py gives a service or label subset (a unit test
    holds the two together)."""
    if not labels:
        return service
    return service + "|" + ",".join(f"{key}={labels[key]}" for key in sorted(labels))
