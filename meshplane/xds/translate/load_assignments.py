"""EDS ClusterLoadAssignments: which endpoints each service and subset cluster has right now.

Every cluster gets an assignment, even with no endpoints: Envoy then answers 503 for that
destination instead of waiting on an EDS response that never comes (or NACKing a route).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import struct_pb2

from meshplane.model import EndpointSpec, Mesh
from meshplane.xds.translate.proto_values import socket_address
from meshplane.xds.translate.subsets import used_subsets
from meshplane.xds.translate.transport_sockets import mtls_endpoint_metadata

__all__ = ["LB_METADATA_KEY", "load_assignment", "shared_load_assignments"]

# Envoy's subset load balancer and `metadata_match` read endpoint labels from this namespace.
LB_METADATA_KEY = "envoy.lb"


def shared_load_assignments(mesh: Mesh) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """Return one assignment per service cluster and per used subset cluster, sorted by name."""
    assignments = [load_assignment(name, mesh.endpoints_of(name).items()) for name in mesh.services]
    for subset in used_subsets(mesh):
        members = mesh.endpoints_of(subset.service).items()
        assignments.append(
            load_assignment(subset.name, ((n, e) for n, e in members if subset.admits(e.labels)))
        )
    return sorted(assignments, key=lambda assignment: str(assignment.cluster_name))


def load_assignment(
    cluster: str, endpoints: Iterable[tuple[str, EndpointSpec]]
) -> endpoint_pb2.ClusterLoadAssignment:
    """Build `cluster`'s assignment from (endpoint name, spec) pairs, ordered by endpoint name.

    All endpoints share one locality until endpoints carry localities of their own; a cluster
    without endpoints gets no locality at all.
    """
    lb_endpoints = [_lb_endpoint(spec) for _, spec in sorted(endpoints, key=lambda pair: pair[0])]
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    if lb_endpoints:
        assignment.endpoints.add(lb_endpoints=lb_endpoints)
    return assignment


def _lb_endpoint(spec: EndpointSpec) -> endpoint_components_pb2.LbEndpoint:
    endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=socket_address(spec.address, spec.port)),
        load_balancing_weight={"value": spec.weight},
    )
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
