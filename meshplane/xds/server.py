"""The ADS gRPC server: a thin servicer that wires streams to the cache and the registry.

Each RPC runs one loop: identify the node from its first request, watch its group's snapshots,
and alternate between applying requests and sending what the protocol state says is due. Replies
are pre-encoded bytes (see wire.py), so the method handlers are registered with an identity
response serializer instead of the generated servicer base class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeAlias

import grpc
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest
from google.protobuf import json_format

from meshplane.metrics import Metrics
from meshplane.model import Proxy, Role, proxy_from_node
from meshplane.xds.builder import SnapshotBuilder
from meshplane.xds.cache import ResourceCache
from meshplane.xds.delta import DeltaState
from meshplane.xds.node_tokens import NodeTokens, Refused
from meshplane.xds.registry import ProxyRegistry
from meshplane.xds.resources import Snapshot
from meshplane.xds.response_bodies import ResponseBodies
from meshplane.xds.sotw import SotwState
from meshplane.xds.stream_state import StreamState
from meshplane.xds.streams import StreamHandle
from meshplane.xds.type_urls import SECRET, SHORT_NAMES

__all__ = ["ADS_SERVICE", "SERVER_OPTIONS", "AdsServer", "start_xds_server"]

log = logging.getLogger(__name__)

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
# The gRPC server's channel options: large responses out, Envoy's keepalive pings allowed.
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]
# DiscoveryRequest | DeltaDiscoveryRequest; the generated protobuf classes carry no types.
Request: TypeAlias = Any


class AdsServer:
    """StreamAggregatedResources (state of the world) and DeltaAggregatedResources."""

    def __init__(
        self,
        builder: SnapshotBuilder,
        cache: ResourceCache,
        registry: ProxyRegistry,
        *,
        tokens: NodeTokens | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.registry = registry
        self.refused = 0  # streams refused for a missing or wrong node token
        self._builder = builder
        self._cache = cache
        self._tokens = tokens
        self._bodies = ResponseBodies()  # whole-set response bodies, shared by every stream

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """Every RPC the server exposes (no reflection, no health service): each one reads the
        node from its first request and checks its token before anything is sent."""
        return {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.sotw, request_deserializer=DiscoveryRequest.FromString
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.delta, request_deserializer=DeltaDiscoveryRequest.FromString
            ),
        }

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(ADS_SERVICE, self.methods())

    async def sotw(self, requests: AsyncIterator[DiscoveryRequest], context: Any) -> None:
        await self._serve(SotwState(bodies=self._bodies), "sotw", requests, context)

    async def delta(self, requests: AsyncIterator[DeltaDiscoveryRequest], context: Any) -> None:
        await self._serve(DeltaState(bodies=self._bodies), "delta", requests, context)

    async def _serve(
        self,
        state: SotwState | DeltaState,
        transport: str,
        requests: AsyncIterator[Any],
        context: Any,
    ) -> None:
        await self._builder.ready.wait()
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return
        node_id = first.node.id
        try:
            proxy = _identify(first, context.peer())
        except ValueError as exc:
            log.warning("stream refused node=%s reason=%s", node_id, exc)
            if self.metrics is not None:
                self.metrics.refused_streams.labels("metadata").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return
        unwatch: Callable[[], None] = _nothing
        ended: list[str] = []
        if self._tokens is not None:
            try:
                grant = await self._tokens.admit(proxy.subject, proxy.token)
            except Refused as refused:
                await self._refuse(context, node_id, str(refused))
                return
            unwatch = self._tokens.watch(grant, _ender(ended))
        group = proxy.group
        state.snapshot = self._builder.ensure(group)
        handle = self.registry.open(proxy, node_id, transport, state)
        stream = _Stream(state, context, handle, self)
        self._cache.watch(group, stream.on_snapshot)
        try:
            await stream.serve(first, requests)
        except asyncio.CancelledError:
            if not ended:
                raise
            _uncancel()
            await self._refuse(context, node_id, ended[0])
        finally:
            unwatch()
            self._cache.unwatch(group, stream.on_snapshot)
            stream.stop()
            self.registry.close(handle)

    async def _refuse(self, context: Any, node_id: str, reason: str) -> None:
        """End the stream as UNAUTHENTICATED: its node token does not (or no longer) admit it."""
        log.warning("stream refused node=%s reason=%s", node_id, reason)
        self.refused += 1
        if self.metrics is not None:
            self.metrics.refused_streams.labels("token").inc()
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    async def send(self, context: Any, type_url: str, response: bytes) -> None:
        kind = SHORT_NAMES.get(type_url, "other")
        try:
            await context.write(response)
        except Exception:
            if self.metrics is not None:
                self.metrics.push_errors.labels(kind).inc()
            raise
        if self.metrics is not None:
            self.metrics.pushed(kind)


class _Stream:
    """One RPC: its coroutine reads requests; what is due is sent by one sender at a time.

    After each request the reading coroutine sends what became due itself. A new snapshot,
    which arrives through the cache's callback, starts a sending task only when no send is under
    way; otherwise the send under way is told to look again before it ends, so it carries the
    new snapshot too. No task or queue stands between a request and its answer.
    """

    def __init__(
        self, state: SotwState | DeltaState, context: Any, handle: StreamHandle, server: AdsServer
    ) -> None:
        self._server = server
        self._metrics = server.metrics
        self._registry = server.registry
        self._state = state
        self._context = context
        self._handle = handle
        self._sending = False
        self._changed = False  # a request or snapshot arrived while a send was under way
        self._task: asyncio.Task[None] | None = None
        self._converging: float | None = None  # when the change being caught up to happened

    async def serve(self, first: Request, requests: AsyncIterator[Request]) -> None:
        self._on_request(first)
        await self._send_due()
        async for request in requests:
            self._on_request(request)
            await self._send_due()

    def on_snapshot(self, snapshot: Snapshot) -> None:
        state = self._state
        if state.snapshot is not None and snapshot.revision < state.snapshot.revision:
            return
        state.snapshot = snapshot
        self._converging = self._converging or snapshot.changed_at
        if self._sending:
            self._changed = True
        elif self._task is None or self._task.done():  # else one is about to start: it will see it
            self._task = asyncio.create_task(self._send_after_snapshot())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _on_request(self, request: Request) -> None:
        state, handle = self._state, self._handle
        nacked = _log_request(state, request, handle.node_id, handle.stream_id)
        if nacked and self._metrics is not None:
            self._metrics.nacks.labels(SHORT_NAMES.get(request.type_url, "other")).inc()
        state.on_request(request)
        if request.type_url == SECRET:
            self._registry.check_secret_names(handle)

    async def _send_after_snapshot(self) -> None:
        try:
            await self._send_due()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream is ending; its reading coroutine sees why
            log.debug("push failed node=%s error=%s", self._handle.node_id, exc)

    async def _send_due(self) -> None:
        """Send what is due; while another send is under way, have it look again instead."""
        if self._sending:
            self._changed = True
            return
        self._sending = True
        try:
            while True:
                self._changed = False
                for type_url, response in self._state.typed_responses():
                    await self._server.send(self._context, type_url, response)
                    self._log_push(type_url)
                if not self._changed:  # nothing arrived while sending: all that is due went
                    break
        finally:
            self._sending = False
        self._state.settle()
        if self._converging is not None and self._state.idle:
            if self._metrics is not None:
                self._metrics.convergence_seconds.observe(time.monotonic() - self._converging)
            self._converging = None

    def _log_push(self, type_url: str) -> None:
        """A debug line: at info, a line per push per proxy cost about 1 ms of CPU per cold
        connect here. What each proxy holds is in GET /api/v1/proxies; NACKs are warnings."""
        if log.isEnabledFor(logging.DEBUG):
            record = self._state.types[type_url]
            log.debug(
                "push node=%s stream=%d type=%s version=%s nonce=%s",
                self._handle.node_id,
                self._handle.stream_id,
                SHORT_NAMES.get(type_url, type_url),
                record.sent_version,
                record.nonce,
            )


def _ender(ended: list[str]) -> Callable[[str], None]:
    """A callback that ends the calling RPC's task, noting why in `ended`."""
    task = asyncio.current_task()
    assert task is not None

    def end(reason: str) -> None:
        ended.append(reason)
        task.cancel()

    return end


