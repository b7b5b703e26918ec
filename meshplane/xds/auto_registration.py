"""Sidecar auto-registration: a connected sidecar is an endpoint of its service.

A sidecar that connects becomes an endpoint of its service (its address and inbound port).
When its node's last stream closes it is removed after a grace period, so a quick reconnect (a
control-plane restart, an Envoy hot restart) does not churn the endpoint set. Endpoints written
through the API are never touched. While the store is unreachable, a registration (or removal)
waits and tries again for as long as it is still wanted; the store reports the outage itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from meshplane.errors import MeshplaneError
from meshplane.model import EndpointSpec, Proxy, Role, ServiceSpec
from meshplane.xds.store_port import EndpointRegistrar, when_reachable
from meshplane.xds.streams import StreamHandle

__all__ = ["AutoRegistration", "auto_endpoint_name"]

log = logging.getLogger(__name__)

_INVALID = re.compile(r"[^a-z0-9.-]+")


def auto_endpoint_name(node_id: str) -> str:
    """A valid resource name derived from a node id (stable, so a reconnect reuses it)."""
    cleaned = _INVALID.sub("-", node_id.lower()).strip("-.")
    if cleaned and cleaned == node_id and len(cleaned) <= 63:
        return cleaned
    digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
    return f"{cleaned[:54].strip('-.') or 'node'}-{digest}"


class AutoRegistration:
    """Registers sidecars as their streams open, removes them a grace period after the last
    closes. `connected` tells whether a node still has an open stream (the stream table's)."""

    def __init__(
        self,
        registrar: EndpointRegistrar | None,
        connected: Callable[[str], bool],
        grace_seconds: float = 5.0,
    ) -> None:
        self._registrar = registrar
        self._connected = connected
        self._grace = grace_seconds
        self._removals: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()  # set by aclose: writes waiting for the store give up

    def opened(self, handle: StreamHandle) -> None:
        """A stream opened: a sidecar is (still) an endpoint."""
        proxy = handle.proxy
        if proxy is not None and proxy.role == Role.SIDECAR:
            self._cancel_removal(handle.node_id)
            self._spawn(self._register(proxy))

    def closed(self, handle: StreamHandle) -> None:
        """A stream closed: once a sidecar's node has none left, remove it after the grace."""
        proxy, node_id = handle.proxy, handle.node_id
        if proxy is None or proxy.role != Role.SIDECAR or self._connected(node_id):
            return
        loop = asyncio.get_running_loop()
        self._removals[node_id] = loop.call_later(
            self._grace, lambda: self._spawn(self._deregister(node_id))
        )

    async def aclose(self) -> None:
        """Cancel pending removals and wait for registration writes in flight."""
        self._closing.set()
        for timer in self._removals.values():
            timer.cancel()
        self._removals.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _cancel_removal(self, node_id: str) -> None:
        timer = self._removals.pop(node_id, None)
        if timer is not None:
            timer.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register(self, proxy: Proxy) -> None:
        group = proxy.group
        if self._registrar is None or group.service is None or group.inbound_port is None:
            return
        spec = EndpointSpec(
            service=group.service,
            address=proxy.address or "127.0.0.1",
            port=group.inbound_port,
            labels=dict(proxy.labels),
            zone=group.zone,
            sidecar=True,
        )
        registrar, name = self._registrar, auto_endpoint_name(proxy.node_id)
        try:
            created = await when_reachable(
                lambda: registrar.register(name, spec, ServiceSpec()),
                wanted=lambda: self._connected(proxy.node_id),
                stop=self._closing,
            )
        except MeshplaneError as exc:
            # Refused by the mesh's rules (e.g. its service is stored but no longer validates):
            # the operator's to fix, one line each time the sidecar connects.
            log.warning("auto-registration refused node=%s: %s", proxy.node_id, exc)
            return
        except Exception:
            log.exception("auto-registration failed node=%s", proxy.node_id)
            return
        if created is False:
            log.info(
                "auto-registration skipped node=%s: endpoint managed by the API", proxy.node_id
            )

    async def _deregister(self, node_id: str) -> None:
        self._removals.pop(node_id, None)
        if self._registrar is None or self._connected(node_id):
            return
        registrar, name = self._registrar, auto_endpoint_name(node_id)
        try:
            await when_reachable(
                lambda: registrar.deregister(name),
                wanted=lambda: not self._connected(node_id),
                stop=self._closing,
            )
        except Exception:
            log.exception("auto-deregistration failed node=%s", node_id)
