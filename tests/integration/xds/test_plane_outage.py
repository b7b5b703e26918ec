"""The whole control plane (real HTTP, real ADS streams) through a PostgreSQL outage: the API
answers 503, proxies keep being served from memory, a sidecar that connects meanwhile is
registered once the database is back, and the log has one warning and no traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from meshplane.serve import ControlPlane
from meshplane.xds.node_tokens import POLL_SECONDS
from meshplane.xds.type_urls import CLUSTER
from tests.e2e.conftest import make_settings, running_mesh
from tests.support.ads_client import AdsClient, sidecar_node
from tests.support.postgres_cluster import private_cluster
from tests.support.tokens import node_token

pytestmark = pytest.mark.postgres


async def _sidecar(plane: ControlPlane, node_id: str, service: str) -> AdsClient:
    """A sidecar of `service`, with a node token issued for it (before any outage)."""
    assert plane.store is not None
    token = await node_token(plane.store, f"service/{service}")
    return AdsClient(plane.xds_port, sidecar_node(node_id, service, token))


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
        async with running_mesh(settings) as mesh:
            plane, http = mesh.plane, mesh.http
            assert plane is not None
            put = await http.put("/api/v1/services/a", json={"spec": {}})
            assert put.status_code == 201
            # b's bootstrap is fetched before the outage: the plane learns its token then.
            new_sidecar = await _sidecar(plane, "b-1", "b")
            await asyncio.sleep(3 * POLL_SECONDS)
            async with await _sidecar(plane, "a-1", "a") as old:
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
                async with new_sidecar as new:
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
