"""A resource Envoy rejects shows as a NACK in the API and is not resent in a loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import Mesh, Poison
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


async def test_rejected_cluster_is_reported_and_not_resent(
    poisoned: tuple[Mesh, Poison], backends: Callable[[str], HttpBackend]
) -> None:
    mesh, poison = poisoned
    web = backends("web")
    port = free_port()
    await mesh.put("services", "web", {})
    await mesh.put(
        "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
    )
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    await mesh.put("routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    bootstrap = await mesh.bootstrap(
        role="gateway", gateway="edge", node_id="edge-1", admin_port=free_port()
    )
    url = f"http://127.0.0.1:{port}/"
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url, lambda r: answered_by(r) == "web")
        poison.armed = True
        # A change to web's settings rebuilds its cluster, now poisoned.
        await mesh.put("services", "web", {"connect_timeout": "3s"})

        async def rejected() -> bool:
            return (await envoy.stats()).get("cluster_manager.cds.update_rejected", 0) >= 1

        await envoy.wait_for(rejected)
        (proxy,) = await mesh.proxies()
        clusters = next(t for t in proxy["types"] if t["type"] == "clusters")
        assert clusters["last_nack"] is not None
        assert "positive duration" in clusters["last_nack"]["error"]
        assert clusters["sent_version"] != clusters["acked_version"]

        # Not resent in a loop: the counters stay put while nothing changes.
        before = await envoy.stats()
        await asyncio.sleep(0.5)
        after = await envoy.stats()
        for counter in (
            "cluster_manager.cds.update_rejected",
            "cluster_manager.cds.update_attempt",
        ):
            assert after[counter] == before[counter], counter
        assert answered_by(await _get(url)) == "web"  # still serving the last good config
        metrics = (await mesh.http.get("/metrics")).text
        assert 'meshplane_xds_nacks_total{type="clusters"} 1.0' in metrics

        poison.armed = False
        await mesh.put("services", "web", {"connect_timeout": "2s"})

        async def accepted() -> bool:
            (p,) = await mesh.proxies()
            c = next(t for t in p["types"] if t["type"] == "clusters")
            return bool(c["sent_version"] == c["acked_version"])

        await envoy.wait_for(accepted)


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.get(url)
