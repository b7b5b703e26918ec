"""Names of the Envoy resources meshplane generates.

The xDS server, references between resources and users reading `/config_dump` all rely on these
spellings, so they live in one place. Meshplane names never contain `|`, `:` or `=`, so the
generated names below cannot collide with one another or with a user's service name.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "INBOUND",
    "OUTBOUND",
    "cluster_name",
    "default_route_name",
    "edge_secret_name",
    "gateway_listener_name",
    "gateway_route_name",
    "gateway_stat_prefix",
    "inbound_cluster_name",
    "tcp_listener_name",
    "tcp_stat_prefix",
]

# Sidecar listener names; the outbound route configuration shares its listener's name.
INBOUND = "inbound"
OUTBOUND = "outbound"


def cluster_name(service: str, labels: Mapping[str, str] | None = None) -> str:
    """Name the cluster for `service`, or for the subset of its endpoints carrying `labels`.

    Labels are sorted by key so that every route naming the same subset shares one cluster:
    `reviews|version=v2,zone=a`.
    """
    if not labels:
        return service
    pairs = ",".join(f"{key}={labels[key]}" for key in sorted(labels))
    return f"{service}|{pairs}"


def inbound_cluster_name(app_port: int) -> str:
    """Name the sidecar's static cluster pointing at its local app on 127.0.0.1:`app_port`."""
    return f"inbound|{app_port}"


def gateway_listener_name(gateway: str) -> str:
    return f"gateway:{gateway}"


def gateway_route_name(gateway: str) -> str:
    """Name the gateway's route configuration; the same as its listener so dumps line up."""
    return f"gateway:{gateway}"


def edge_secret_name(certificate: str) -> str:
    """Name the SDS secret of a `tls-certificates` resource (for the gateways presenting it)."""
    return f"edge-certificate:{certificate}"


def gateway_stat_prefix(gateway: str) -> str:
    return f"gateway_{gateway}"


def default_route_name(service: str) -> str:
    """Name the catch-all route a sidecar's outbound virtual host for `service` ends with."""
    return f"default:{service}"


def tcp_listener_name(service: str) -> str:
    """Name a sidecar's outbound listener for tcp `service` (on the service's mesh port)."""
    return f"tcp:{service}"


def tcp_stat_prefix(service: str) -> str:
    """The stat prefix of that listener's tcp_proxy: `tcp.outbound_tcp_<service>.*`."""
    return f"outbound_tcp_{service}"
