"""A real gRPC ADS client that speaks like Envoy (node on the first request, ACK by nonce).

Used where a real Envoy would be too coarse to observe the protocol: exact responses, nonces,
NACKs, several streams per node.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from google.protobuf import json_format, struct_pb2


def node(node_id: str, meshplane: dict[str, Any]) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    json_format.ParseDict({"meshplane": meshplane}, metadata)
    return base_pb2.Node(
        id=node_id,
        cluster=str(meshplane.get("service") or meshplane.get("gateway")),
        metadata=metadata,
    )


def gateway_node(node_id: str, gateway: str) -> base_pb2.Node:
    return node(node_id, {"role": "gateway", "gateway": gateway})


def sidecar_node(node_id: str, service: str, token: str) -> base_pb2.Node:
    """A sidecar of `service` on the usual ports, with its node token."""
    meta = {
        "role": "sidecar",
        "service": service,
        "inbound_port": 15006,
        "app_port": 8080,
        "outbound_port": 15001,
        "token": token,
    }
    return node(node_id, meta)


class AdsClient:
    """One ADS stream, SotW or delta. Use as an async context manager."""

    def __init__(
        self, port: int, node_msg: base_pb2.Node, *, delta: bool = False, host: str = "127.0.0.1"
    ) -> None:
        self._target = f"{host}:{port}"
        self._node = node_msg
        self._delta = delta
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._first = True
        self.responses: asyncio.Queue[Any] = asyncio.Queue()
        self.last_nonce = ""  # nonce of the newest response received
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AdsClient:
        self._channel = grpc.aio.insecure_channel(self._target)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        method = stub.DeltaAggregatedResources if self._delta else stub.StreamAggregatedResources
        self._call = method(self._requests())
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await self._reader
        if self._channel is not None:
            await self._channel.close()

    async def _requests(self) -> Any:
        while True:
            yield await self._outbox.get()

    async def _read(self) -> None:
        try:
            async for response in self._call:
                self.responses.put_nowait(response)
        except grpc.aio.AioRpcError as exc:
            self.responses.put_nowait(exc)

    def _with_node(self, request: Any) -> Any:
        if self._first:
            request.node.CopyFrom(self._node)
            self._first = False
        return request

    def send(self, request: DiscoveryRequest | DeltaDiscoveryRequest) -> None:
        self._outbox.put_nowait(self._with_node(request))

    def request(
        self, type_url: str, names: list[str] | None = None, *, version: str = "", nonce: str = ""
    ) -> None:
        self.send(
            DiscoveryRequest(
                type_url=type_url,
                resource_names=names or [],
                version_info=version,
                response_nonce=nonce,
            )
        )

    def subscribe(
        self,
        type_url: str,
        names: list[str] | None = None,
        *,
        initial: dict[str, str] | None = None,
    ) -> None:
        self.send(
            DeltaDiscoveryRequest(
                type_url=type_url,
                resource_names_subscribe=names or [],
                initial_resource_versions=initial or {},
            )
        )

    async def recv(self, timeout: float = 5.0) -> Any:
        item = await asyncio.wait_for(self.responses.get(), timeout)
        if isinstance(item, Exception):
            raise item
        self.last_nonce = item.nonce
        return item

    async def nothing_within(self, timeout: float = 0.3) -> bool:
        """True when no response arrives within `timeout` (the protocol's "send nothing")."""
        try:
            await asyncio.wait_for(self.responses.get(), timeout)
        except TimeoutError:
            return True
        return False

    def ack(self, response: DiscoveryResponse, names: list[str] | None = None) -> None:
        self.request(response.type_url, names, version=response.version_info, nonce=response.nonce)

    def nack(
        self,
        response: DiscoveryResponse,
        message: str,
        names: list[str] | None = None,
        version: str = "",
    ) -> None:
        request = DiscoveryRequest(
            type_url=response.type_url,
            resource_names=names or [],
            version_info=version,
            response_nonce=response.nonce,
        )
        request.error_detail.message = message
        self.send(request)

    def delta_ack(self, response: DeltaDiscoveryResponse) -> None:
        self.send(DeltaDiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce))
