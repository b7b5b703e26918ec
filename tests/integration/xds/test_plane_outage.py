"""The whole control plane (real HTTP, real ADS streams) through a PostgreSQL outage: the API
answers 503, proxies keep being served from memory, a sidecar that connects meanwhile is
registered once the database is back, and the log has one warning and no traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from meshplane.serve import ControlPlane
from meshplane.xds.type_urls import CLUSTER
from tests.e2e.conftest import make_settings
from tests.support.ads_client import AdsClient, node
from tests.support.postgres_cluster import private_cluster
from tests.support.tokens import bearer

pytestmark = pytest.mark.postgres


def _sidecar(plane: ControlPlane, node_id: str, service: str) -> AdsClient:
    assert plane.box is not None
    meta = {
        "role": "sidecar",
        "service": service,
        "inbound_port": 15006,
        "app_port": 8080,
        "outbound_port": 15001,
        "token": plane.box.node_token(f"service/{service}"),
    }
    return AdsClient(plane.xds_port, node(node_id, meta))


async def _served_clusters(client: AdsClient) -> int:
    """Ask for every cluster (as a fresh subscription would) and ACK; how many came."""
    client.request(CLUSTER)
    response = await client.recv()
    client.ack(response)
    return len(response.resources)


async def test_the_plane_serves_through_an_outage_and_catches_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    with private_cluster() as cluster:
        settings = make_settings(tmp_path, database_url=cluster.url)
        async with (
            ControlPlane(settings) as plane,
            httpx.AsyncClient(
                base_url=plane.api_url, trust_env=False, timeout=10, headers=bearer()
            ) as http,
        ):
            put = await http.put("/api/v1/services/a", json={"spec": {}})
            assert put.status_code == 201
            async with _sidecar(plane, "a-1", "a") as old:
                assert await _served_clusters(old)

                await cluster.stop()
                refused = await http.put("/api/v1/services/c", json={"spec": {}})
                assert refused.status_code == 503
                assert refused.headers["Retry-After"]
                assert (await http.get("/readyz")).status_code == 503
                assert (await http.get("/healthz")).status_code == 200
                server = await http.get("/api/v1/server")
                assert server.json()["database"] == "unreachable"
                # A sidecar connecting now is served from memory; its registration waits.
                async with _sidecar(plane, "b-1", "b") as new:
                    assert await _served_clusters(new)

                    await cluster.start()
                    async with asyncio.timeout(10):
                        while (await http.get("/api/v1/endpoints/b-1")).status_code != 200:
                            await asyncio.sleep(0.05)
                    put = await http.put("/api/v1/services/c", json={"spec": {}})
                    assert put.status_code == 201
    unreachable = [r for r in caplog.records if "database unreachable since" in r.getMessage()]
    assert len(unreachable) == 1
    assert [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert all(r.exc_info is None for r in caplog.records), [
        r.getMessage() for r in caplog.records if r.exc_info
    ]
