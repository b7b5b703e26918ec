"""EDS ClusterLoadAssignments: which endpoints each service and subset cluster has right now.

Every cluster gets an assignment, even with no endpoints: Envoy then answers 503 for that
destination instead of waiting on an EDS response that never comes (or NACKing a route).

Locality: endpoints are grouped by zone. For a proxy in a zone, the endpoints in that zone get
priority 0 and all others priority 1, so Envoy sends everything to its own zone and fails over
(gradually, as Envoy's priority load works) when the local endpoints turn unhealthy. When no
endpoint is in the proxy's zone, or all are, everything is priority 0. Assignments therefore
depend on the proxy's zone only: they are built once per zone, not per proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import struct_pb2

from meshplane.model import EndpointSpec, Mesh
from meshplane.xds.translate.subsets import Subset, subsets_by_service
from meshplane.xds.translate.transport_sockets import mtls_endpoint_metadata

__all__ = [
    "LB_METADATA_KEY",
    "load_assignment",
    "service_load_assignments",
    "shared_load_assignments",
]

# Envoy's subset load balancer and `metadata_match` read endpoint labels from this namespace.
LB_METADATA_KEY = "envoy.lb"


def shared_load_assignments(
    mesh: Mesh, zone: str | None = None
) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """Return one assignment per service cluster and per used subset cluster, sorted by name,
    as proxies in `zone` (None: proxies without a zone) see them."""
    subsets = subsets_by_service(mesh)
    assignments = [
        assignment
        for name in mesh.services
        for assignment in service_load_assignments(mesh, name, subsets.get(name, ()), zone)
    ]
    return sorted(assignments, key=lambda assignment: str(assignment.cluster_name))


def service_load_assignments(
    mesh: Mesh, service: str, subsets: Iterable[Subset], zone: str | None = None
) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """The assignments of one service's cluster and of its `subsets`' clusters, as proxies in
    `zone` see them (for a change to some services' endpoints, which leaves the others alone)."""
    members = list(mesh.endpoints_of(service).items())
    assignments = [load_assignment(service, members, zone)]
    for subset in subsets:
        chosen = [(n, e) for n, e in members if subset.admits(e.labels)]
        assignments.append(load_assignment(subset.name, chosen, zone))
    return assignments


def load_assignment(
    cluster: str, endpoints: Iterable[tuple[str, EndpointSpec]], zone: str | None = None
) -> endpoint_pb2.ClusterLoadAssignment:
    """Build `cluster`'s assignment from (endpoint name, spec) pairs for a proxy in `zone`.

    One locality per zone (endpoints without a zone share one without a locality), sorted by
    priority then zone; endpoints in each ordered by name. No endpoints, no locality at all.
    """
    members = sorted(endpoints, key=lambda pair: pair[0])
    zones = {spec.zone for _, spec in members}
    flat = zone is None or zone not in zones or zones == {zone}
    by_locality: dict[tuple[int, str], list[EndpointSpec]] = {}
    for _, spec in members:
        priority = 0 if flat or spec.zone == zone else 1
        by_locality.setdefault((priority, spec.zone or ""), []).append(spec)
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    for (priority, locality), specs in sorted(by_locality.items()):
        assignment.endpoints.append(_locality(priority, locality, specs))
    return assignment


def _locality(
    priority: int, zone: str, specs: Sequence[EndpointSpec]
) -> endpoint_components_pb2.LocalityLbEndpoints:
    group = endpoint_components_pb2.LocalityLbEndpoints(
        lb_endpoints=[_lb_endpoint(spec) for spec in specs], priority=priority
    )
    if zone:
        group.locality.zone = zone
    return group


def _lb_endpoint(spec: EndpointSpec) -> endpoint_components_pb2.LbEndpoint:
    endpoint = endpoint_components_pb2.LbEndpoint()  # set field by field: the cheapest way
    address = endpoint.endpoint.address.socket_address
    address.address = spec.address
    address.port_value = spec.port
    endpoint.load_balancing_weight.value = spec.weight
    if spec.labels:
        endpoint.metadata.CopyFrom(_labels_metadata(spec.labels))
    if spec.sidecar:
        mtls_endpoint_metadata(endpoint.metadata)
    return endpoint


def _labels_metadata(labels: Mapping[str, str]) -> base_pb2.Metadata:
    fields = struct_pb2.Struct()
    fields.update(dict(sorted(labels.items())))
    metadata = base_pb2.Metadata()
    metadata.filter_metadata[LB_METADATA_KEY].CopyFrom(fields)
    return metadata
