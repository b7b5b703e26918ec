"""The mesh's vocabulary: specs users write, the mesh at a revision, and proxy identities.

Pure: imports neither the store, the API nor the xDS server, and does no I/O.
"""

from meshplane.model.durations import Duration, format_duration, parse_duration
from meshplane.model.kinds import KINDS, Kind, Reference, kind_named
from meshplane.model.mesh import Change, Mesh
from meshplane.model.names import NAME_PATTERN, Name
from meshplane.model.proxy import Proxy, ProxyGroup, Role, proxy_from_node
from meshplane.model.specs import (
    Destination,
    EndpointSpec,
    GatewaySpec,
    HeaderMatch,
    RouteMatch,
    RouteSpec,
    ServiceSpec,
    Spec,
)

__all__ = [
    "KINDS",
    "NAME_PATTERN",
    "Change",
    "Destination",
    "Duration",
    "EndpointSpec",
    "GatewaySpec",
    "HeaderMatch",
    "Kind",
    "Mesh",
    "Name",
    "Proxy",
    "ProxyGroup",
    "Reference",
    "Role",
    "RouteMatch",
    "RouteSpec",
    "ServiceSpec",
    "Spec",
    "format_duration",
    "kind_named",
    "parse_duration",
    "proxy_from_node",
]
