"""The mesh's vocabulary: specs users write, the mesh at a revision, and the node contract.

Pure: imports neither the store, the API nor the xDS server, and does no I/O.
"""

from meshplane.model.choices import exactly_one_of
from meshplane.model.durations import Duration, format_duration, parse_duration
from meshplane.model.fields import Method
from meshplane.model.identity import API_SERVER, XDS_SERVER, Subject, SubjectKind
from meshplane.model.identity_state import IdentityState, Leaf
from meshplane.model.kinds import KINDS, Kind, Reference, kind_named
from meshplane.model.mesh import Change, Key, Mesh
from meshplane.model.names import NAME_PATTERN, Name
from meshplane.model.node import (
    METADATA_KEY,
    NODE_TOKEN_HEADER,
    NodeOptions,
    node_metadata,
    proxy_from_node,
)
from meshplane.model.policies import (
    MESH_SETTINGS_NAME,
    AuthorizationPolicySpec,
    Caller,
    MeshSettingsSpec,
)
from meshplane.model.proxy import Proxy, ProxyGroup, Role
from meshplane.model.route_table import (
    NamedRoute,
    PathCondition,
    RouteTable,
    Slot,
    default_service,
    gateway_table,
    path_condition,
    precedence,
    route_hosts,
    route_slots,
    sidecar_table,
)
from meshplane.model.rules import Problem, check_write, selects
from meshplane.model.service_policies import (
    CircuitBreaker,
    HealthCheck,
    OutlierDetection,
    RetryBudget,
)
from meshplane.model.specs import (
    HASH_LB_POLICIES,
    ZONE_PATTERN,
    Destination,
    DirectResponse,
    EndpointSpec,
    Fault,
    GatewayProtocol,
    GatewaySpec,
    HeaderChanges,
    HeaderMatch,
    Mirror,
    QueryMatch,
    RateLimit,
    Redirect,
    RetryPolicy,
    Rewrite,
    RouteMatch,
    RouteSpec,
    ServiceSpec,
    Spec,
    Sticky,
)
from meshplane.model.streams import gateway_stream_route, http_settings, sidecar_stream_routes
from meshplane.model.telemetry import AccessLog, ServiceTelemetry, Telemetry, Tracing

__all__ = [
    "API_SERVER",
    "HASH_LB_POLICIES",
    "KINDS",
    "MESH_SETTINGS_NAME",
    "METADATA_KEY",
    "NAME_PATTERN",
    "NODE_TOKEN_HEADER",
    "XDS_SERVER",
    "ZONE_PATTERN",
    "AccessLog",
    "AuthorizationPolicySpec",
    "Caller",
    "Change",
    "CircuitBreaker",
    "Destination",
    "DirectResponse",
    "Duration",
    "EndpointSpec",
    "Fault",
    "GatewayProtocol",
    "GatewaySpec",
    "HeaderChanges",
    "HeaderMatch",
    "HealthCheck",
    "IdentityState",
    "Key",
    "Kind",
    "Leaf",
    "Mesh",
    "MeshSettingsSpec",
    "Method",
    "Mirror",
    "Name",
    "NamedRoute",
    "NodeOptions",
    "OutlierDetection",
    "PathCondition",
    "Problem",
    "Proxy",
    "ProxyGroup",
    "QueryMatch",
    "RateLimit",
    "Redirect",
    "Reference",
    "RetryBudget",
    "RetryPolicy",
    "Rewrite",
    "Role",
    "RouteMatch",
    "RouteSpec",
    "RouteTable",
    "ServiceSpec",
    "ServiceTelemetry",
    "Slot",
    "Spec",
    "Sticky",
    "Subject",
    "SubjectKind",
    "Telemetry",
    "Tracing",
    "check_write",
    "default_service",
    "exactly_one_of",
    "format_duration",
    "gateway_stream_route",
    "gateway_table",
    "http_settings",
    "kind_named",
    "node_metadata",
    "parse_duration",
    "path_condition",
    "precedence",
    "proxy_from_node",
    "route_hosts",
    "route_slots",
    "selects",
    "sidecar_stream_routes",
    "sidecar_table",
]
