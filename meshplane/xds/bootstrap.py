"""Envoy bootstraps that point a gateway or sidecar at meshplane's ADS server.

Pure: renders a checked `NodeOptions` (the node contract, `meshplane.model.node`) as plain JSON-able
data (the API and CLI render YAML or JSON). Users never write Envoy YAML by hand; the node metadata
comes from `model.node.node_metadata`, which sits beside `proxy_from_node` that reads it back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from meshplane.model import METADATA_KEY, NodeOptions, node_metadata

__all__ = ["XDS_CLUSTER", "XdsTls", "render_bootstrap", "render_yaml"]

# The static cluster Envoy reaches the control plane through.
XDS_CLUSTER = "meshplane-xds"

# Reconnect quickly after a control-plane restart, without hammering one that stays down.
_RETRY_BASE = "0.25s"
_RETRY_MAX = "5s"
# HTTP/2 pings on the xDS connection: a replica that vanished without closing it (cut network) is
# noticed within interval + timeout, and Envoy moves to another. No shorter than the gRPC
# server's min_ping_interval_without_data_ms (xds/server.py), or it would answer GOAWAY.
_KEEPALIVE_INTERVAL = "10s"
_KEEPALIVE_TIMEOUT = "5s"
# Envoy warns at start-up when no downstream connection limit is configured. Envoy 1.40 also warns
# that the older runtime key (overload.global_downstream_max_connections) is deprecated, so the
# limit is set through the overload manager's resource monitor instead.
_MAX_DOWNSTREAM_CONNECTIONS = 50_000
_CONNECTIONS_MONITOR = "envoy.resource_monitors.global_downstream_max_connections"
_CONNECTIONS_CONFIG = (
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


@dataclass(frozen=True, slots=True)
class XdsTls:
    """xDS over TLS: the roots to trust (PEM) and the control plane's SPIFFE ID to expect."""

    trusted_ca: str
    server_id: str | None = None


def render_bootstrap(
    options: NodeOptions,
    *,
    token: str | None = None,
    tls: XdsTls | None = None,
    replicas: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    """Return a complete Envoy bootstrap for `options` as JSON-able data.

    `token` is the node token the control plane issued for the service or gateway; `replicas`,
    the xDS addresses (host, port) of the mesh's other live replicas, which Envoy reconnects to
    when the one it holds a stream with goes away. Raises
    ValueError when `options` leaves the node id or the xDS address to a server (see
    `NodeOptions.with_server_defaults`).
    """
    missing = [f for f in ("node_id", "xds_host", "xds_port") if getattr(options, f) is None]
    if missing:
        raise ValueError(f"a rendered bootstrap needs {', '.join(missing)}")
    node: dict[str, Any] = {
        "id": options.node_id,
        "cluster": options.name,
        "metadata": {METADATA_KEY: node_metadata(options, token)},
    }
    if options.zone is not None:
        node["locality"] = {"zone": options.zone}
    return {
        "node": node,
        "admin": {"address": _socket_address("127.0.0.1", options.admin_port)},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if options.delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [
                    {
                        "envoy_grpc": {
                            "cluster_name": XDS_CLUSTER,
                            "retry_policy": {
                                "retry_back_off": {
                                    "base_interval": _RETRY_BASE,
                                    "max_interval": _RETRY_MAX,
                                }
                            },
                        }
                    }
                ],
                "set_node_on_first_message_only": True,
            },
            "cds_config": _ads_source(),
            "lds_config": _ads_source(),
        },
        "static_resources": {"clusters": [_xds_cluster(options, tls, replicas)]},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": _CONNECTIONS_MONITOR,
                    "typed_config": {
                        "@type": f"type.googleapis.com/{_CONNECTIONS_CONFIG}",
                        "max_active_downstream_connections": _MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
    }


def render_yaml(
    options: NodeOptions, *, token: str | None = None, tls: XdsTls | None = None
) -> str:
    """Render the bootstrap as YAML in Envoy's own field order (raises ValueError like
    render_bootstrap)."""
    return yaml.safe_dump(render_bootstrap(options, token=token, tls=tls), sort_keys=False)


def _ads_source() -> dict[str, Any]:
    """A fresh dict each time: PyYAML writes a shared object as an anchor and alias."""
    return {"ads": {}, "resource_api_version": "V3"}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _xds_tls(tls: XdsTls) -> dict[str, Any]:
    """Verify the control plane's certificate against the mesh roots (and its SPIFFE ID)."""
    validation: dict[str, Any] = {"trusted_ca": {"inline_string": tls.trusted_ca}}
    if tls.server_id:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": tls.server_id}}
        ]
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": f"type.googleapis.com/{_UPSTREAM_TLS}",
            "common_tls_context": {"alpn_protocols": ["h2"], "validation_context": validation},
        },
    }


def _xds_cluster(
    options: NodeOptions, tls: XdsTls | None, replicas: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """The control-plane cluster: every replica's xDS address (this one first), HTTP/2 (gRPC),
    kept alive so a dead peer is noticed within seconds, over TLS when the bootstrap carries
    the roots to trust."""
    host, port = options.xds_host, options.xds_port
    assert host is not None  # checked by render_bootstrap
    assert port is not None
    addresses = list(dict.fromkeys([(host, port), *replicas]))
    discovery = "STATIC" if all(_is_ip(h) for h, _ in addresses) else "STRICT_DNS"
    endpoints = [{"endpoint": {"address": _socket_address(h, p)}} for h, p in addresses]
    cluster: dict[str, Any] = {
        "name": XDS_CLUSTER,
        "type": discovery,
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [{"lb_endpoints": endpoints}],
        },
        "typed_extension_protocol_options": {
            _HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {
                            "interval": _KEEPALIVE_INTERVAL,
                            "timeout": _KEEPALIVE_TIMEOUT,
                        }
                    }
                },
            }
        },
        "upstream_connection_options": {
            "tcp_keepalive": {
                "keepalive_probes": 3,
                "keepalive_time": 30,
                "keepalive_interval": 5,
            }
        },
    }
    if discovery == "STRICT_DNS":
        # "localhost" may resolve to ::1 first while the server listens on IPv4 only.
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if tls is not None:
        cluster["transport_socket"] = _xds_tls(tls)
    return cluster
