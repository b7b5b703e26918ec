"""Translate the mesh model into Envoy v3 resources: pure functions, no I/O, stable output.

The entry points split the work the way the xDS server shares it:
- `shared_resources`: once per mesh revision, for every proxy (clusters, load assignments);
- `zone_resources`: once per zone and revision, the load assignments proxies of a zone see;
- `group_config`: once per proxy group, everything that group receives besides those (its
  listeners and routes with the mesh's telemetry, its own clusters, its SDS secrets);
- `service_clusters` and `service_load_assignments`: one service's share of the shared
  resources, for a change that touches only some services (subsets from `subsets_by_service`).
`group_resources` is the routing part of `group_config` alone (no telemetry, no secrets), for
tests and tools that look at routing. Every entry point returns new messages (keyed by type URL
but for the per-service ones) in a stable order, sorted by name where the docstring says so, so
equal meshes give equal messages (and equal bytes once serialized deterministically); none
changes its arguments.
"""

from __future__ import annotations

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from meshplane.model import IdentityState, Mesh, ProxyGroup, Role
from meshplane.xds.translate.clusters import inbound_cluster, service_clusters, shared_clusters
from meshplane.xds.translate.gateway_listeners import gateway_listener
from meshplane.xds.translate.http_filters import inbound_policy_filters
from meshplane.xds.translate.load_assignments import (
    service_load_assignments,
    shared_load_assignments,
)
from meshplane.xds.translate.rbac import network_rbac_filters, rbac_filters
from meshplane.xds.translate.route_configs import (
    RouteMemo,
    gateway_route_configuration,
    outbound_route_configuration,
)
from meshplane.xds.translate.secrets import OWN_SECRETS, edge_secrets, identity_secrets
from meshplane.xds.translate.sidecar_listeners import inbound_listener, outbound_listener
from meshplane.xds.translate.subsets import Subset, subsets_by_service
from meshplane.xds.translate.tcp_listeners import outbound_tcp_listeners, skipped_ports
from meshplane.xds.translate.telemetry import with_telemetry
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

__all__ = [
    "OWN_SECRETS",
    "RouteMemo",
    "Subset",
    "group_config",
    "group_resources",
    "service_clusters",
    "service_load_assignments",
    "shared_resources",
    "skipped_ports",
    "subsets_by_service",
    "zone_resources",
]


def shared_resources(mesh: Mesh) -> dict[str, list[Message]]:
    """Resources every proxy sees, built once per mesh revision: CDS clusters (one EDS cluster per
    service, plus one per label subset used by any route destination) and their EDS
    ClusterLoadAssignments, as proxies without a zone see them (see `zone_resources`).

    Keys: CLUSTER and ENDPOINT, always present.
    """
    return {
        CLUSTER: list(shared_clusters(mesh)),
        ENDPOINT: list(shared_load_assignments(mesh)),
    }


def zone_resources(mesh: Mesh, zone: str) -> dict[str, list[Message]]:
    """The load assignments proxies in `zone` see instead of the shared ones (endpoints in their
    own zone first; see load_assignments). Built once per zone and revision, shared by every
    proxy of the zone; clusters do not depend on the zone.

    Keys: ENDPOINT.
    """
    return {ENDPOINT: list(shared_load_assignments(mesh, zone))}


def group_resources(
    mesh: Mesh, group: ProxyGroup, memo: RouteMemo | None = None
) -> dict[str, list[Message]]:
    """The routing part of one proxy group's config (`group_config` adds telemetry and secrets):
    listeners and route configurations (and the sidecar's local app cluster). `memo` keeps
    translated routes between calls (see RouteMemo).

    Keys: CLUSTER, LISTENER and ROUTE, always present (lists may be empty: a gateway not in the
    mesh yet gets no listener, so Envoy keeps running and picks it up once it is created; so
    does a tcp or tls gateway without a route, and neither has a route configuration). A
    sidecar gets its inbound and outbound listeners, then one per tcp service with a mesh port
    (but those of `skipped_ports`). Raises ValueError for a sidecar group missing its service
    or ports.
    """
    if group.role == Role.GATEWAY:
        if not group.gateway:
            raise ValueError("a gateway proxy group needs its gateway name")
        listener = gateway_listener(mesh, group.gateway)
        gateway = mesh.gateways.get(group.gateway)
        streams = gateway is not None and gateway.streams
        routes = None if streams else gateway_route_configuration(mesh, group.gateway, memo)
        return {
            CLUSTER: [],
            LISTENER: [listener] if listener is not None else [],
            ROUTE: [routes] if routes is not None else [],
        }
    if (
        not group.service
        or group.inbound_port is None
        or group.app_port is None
        or group.outbound_port is None
    ):
        raise ValueError("a sidecar proxy group needs its service, inbound, app and outbound ports")
    spec = mesh.services.get(group.service)
    if spec is not None and spec.protocol == "tcp":
        filters, network_filters = [], network_rbac_filters(mesh, group.service)
    else:
        filters = [*rbac_filters(mesh, group.service), *inbound_policy_filters(spec)]
        network_filters = []
    return {
        CLUSTER: [inbound_cluster(group.app_port, spec)],
        LISTENER: [
            inbound_listener(
                group.inbound_port,
                group.app_port,
                spec,
                trust_domain=mesh.trust_domain,
                mtls=mesh.settings.mtls,
                filters=filters,
                network_filters=network_filters,
            ),
            outbound_listener(group.outbound_port),
            *outbound_tcp_listeners(mesh, group),
        ],
        ROUTE: [outbound_route_configuration(mesh, memo)],
    }


def group_config(
    mesh: Mesh, group: ProxyGroup, identities: IdentityState, memo: RouteMemo | None = None
) -> dict[str, list[Message]]:
    """Everything one proxy group receives besides the shared and zone resources: its listeners
    and route configurations with the mesh's telemetry (access logs, tracing, stats), its own
    clusters (the sidecar's app, the trace collector, the stats source), and its SDS secrets
    (the trust bundle, its identity's certificate once issued, and the certificates an https
    gateway presents).

    Keys: CLUSTER, LISTENER, ROUTE and SECRET, always present; lists sorted by name but for the
    telemetry clusters and the stats listener, which come last. Raises ValueError like
    `group_resources`.
    """
    resources = with_telemetry(mesh, group, group_resources(mesh, group, memo))
    subject = group.subject
    leaf = identities.leaves.get(subject) if subject is not None else None
    secrets = identity_secrets(identities, leaf)
    if group.role == Role.GATEWAY and group.gateway:
        secrets = sorted([*secrets, *edge_secrets(mesh, group.gateway, identities)], key=_name)
    resources[SECRET] = list(secrets)
    return resources


def _name(secret: secret_pb2.Secret) -> str:
    return str(secret.name)
