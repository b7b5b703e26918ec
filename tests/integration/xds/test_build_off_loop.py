"""A build runs off the event loop: while one is under way, the REST API answers and xDS streams
are served; what connected meanwhile is brought up to the build's revision once it ends.

A test hook holds the build in its worker thread until the test lets it go, so "meanwhile" is
certain, not a matter of timing: had the build run on the event loop, nothing below could
happen until it was released.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from envoy.config.cluster.v3 import cluster_pb2

from meshplane.serve import ControlPlane
from meshplane.xds.type_urls import CLUSTER
from tests.e2e.conftest import make_settings, running_mesh
from tests.support.ads_client import AdsClient, sidecar_node
from tests.support.held_build import HeldBuild
from tests.support.tokens import node_token


async def _sidecar(plane: ControlPlane, service: str) -> AdsClient:
    assert plane.store is not None
    token = await node_token(plane.store, f"service/{service}")
    return AdsClient(plane.xds_port, sidecar_node(f"{service}-1", service, token))


async def _clusters(client: AdsClient) -> set[str]:
    """The services of the next clusters response (ACKed): its cluster names but the inbound."""
    response = await client.recv(timeout=10)
    assert response.type_url == CLUSTER
    client.ack(response)
    names = {cluster_pb2.Cluster.FromString(r.value).name for r in response.resources}
    return {name for name in names if not name.startswith("inbound|")}


async def test_the_api_and_streams_are_served_while_a_build_runs(tmp_path: Path) -> None:
    held = HeldBuild()
    async with running_mesh(make_settings(tmp_path), hook=held) as mesh:
        plane, http = mesh.plane, mesh.http
        assert plane is not None
        for service in ("web", "api"):
            assert (await http.put(f"/api/v1/services/{service}", json={"spec": {}})).is_success
        async with await _sidecar(plane, "web") as web:
            web.request(CLUSTER)
            assert await _clusters(web) == {"web", "api"}

            held.armed = True
            put = await http.put("/api/v1/services/billing", json={"spec": {}})
            assert put.status_code == 201
            assert await asyncio.to_thread(held.holding.wait, 10), "the build never started"

            async with asyncio.timeout(1):
                answer = await http.get("/api/v1/services/web")
            assert answer.status_code == 200
            async with await _sidecar(plane, "api") as api:  # another group, new meanwhile
                api.request(CLUSTER)
                assert await _clusters(api) == {"web", "api"}  # the last build
                assert held.holding.is_set()  # all of it while the build was held

                held.released.set()
                assert await _clusters(web) == {"web", "api", "billing"}
                assert await _clusters(api) == {"web", "api", "billing"}


async def test_the_api_answers_while_the_control_planes_loop_is_busy(tmp_path: Path) -> None:
    """Pushes to many streams after a full rebuild keep the control plane's loop busy; the API
    has a loop of its own. Here the control plane's loop is blocked outright until a read made
    from another thread has its answer: on a shared loop that answer could never come."""
    async with running_mesh(make_settings(tmp_path)) as mesh:
        assert (await mesh.http.put("/api/v1/services/web", json={"spec": {}})).is_success
        answers: list[int] = []
        answered = threading.Event()

        def read() -> None:
            headers = dict(mesh.http.headers)
            with httpx.Client(base_url=str(mesh.http.base_url), headers=headers) as client:
                answers.append(client.get("/api/v1/services/web", timeout=10).status_code)
                answered.set()
                # These two wait for the control plane's loop (see api/core_loop.py): they are
                # answered once it is free again.
                for path in ("/api/v1/proxies", "/metrics"):
                    answers.append(client.get(path, timeout=10).status_code)

        reader = threading.Thread(target=read)
        reader.start()
        # Blocks this loop, the control plane's: no await until the reader has its answer.
        on_time = answered.wait(timeout=30)
        await asyncio.to_thread(reader.join, 30)
        assert on_time, "the API did not answer while the control plane's loop was busy"
        assert answers == [200, 200, 200]
