"""The ADS server over a real gRPC channel: both protocols, pushes on commit, auto-registration."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2

from meshplane.model import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.integration.xds.conftest import XdsPlane
from tests.support.ads_client import AdsClient, gateway_node, node


async def _synced(plane: XdsPlane) -> None:
    """Wait until the builder has caught up with every commit (it follows the feed on its own)."""
    async with asyncio.timeout(5):
        while plane.builder.mesh.revision < await plane.store.revision():
            await asyncio.sleep(0.005)


async def _mesh(plane: XdsPlane) -> None:
    store = plane.store
    await store.put("services", "web", ServiceSpec())
    await store.put(
        "endpoints", "web-1", EndpointSpec(service="web", address="127.0.0.1", port=9001)
    )
    await store.put("gateways", "edge", GatewaySpec(port=10000))
    await store.put(
        "routes",
        "all",
        RouteSpec.model_validate({"gateways": ["edge"], "destinations": [{"service": "web"}]}),
    )
    await _synced(plane)


def _names(response: Any) -> list[str]:
    return [cluster_pb2.Cluster.FromString(r.value).name for r in response.resources]


async def _connect_sotw(client: AdsClient) -> dict[str, object]:
    held = {}
    client.request(CLUSTER)
    held[CLUSTER] = cds = await client.recv()
    client.ack(cds)
    client.request(ENDPOINT, ["web"], nonce="")
    held[ENDPOINT] = eds = await client.recv()
    client.ack(eds, ["web"])
    client.request(LISTENER)
    held[LISTENER] = lds = await client.recv()
    client.ack(lds)
    client.request(ROUTE, ["gateway:edge"])
    held[ROUTE] = rds = await client.recv()
    client.ack(rds, ["gateway:edge"])
    return held


async def test_sotw_initial_fetch_and_push_on_commit(xds: XdsPlane) -> None:
    await _mesh(xds)
    async with AdsClient(xds.port, gateway_node("gw-1", "edge")) as client:
        held = await _connect_sotw(client)
        assert _names(held[CLUSTER]) == ["web"]
        assert await client.nothing_within(0.2)

        await xds.store.put(
            "routes",
            "all",
            RouteSpec.model_validate(
                {
                    "gateways": ["edge"],
                    "match": {"prefix": "/v2"},
                    "destinations": [{"service": "web"}],
                }
            ),
        )
        pushed = await client.recv()
        assert pushed.type_url == ROUTE
        config = route_pb2.RouteConfiguration.FromString(pushed.resources[0].value)
        assert config.virtual_hosts[0].routes[0].match.prefix == "/v2"
        client.ack(pushed, ["gateway:edge"])
        assert await client.nothing_within(0.2)

        (status,) = xds.registry.proxies()
        types = {t.type: t for t in status.types}
        assert types["routes"].acked_version == pushed.version_info


async def test_nack_is_visible_and_not_resent(xds: XdsPlane) -> None:
    await _mesh(xds)
    async with AdsClient(xds.port, gateway_node("gw-1", "edge")) as client:
        held = await _connect_sotw(client)
        await xds.store.put("services", "web", ServiceSpec(connect_timeout=2))
        pushed = await client.recv()
        assert pushed.type_url == CLUSTER
        # Envoy warms an updated EDS cluster anew: its endpoints follow, unchanged.
        again = await client.recv()
        assert again.type_url == ENDPOINT
        assert again.version_info == held[ENDPOINT].version_info  # type: ignore[attr-defined]
        client.ack(again, ["web"])
        client.nack(pushed, "rejected for test", version=held[CLUSTER].version_info)  # type: ignore[attr-defined]
        assert await client.nothing_within(0.3)
        (status,) = xds.registry.proxies()
        clusters = next(t for t in status.types if t.type == "clusters")
        assert clusters.last_nack is not None
        assert clusters.last_nack.error == "rejected for test"
        assert clusters.acked_version == held[CLUSTER].version_info  # type: ignore[attr-defined]


async def test_pushes_are_logged_at_debug_level_only(
    xds: XdsPlane, caplog: pytest.LogCaptureFixture
) -> None:
    await _mesh(xds)
    for level, expected in ((logging.INFO, 0), (logging.DEBUG, 4)):
        caplog.clear()
        caplog.set_level(level, logger="meshplane.xds.server")
        async with AdsClient(xds.port, gateway_node(f"gw-{level}", "edge")) as client:
            await _connect_sotw(client)
        # Only this stream's pushes: the previous stream's last push may be logged after it closed.
        this_node = f"push node=gw-{level} "
        pushes = [r for r in caplog.records if r.getMessage().startswith(this_node)]
        assert len(pushes) == expected
        assert all(r.levelno == logging.DEBUG for r in pushes)


async def test_two_streams_of_one_node_are_independent(xds: XdsPlane) -> None:
    await _mesh(xds)
    async with (
        AdsClient(xds.port, gateway_node("same", "edge")) as one,
        AdsClient(xds.port, gateway_node("same", "edge")) as two,
    ):
        one.request(CLUSTER)
        two.request(CLUSTER)
        first, second = await one.recv(), await two.recv()
        assert first.version_info == second.version_info
        one.ack(first)
        assert await two.nothing_within(0.1)
        assert len(xds.registry.proxies()) == 2


async def test_delta_wildcard_and_updates(xds: XdsPlane) -> None:
    await _mesh(xds)
    async with AdsClient(xds.port, gateway_node("gw-d", "edge"), delta=True) as client:
        client.subscribe(CLUSTER)
        response = await client.recv()
        assert [r.name for r in response.resources] == ["web"]
        client.delta_ack(response)
        await xds.store.put("services", "api", ServiceSpec(protocol="http2"))
        pushed = await client.recv()
        assert [r.name for r in pushed.resources] == ["api"]
        assert list(pushed.removed_resources) == []
        client.delta_ack(pushed)
        await xds.store.delete("services", "api")
        removed = await client.recv()
        assert list(removed.removed_resources) == ["api"]


async def test_node_without_meshplane_metadata_is_refused(xds: XdsPlane) -> None:
    async with AdsClient(xds.port, node("stranger", {})) as client:
        client.request(CLUSTER)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.recv()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_sidecar_registers_itself_and_leaves_after_grace(xds: XdsPlane) -> None:
    sidecar = node(
        "orders-7",
        {
            "role": "sidecar",
            "service": "orders",
            "address": "127.0.0.1",
            "inbound_port": 15006,
            "app_port": 8080,
            "outbound_port": 15001,
            "labels": {"version": "v2"},
        },
    )
    async with AdsClient(xds.port, sidecar) as client:
        client.request(CLUSTER)
        await client.recv()
        async with asyncio.timeout(5):
            while True:
                revision = await xds.store.revision()
                if endpoints := await xds.store.list("endpoints"):
                    break
                await xds.store.feed.wait_beyond(revision)
        (endpoint,) = endpoints
        assert endpoint.source == "auto"
        assert endpoint.spec == EndpointSpec(
            service="orders",
            address="127.0.0.1",
            port=15006,
            labels={"version": "v2"},
            sidecar=True,
        )
    async with asyncio.timeout(5):
        while True:
            revision = await xds.store.revision()
            if not await xds.store.list("endpoints"):
                break
            await xds.store.feed.wait_beyond(revision)


async def test_api_endpoint_is_never_touched_by_auto_registration(xds: XdsPlane) -> None:
    await xds.store.put("services", "orders", ServiceSpec())
    await xds.store.put(
        "endpoints", "orders-8", EndpointSpec(service="orders", address="10.0.0.1", port=1)
    )
    sidecar = node(
        "orders-8",
        {
            "role": "sidecar",
            "service": "orders",
            "inbound_port": 15006,
            "app_port": 8080,
            "outbound_port": 15001,
        },
    )
    async with AdsClient(xds.port, sidecar) as client:
        client.request(CLUSTER)
        await client.recv()
    await asyncio.sleep(0)  # let the close callback schedule its (suppressed) removal
    endpoint = await xds.store.get("endpoints", "orders-8")
    assert endpoint.source == "api"
    assert endpoint.spec.address == "10.0.0.1"  # type: ignore[attr-defined]
