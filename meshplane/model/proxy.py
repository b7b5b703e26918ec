"""Who is asking for config: a proxy's identity as its bootstrap declared it.

The bootstrap that meshplane generates puts a `meshplane` struct in the node metadata; this module
reads it back. Everything that shapes a proxy's config except its node id is its `group`: proxies in
one group are sent the same resources, so translation runs once per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Proxy", "ProxyGroup", "Role", "proxy_from_node"]


class Role(StrEnum):
    GATEWAY = "gateway"
    SIDECAR = "sidecar"


@dataclass(frozen=True, slots=True)
class ProxyGroup:
    """The part of a proxy's identity that decides its config."""

    role: Role
    gateway: str | None = None
    service: str | None = None
    inbound_port: int | None = None
    app_port: int | None = None
    outbound_port: int | None = None
    zone: str | None = None  # where it runs: endpoints in this zone are preferred
    admin_port: int | None = None  # Envoy's admin port (127.0.0.1): the stats listener's source

    @property
    def subject(self) -> str | None:
        """The identity proxies of this group speak for: "service/<name>" or "gateway/<name>"."""
        if self.role == Role.GATEWAY and self.gateway:
            return f"gateway/{self.gateway}"
        if self.role == Role.SIDECAR and self.service:
            return f"service/{self.service}"
        return None


@dataclass(frozen=True, slots=True)
class Proxy:
    """One connected Envoy: its node id, its group, and the address its peers reach it at."""

    node_id: str
    group: ProxyGroup
    address: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # sorted pairs; the auto-registered endpoint's labels
    token: str | None = None  # proves the proxy speaks for its service or gateway

    @property
    def subject(self) -> str | None:
        """The identity it claims: "service/<name>" or "gateway/<name>"."""
        return self.group.subject

    @property
    def role(self) -> Role:
        return self.group.role


def _port(meta: Mapping[str, object], key: str) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"node metadata meshplane.{key} is missing")
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"node metadata meshplane.{key} is not a port: {value!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"node metadata meshplane.{key} is not a port: {value!r}")
    return port


def _text(meta: Mapping[str, object], key: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"node metadata meshplane.{key} is missing")
    return value


def _labels(meta: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ValueError("node metadata meshplane.labels must map strings to strings")
    return tuple(sorted(labels.items()))


def _zone(meta: Mapping[str, object]) -> str | None:
    zone = meta.get("zone")
    if zone is None or zone == "":
        return None
    if not isinstance(zone, str):
        raise ValueError("node metadata meshplane.zone must be a string")
    return zone


def proxy_from_node(node_id: str, metadata: Mapping[str, object]) -> Proxy:
    """Read a proxy's identity from its node id and node metadata (as plain JSON values).

    Raises ValueError naming the missing or bad metadata key.
    """
    if not node_id:
        raise ValueError("node.id is empty")
    meta = metadata.get("meshplane")
    if not isinstance(meta, Mapping):
        raise ValueError("node metadata has no 'meshplane' section; use `meshplane bootstrap`")
    role = meta.get("role")
    token = meta.get("token") if isinstance(meta.get("token"), str) else None
    zone = _zone(meta)
    admin = _port(meta, "admin_port") if meta.get("admin_port") is not None else None
    if role == Role.GATEWAY:
        group = ProxyGroup(
            Role.GATEWAY, gateway=_text(meta, "gateway"), zone=zone, admin_port=admin
        )
        return Proxy(node_id, group, token=token)
    if role == Role.SIDECAR:
        group = ProxyGroup(
            Role.SIDECAR,
            service=_text(meta, "service"),
            inbound_port=_port(meta, "inbound_port"),
            app_port=_port(meta, "app_port"),
            outbound_port=_port(meta, "outbound_port"),
            zone=zone,
            admin_port=admin,
        )
        address = meta.get("address")
        return Proxy(
            node_id,
            group,
            address if isinstance(address, str) and address else None,
            _labels(meta),
            token,
        )
    raise ValueError(f"node metadata meshplane.role must be 'gateway' or 'sidecar', not {role!r}")
