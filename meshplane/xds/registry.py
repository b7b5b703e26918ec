"""Connected streams, for the proxy status API, and sidecar auto-registration as endpoints.

A sidecar that connects becomes an endpoint of its service (its address and inbound port).
When its last stream closes it is removed after a grace period, so a quick reconnect (a
control-plane restart, an Envoy hot restart) does not churn the endpoint set. Endpoints written
through the API are never touched. While the store is unreachable, a registration (or removal)
waits and tries again for as long as it is still wanted; the store reports the outage itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import json_format

from meshplane.errors import MeshplaneError
from meshplane.metrics import Metrics
from meshplane.model import EndpointSpec, Proxy, Role, ServiceSpec
from meshplane.xds.resources import CachedResource
from meshplane.xds.status import ProxyStatus
from meshplane.xds.store_port import EndpointRegistrar, when_reachable
from meshplane.xds.stream_state import StreamState, utc_now
from meshplane.xds.translate.transport_sockets import IDENTITY_SECRET, TRUST_SECRET
from meshplane.xds.type_urls import PUSH_ORDER, SECRET, SHORT_NAMES

__all__ = ["ProxyRegistry", "StreamHandle", "auto_endpoint_name"]

log = logging.getLogger(__name__)

_INVALID = re.compile(r"[^a-z0-9.-]+")
OWN_SECRETS = frozenset({IDENTITY_SECRET, TRUST_SECRET})


def auto_endpoint_name(node_id: str) -> str:
    """A valid resource name derived from a node id (stable, so a reconnect reuses it)."""
    cleaned = _INVALID.sub("-", node_id.lower()).strip("-.")
    if cleaned and cleaned == node_id and len(cleaned) <= 63:
        return cleaned
    digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
    return f"{cleaned[:54].strip('-.') or 'node'}-{digest}"


@dataclass(eq=False)
class StreamHandle:
    """One open ADS stream as the registry sees it."""

    stream_id: int
    proxy: Proxy | None
    node_id: str
    transport: str
    state: StreamState
    connected_since: datetime = field(default_factory=utc_now)
    denied_secrets: set[str] = field(default_factory=set)


class ProxyRegistry:
    """Implements StatusSource for the API and runs auto-registration."""

    def __init__(
        self,
        registrar: EndpointRegistrar | None,
        grace_seconds: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._registrar = registrar
        self._grace = grace_seconds
        self._streams: dict[int, StreamHandle] = {}
        self._ids = itertools.count(1)
        self._removals: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()  # set by aclose: writes waiting for the store give up
        self.refused = 0  # streams refused for a missing or wrong node token
        self.denied_secret_requests = 0  # names asked for that are not the proxy's own

    def open(
        self, proxy: Proxy | None, node_id: str, transport: str, state: StreamState
    ) -> StreamHandle:
        handle = StreamHandle(next(self._ids), proxy, node_id, transport, state)
        self._streams[handle.stream_id] = handle
        log.info("stream open node=%s stream=%d transport=%s", node_id, handle.stream_id, transport)
        if proxy is not None and proxy.role == Role.SIDECAR:
            self._cancel_removal(node_id)
            self._spawn(self._register(proxy))
        return handle

    def close(self, handle: StreamHandle) -> None:
        self._streams.pop(handle.stream_id, None)
        log.info("stream closed node=%s stream=%d", handle.node_id, handle.stream_id)
        proxy = handle.proxy
        if proxy is None or proxy.role != Role.SIDECAR:
            return
        if any(h.node_id == handle.node_id for h in self._streams.values()):
            return
        loop = asyncio.get_running_loop()
        self._removals[handle.node_id] = loop.call_later(
            self._grace, lambda: self._spawn(self._deregister(handle.node_id))
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

    def _spawn(self, coro: Any) -> None:
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

    def _connected(self, node_id: str) -> bool:
        return any(h.node_id == node_id for h in self._streams.values())

    def check_secret_names(self, handle: StreamHandle) -> None:
        """Log and count secret names a proxy asks for that are not its own (never served).

        A proxy's own secrets have fixed names (its identity may just not be issued yet); any
        other name, such as another service's SPIFFE ID, is an attempt to get what is not its.
        """
        record = handle.state.types.get(SECRET)
        snapshot = handle.state.snapshot
        if record is None or snapshot is None:
            return
        for name in sorted(record.names - OWN_SECRETS - handle.denied_secrets):
            handle.denied_secrets.add(name)
            self.denied_secret_requests += 1
            if self._metrics is not None:
                self._metrics.denied_secrets.inc()
            log.warning(
                "secret denied node=%s stream=%d subject=%s name=%s",
                handle.node_id,
                handle.stream_id,
                handle.proxy.subject if handle.proxy else None,
                name,
            )

    def secrets_converged(self, identity_version: int) -> bool:
        """True when every stream that takes secrets holds those of at least `identity_version`."""
        for handle in self._streams.values():
            state = handle.state
            record = state.types.get(SECRET)
            if record is None or state.snapshot is None:
                continue
            if state.snapshot.identity_version < identity_version or record.pending:
                return False
            wanted = state.snapshot.of(SECRET)
            for name in record.names:
                want, have = wanted.get(name), record.acked.get(name)
                if want is not None and (have is None or have.version != want.version):
                    return False
        return True

    # StatusSource

    def proxies(self) -> list[ProxyStatus]:
        handles = sorted(self._streams.values(), key=lambda h: (h.node_id, h.stream_id))
        return [_status(h) for h in handles]

    def proxy_config(self, node_id: str) -> Mapping[str, list[dict[str, Any]]] | None:
        handles = [h for h in self._streams.values() if h.node_id == node_id]
        if not handles:
            return None
        state = handles[0].state
        out: dict[str, list[dict[str, Any]]] = {}
        for type_url in PUSH_ORDER:
            record = state.types.get(type_url)
            if record is not None:
                out[SHORT_NAMES[type_url]] = [_as_json(r) for _, r in sorted(record.coming.items())]
        return out


def _as_json(resource: CachedResource) -> dict[str, Any]:
    body = (
        json_format.MessageToDict(resource.message, preserving_proto_field_name=True)
        if resource.message is not None
        else None
    )
    if body is not None and resource.type_url == SECRET and "tls_certificate" in body:
        body["tls_certificate"]["private_key"] = "[redacted]"  # the API never shows a key
    return {"name": resource.name, "version": resource.version, "resource": body}


def _status(handle: StreamHandle) -> ProxyStatus:
    group = handle.proxy.group if handle.proxy else None
    return ProxyStatus(
        node_id=handle.node_id,
        role=str(group.role) if group else None,
        gateway=group.gateway if group else None,
        service=group.service if group else None,
        address=handle.proxy.address if handle.proxy else None,
        transport=handle.transport,
        stream_id=handle.stream_id,
        connected_since=handle.connected_since,
        types=handle.state.statuses(),
        denied_secrets=len(handle.denied_secrets),
    )
