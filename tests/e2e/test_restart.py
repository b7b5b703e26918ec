"""The control plane killed and restarted on the same database: Envoy keeps serving, reconnects,
and is not sent anything new, because nothing changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.control_plane import meshplane_serve
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.tokens import bearer
from tests.support.traffic import answered_by, hits, wait_until_served

pytestmark = pytest.mark.e2e

_COUNTERS = (
    "cluster_manager.cds.update_success",
    "listener_manager.lds.update_success",
    "cluster_manager.cds.update_rejected",
    "listener_manager.lds.update_rejected",
)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_restart_keeps_serving_and_does_not_churn(
    tmp_path: Path, backends: Callable[[str], HttpBackend], delta: bool
) -> None:
    web = backends("web")
    api_port, xds_port, gw_port, admin_port = free_ports(4)
    db = f"sqlite:///{tmp_path / 'mesh.db'}"
    url = f"http://127.0.0.1:{gw_port}/"
    async with meshplane_serve(db, api_port, xds_port, tmp_path) as first:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", trust_env=False, headers=bearer()
        ) as http:
            mesh = Mesh(None, http)
            await mesh.put("services", "web", {})
            await mesh.put(
                "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
            )
            await mesh.put("gateways", "edge", {"port": gw_port, "address": "127.0.0.1"})
            await mesh.put(
                "routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]}
            )
            bootstrap = await mesh.bootstrap(
                role="gateway", gateway="edge", delta=delta, admin_port=admin_port
            )
        envoy = EnvoyProcess(bootstrap)
        await envoy.__aenter__()
    try:
        # The control plane is gone (SIGKILL): Envoy keeps serving its last config.
        assert first.returncode is not None
        await wait_until_served(url, lambda r: answered_by(r) == "web")

        async def disconnected() -> bool:
            return (await envoy.stats()).get("control_plane.connected_state") == 0

        await envoy.wait_for(disconnected)
        assert await hits(url, 10) == {"web": 10}
        before = {k: v for k, v in (await envoy.stats()).items() if k in _COUNTERS}

        async with meshplane_serve(db, api_port, xds_port, tmp_path):

            async def reconnected() -> bool:
                return (await envoy.stats()).get("control_plane.connected_state") == 1

            await envoy.wait_for(reconnected, timeout=15)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", trust_env=False, headers=bearer()
            ) as http:

                async def settled() -> bool:
                    items = (await http.get("/api/v1/proxies")).json()["items"]
                    types = items[0]["types"] if items else []
                    return len(types) == 5 and all(
                        t["sent_version"] == t["acked_version"] for t in types
                    )

                await envoy.wait_for(settled)
            await asyncio.sleep(0.3)  # a window in which a churning server would push
            after = {k: v for k, v in (await envoy.stats()).items() if k in _COUNTERS}
            assert after == before
            assert await hits(url, 10) == {"web": 10}
    finally:
        await envoy.__aexit__(None, None, None)
