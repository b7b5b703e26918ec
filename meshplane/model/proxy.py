"""Who is asking for config: a proxy's identity as its bootstrap declared it.

`model.node.proxy_from_node` reads it from the `meshplane` struct of the node metadata. Everything
that shapes a proxy's config except its node id is its `group`: proxies in one group are sent the
same resources, so translation runs once per group.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from meshplane.model.identity import Subject

__all__ = ["Proxy", "ProxyGroup", "Role"]


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
    # (service, port): the sidecar's app reaches tcp service `service` on 127.0.0.1:`port`
    # instead of the service's own mesh port; sorted.
    tcp_ports: tuple[tuple[str, int], ...] = ()

    @property
    def subject(self) -> str | None:
        """The text of the identity proxies of this group speak for (see `Subject`)."""
        if self.role == Role.GATEWAY and self.gateway:
            return Subject.gateway(self.gateway).text
        if self.role == Role.SIDECAR and self.service:
            return Subject.service(self.service).text
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
        """The text of the identity it claims (see `Subject`)."""
        return self.group.subject

    @property
    def role(self) -> Role:
        return self.group.role
