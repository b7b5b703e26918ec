"""What the API may ask the xDS side about connected proxies ("why is my route not applied").

Plain frozen records, filled by the streams and read by the API; the API never touches a stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["NackRecord", "ProxyStatus", "StatusSource", "TypeStatus"]


@dataclass(frozen=True, slots=True)
class NackRecord:
    """Envoy rejected `version` of a type with `error` (its error_detail message)."""

    version: str
    error: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """Where one resource type stands on one stream."""

    type: str  # short name: "clusters", "endpoints", "listeners", "routes", "secrets"
    sent_version: str | None
    acked_version: str | None
    resources: int  # how many resources of this type the proxy currently holds per our record
    last_nack: NackRecord | None


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """One connected xDS stream (an Envoy normally has one ADS stream)."""

    node_id: str
    role: str | None  # "gateway" | "sidecar" | None when the node metadata is not ours
    gateway: str | None
    service: str | None
    address: str | None
    transport: str  # "sotw" | "delta"
    stream_id: int
    connected_since: datetime
    types: Sequence[TypeStatus]
    denied_secrets: int = 0  # secret names asked for that are not the proxy's own
    revision: int | None = None  # the mesh revision whose configuration it holds whole


class StatusSource(Protocol):
    """Implemented by the xDS server; consumed by the API's proxies routes."""

    def proxies(self) -> list[ProxyStatus]:
        """Every open stream, ordered by node id then stream id."""
        ...

    def proxy_config(self, node_id: str) -> Mapping[str, list[dict[str, Any]]] | None:
        """Resources served to `node_id`, by short type name, as JSON; None if unknown."""
        ...