def _nothing() -> None:
    pass


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _identify(first: Request, peer: str) -> Proxy:
    """Read the proxy from its node; a sidecar that names no address gets its peer address."""
    metadata = json_format.MessageToDict(first.node.metadata)
    proxy = proxy_from_node(first.node.id, metadata)
    if proxy.address is None and proxy.role == Role.SIDECAR:
        proxy = replace(proxy, address=peer_address(peer))
    return proxy


def peer_address(peer: str) -> str | None:
    """The IP in a gRPC peer string: "ipv4:10.0.0.7:5123", "ipv6:[::1]:5123"."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or None
    return None


def _log_request(state: StreamState, request: Request, node_id: str, stream_id: int) -> bool:
    """Log an ACK or NACK of the response in flight; True for a NACK."""
    record = state.types.get(request.type_url)
    if record is None or not request.response_nonce or request.response_nonce != record.nonce:
        return False
    kind = SHORT_NAMES.get(request.type_url, request.type_url)
    if request.HasField("error_detail"):
        log.warning(
            "nack node=%s stream=%d type=%s version=%s error=%s",
            node_id,
            stream_id,
            kind,
            record.sent_version,
            request.error_detail.message,
        )
        return True
    elif record.pending:
        log.debug(
            "ack node=%s stream=%d type=%s version=%s",
            node_id,
            stream_id,
            kind,
            record.sent_version,
        )
    return False


def _dynamic_credentials(tls: Callable[[], tuple[bytes, bytes]]) -> grpc.ServerCredentials:
    served: list[tuple[bytes, bytes]] = [tls()]

    def fetch() -> Any:
        current = tls()
        if current == served[0]:
            return None  # unchanged: keep the configuration gRPC already has
        served[0] = current
        return grpc.ssl_server_certificate_configuration([current])

    return grpc.dynamic_ssl_server_credentials(
        grpc.ssl_server_certificate_configuration([served[0]]), fetch
    )


async def start_xds_server(
    server: AdsServer,
    host: str,
    port: int,
    *,
    tls: Callable[[], tuple[bytes, bytes]] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start serving ADS on host:port (0 picks a free port); returns the server and its port.

    `tls` returns the current (key PEM, certificate chain PEM); it is asked again on every new
    connection, so a renewed server certificate is used without a restart.
    """
    grpc_server = grpc.aio.server(options=SERVER_OPTIONS)
    grpc_server.add_generic_rpc_handlers((server.handler(),))
    if tls is None:
        bound = grpc_server.add_insecure_port(f"{host}:{port}")
    else:
        bound = grpc_server.add_secure_port(f"{host}:{port}", _dynamic_credentials(tls))
    await grpc_server.start()
    log.info("xds listening host=%s port=%d tls=%s", host, bound, tls is not None)
    return grpc_server, bound
