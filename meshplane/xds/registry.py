"""The connected proxies, as the ADS server reports them and the API and the CA ask about them.

A composition, one delegation per method (like the servicer, it only puts parts together); each
job lives in a module of its own:
- streams.py: the stream table (which streams are open, with their proxy and state);
- auto_registration.py: a connected sidecar is an endpoint of its service;
- secret_audit.py: secret names a proxy asks for that are not its own are logged and counted;
- stream_status.py: what the API shows of the streams (the StatusSource it reads);
- convergence.py: whether every proxy holds an identity version (what a CA rotation waits on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshplane.metrics import Metrics
from meshplane.model import Proxy
from meshplane.xds.auto_registration import AutoRegistration
from meshplane.xds.convergence import secrets_converged
from meshplane.xds.secret_audit import SecretAudit
from meshplane.xds.status import ProxyStatus
from meshplane.xds.store_port import EndpointRegistrar
from meshplane.xds.stream_state import StreamState
from meshplane.xds.stream_status import StreamStatus
from meshplane.xds.streams import StreamHandle, StreamTable

__all__ = ["ProxyRegistry"]


class ProxyRegistry:
    """The stream table, with auto-registration following it; a StatusSource for the API."""

    def __init__(
        self,
        registrar: EndpointRegistrar | None,
        grace_seconds: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.streams = StreamTable()
        self.registration = AutoRegistration(registrar, self.streams.connected, grace_seconds)
        self.audit = SecretAudit(metrics)
        self.status = StreamStatus(self.streams)

    def open(
        self, proxy: Proxy | None, node_id: str, transport: str, state: StreamState
    ) -> StreamHandle:
        handle = self.streams.open(proxy, node_id, transport, state)
        self.registration.opened(handle)
        return handle

    def close(self, handle: StreamHandle) -> None:
        self.streams.close(handle)
        self.registration.closed(handle)

    def register_again(self) -> None:
        """Register every connected sidecar again (writes that change nothing stored, unless
        something was lost): after this replica was cut off from the database long enough to
        count as dead, the leader may have removed their endpoints."""
        for handle in self.streams:
            self.registration.opened(handle)

    async def aclose(self) -> None:
        """Cancel pending removals and wait for registration writes in flight."""
        await self.registration.aclose()

    def check_secret_names(self, handle: StreamHandle) -> None:
        self.audit.check(handle)

    @property
    def denied_secret_requests(self) -> int:
        """Secret names asked for that are not the asking proxy's own (never served)."""
        return self.audit.denied

    async def secrets_converged(self, identity_version: int) -> bool:
        """Whether every stream that takes secrets holds those of at least `identity_version`
        (the CA's `converged`)."""
        return secrets_converged((h.state for h in self.streams), identity_version)

    # StatusSource

    def proxies(self) -> list[ProxyStatus]:
        return self.status.proxies()

    def proxy_config(self, node_id: str) -> Mapping[str, list[dict[str, Any]]] | None:
        return self.status.proxy_config(node_id)
