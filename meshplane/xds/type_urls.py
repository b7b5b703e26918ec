"""Type URLs of the xDS resources meshplane serves, in the order a push must send them.

The order matters (make before break): clusters, then their endpoints, then listeners, then the
route configurations that point at clusters, then secrets, which Envoy requests on its own once a
cluster or listener names them.
"""

from __future__ import annotations

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "FULL_STATE",
    "LISTENER",
    "PUSH_ORDER",
    "ROUTE",
    "SECRET",
    "SHORT_NAMES",
]

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)

SHORT_NAMES: dict[str, str] = {
    CLUSTER: "clusters",
    ENDPOINT: "endpoints",
    LISTENER: "listeners",
    ROUTE: "routes",
    SECRET: "secrets",
}

# Types whose state-of-the-world responses carry the full set (an absent resource is deleted).
FULL_STATE: frozenset[str] = frozenset({CLUSTER, LISTENER})
