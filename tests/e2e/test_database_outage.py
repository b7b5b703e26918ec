"""A real Envoy gateway while the control plane's PostgreSQL is stopped: traffic keeps flowing
on the config it has, the API answers 503, and a route written after the database is back
reaches Envoy as usual."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from meshplane.serve import ControlPlane
from tests.e2e.conftest import Mesh, make_settings
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.postgres_cluster import private_cluster
from tests.support.tokens import bearer
from tests.support.traffic import answered_by, hits, wait_until_served

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _route(service: str) -> dict[str, object]:
    return {"gateways": ["edge"], "destinations": [{"service": service}]}


async def test_envoy_keeps_serving_through_an_outage_and_follows_after(
    tmp_path: Path, backends: Callable[[str], HttpBackend], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    blue, green = backends("blue"), backends("green")
    with private_cluster() as cluster:
        async with (
            ControlPlane(make_settings(tmp_path, database_url=cluster.url)) as plane,
            httpx.AsyncClient(
                base_url=plane.api_url, trust_env=False, timeout=10, headers=bearer()
            ) as http,
        ):
            mesh = Mesh(plane, http)
            for backend in (blue, green):
                name = backend.name
                await mesh.put("services", name, {"protocol": "http"})
                endpoint = {"service": name, "address": "127.0.0.1", "port": backend.port}
                await mesh.put("endpoints", name, endpoint)
            port = free_port()
            await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
            await mesh.put("routes", "main", _route("blue"))
            bootstrap = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
            url = f"http://127.0.0.1:{port}/"
            async with EnvoyProcess(bootstrap):
                await wait_until_served(url, lambda r: answered_by(r) == "blue")

                await cluster.stop()
                refused = await http.put("/api/v1/routes/main", json={"spec": _route("green")})
                assert refused.status_code == 503
                assert (await hits(url, 20)) == {"blue": 20}

                await cluster.start()
                await mesh.put("routes", "main", _route("green"))
                await wait_until_served(url, lambda r: answered_by(r) == "green")
    assert len([r for r in caplog.records if "database unreachable since" in r.getMessage()]) == 1
    assert all(r.exc_info is None for r in caplog.records)
