"""Envoy bootstraps that point a gateway or sidecar at meshplane's ADS server.

Pure: returns plain JSON-able data (the API and CLI render YAML or JSON). Users never write Envoy
YAML by hand; the node identity written here is exactly what `meshplane.model.proxy_from_node`
reads back, so what a bootstrap declares and what the xDS server serves cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import yaml

from meshplane.model import NAME_PATTERN, ZONE_PATTERN, Role

__all__ = [
    "XDS_CLUSTER",
    "XDS_SERVER_SUBJECT",
    "BootstrapOptions",
    "render_bootstrap",
    "render_yaml",
]

# The static cluster Envoy reaches the control plane through.
XDS_CLUSTER = "meshplane-xds"
# The identity the xDS server's TLS certificate carries (spiffe://<trust domain>/<this>).
XDS_SERVER_SUBJECT = "control-plane/xds"

# Reconnect quickly after a control-plane restart, without hammering one that stays down.
_RETRY_BASE = "0.25s"
_RETRY_MAX = "5s"
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
_NAME = re.compile(NAME_PATTERN)
_ZONE = re.compile(ZONE_PATTERN)


@dataclass(frozen=True, slots=True)
class BootstrapOptions:
    """Everything a bootstrap depends on; `render_bootstrap` checks that the fields fit together.

    A gateway needs `gateway`; a sidecar needs `service` and its three ports (`inbound_port` where
    peers reach it, `app_port` where its app listens on 127.0.0.1, `outbound_port` where the app
    sends outgoing requests) and optionally `address`, the IP peers reach its inbound port at
    (left out, the control plane registers the address the proxy's xDS connection comes from,
    which is right whenever the proxy reaches the control plane without NAT).
    """

    role: Role
    node_id: str
    xds_host: str
    xds_port: int
    admin_port: int = 9901
    delta: bool = False
    gateway: str | None = None
    service: str | None = None
    inbound_port: int | None = None
    app_port: int | None = None
    outbound_port: int | None = None
    address: str | None = None
    token: str | None = None  # node token the control plane issued for this service or gateway
    labels: tuple[tuple[str, str], ...] = ()  # sidecar: labels of its auto-registered endpoint
    zone: str | None = None  # where it runs: endpoints in this zone are preferred, others failover
    # xDS over TLS: the roots to trust (PEM) and the control plane's SPIFFE ID to expect.
    xds_trusted_ca: str | None = None
    xds_server_id: str | None = None


def render_bootstrap(options: BootstrapOptions) -> dict[str, Any]:
    """Return a complete Envoy bootstrap for `options` as JSON-able data.

    Raises ValueError naming the inconsistent or invalid option.
    """
    meta = _node_metadata(options)
    meta["admin_port"] = options.admin_port  # where the stats listener reads from
    if options.token:
        meta["token"] = options.token
    node: dict[str, Any] = {
        "id": options.node_id,
        "cluster": options.gateway if options.role == Role.GATEWAY else options.service,
        "metadata": {"meshplane": meta},
    }
    if options.zone is not None:
        if not _ZONE.match(options.zone):
            raise ValueError(f"zone {options.zone!r} is not a zone name (like an endpoint's zone)")
        meta["zone"] = options.zone
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
        "static_resources": {"clusters": [_xds_cluster(options)]},
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


def render_yaml(options: BootstrapOptions) -> str:
    """Render the bootstrap as YAML in Envoy's own field order (raises ValueError like
    render_bootstrap)."""
    return yaml.safe_dump(render_bootstrap(options), sort_keys=False)


def _node_metadata(options: BootstrapOptions) -> dict[str, Any]:
    """Check `options` and return the `meshplane` node metadata section."""
    if not options.node_id or options.node_id != options.node_id.strip():
        raise ValueError("node_id must be non-empty and carry no surrounding whitespace")
    if not options.xds_host or any(c.isspace() for c in options.xds_host):
        raise ValueError(f"xds_host {options.xds_host!r} is not a host name or IP address")
    _check_port("xds_port", options.xds_port)
    _check_port("admin_port", options.admin_port)
    sidecar_fields = ("service", "inbound_port", "app_port", "outbound_port", "address")
    if options.role == Role.GATEWAY:
        _check_name("gateway", options.gateway)
        given = [field for field in sidecar_fields if getattr(options, field) is not None]
        if given:
            raise ValueError(f"a gateway bootstrap takes no sidecar options (got {given})")
        return {"role": Role.GATEWAY.value, "gateway": options.gateway}
    if options.role != Role.SIDECAR:
        raise ValueError(f"role must be 'gateway' or 'sidecar', not {options.role!r}")
    if options.gateway is not None:
        raise ValueError("a sidecar bootstrap takes no gateway name")
    _check_name("service", options.service)
    ports = {
        "inbound_port": options.inbound_port,
        "app_port": options.app_port,
        "outbound_port": options.outbound_port,
    }
    for field, port in ports.items():
        if port is None:
            raise ValueError(f"a sidecar bootstrap needs {field}")
        _check_port(field, port)
    _check_distinct({**ports, "admin_port": options.admin_port})
    address = None
    if options.address is not None:
        try:
            address = str(ipaddress.ip_address(options.address))
        except ValueError:
            raise ValueError(
                f"address {options.address!r} is not an IPv4 or IPv6 address"
            ) from None
    meta: dict[str, Any] = {
        "role": Role.SIDECAR.value,
        "service": options.service,
        **ports,
    }
    if address is not None:  # else the control plane uses the address the proxy connects from
        meta["address"] = address
    if options.labels:
        meta["labels"] = dict(options.labels)
    return meta


def _check_name(field: str, value: str | None) -> None:
    if not value:
        raise ValueError(
            f"a {'gateway' if field == 'gateway' else 'sidecar'} bootstrap needs {field}"
        )
    if len(value) > 63 or not _NAME.match(value):
        raise ValueError(f"{field} {value!r} is not a meshplane name (lowercase DNS label)")


def _check_port(field: str, port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{field} must be a port between 1 and 65535, not {port!r}")


def _check_distinct(ports: dict[str, int | None]) -> None:
    """Reject two roles on one port: the sidecar's Envoy and app share the host's ports."""
    seen: dict[int, str] = {}
    for field, port in ports.items():
        assert port is not None
        if port in seen:
            raise ValueError(f"{field} and {seen[port]} must differ (both {port})")
        seen[port] = field


def _ads_source() -> dict[str, Any]:
    """A fresh dict each time: PyYAML writes a shared object as an anchor and alias."""
    return {"ads": {}, "resource_api_version": "V3"}


def _socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def _xds_tls(trusted_ca: str, server_id: str | None) -> dict[str, Any]:
    """Verify the control plane's certificate against the mesh roots (and its SPIFFE ID)."""
    validation: dict[str, Any] = {"trusted_ca": {"inline_string": trusted_ca}}
    if server_id:
        validation["match_typed_subject_alt_names"] = [
            {"san_type": "URI", "matcher": {"exact": server_id}}
        ]
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": f"type.googleapis.com/{_UPSTREAM_TLS}",
            "common_tls_context": {"alpn_protocols": ["h2"], "validation_context": validation},
        },
    }


def _xds_cluster(options: BootstrapOptions) -> dict[str, Any]:
    """The control-plane cluster: HTTP/2 (gRPC), kept alive so a dead peer is noticed, over TLS
    when the bootstrap carries the roots to trust."""
    host, port = options.xds_host, options.xds_port
    try:
        ipaddress.ip_address(host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"
    cluster: dict[str, Any] = {
        "name": XDS_CLUSTER,
        "type": discovery,
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
        "typed_extension_protocol_options": {
            _HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"}
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
    if options.xds_trusted_ca:
        cluster["transport_socket"] = _xds_tls(options.xds_trusted_ca, options.xds_server_id)
    return cluster
