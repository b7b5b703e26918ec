"""`meshplane serve` on a database holding a service whose stored spec no longer validates (as a
hand edit or an older version leaves it): it starts, reports that service, and a real Envoy gets
and routes the rest of the mesh; a PUT of a valid spec brings the service back to Envoy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from meshplane.model import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec
from meshplane.store import open_store
from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.control_plane import meshplane_serve
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.stored import BAD_VALUE, spoil
from tests.support.tokens import bearer
from tests.support.traffic import answered_by, hits, wait_until_served

pytestmark = pytest.mark.e2e


def _route(prefix: str, service: str) -> RouteSpec:
    return RouteSpec.model_validate(
        {"gateways": ["edge"], "match": {"prefix": prefix}, "destinations": [{"service": service}]}
    )


async def _database(db: Path, gw_port: int, web: HttpBackend, api: HttpBackend) -> int:
    """A mesh of web and api behind gateway edge, with web's stored spec spoiled; its version."""
    store = await open_store(f"sqlite:///{db}")
    try:
        for name, backend in (("web", web), ("api", api)):
            await store.put("services", name, ServiceSpec())
            endpoint = EndpointSpec(service=name, address="127.0.0.1", port=backend.port)
            await store.put("endpoints", f"{name}-1", endpoint)
        await store.put("gateways", "edge", GatewaySpec(port=gw_port, address="127.0.0.1"))
        await store.put("routes", "web", _route("/web", "web"))
        await store.put("routes", "api", _route("/api", "api"))
        return spoil(store.database.engine, "services", "web", BAD_VALUE)
    finally:
        await store.close()


async def test_serve_starts_reports_it_and_envoy_routes_the_rest_until_it_is_fixed(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    web, api = backends("web"), backends("api")
    api_port, xds_port, gw_port, admin_port = free_ports(4)
    db, log = tmp_path / "mesh.db", tmp_path / "serve.log"
    version = await _database(db, gw_port, web, api)
    gateway = f"http://127.0.0.1:{gw_port}"

    async with (
        meshplane_serve(f"sqlite:///{db}", api_port, xds_port, tmp_path, log=log),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", trust_env=False, headers=bearer()
        ) as http,
    ):
        [invalid] = (await http.get("/api/v1/server")).json()["invalid_resources"]
        assert invalid["kind"] == "service"
        assert invalid["name"] == "web"
        assert invalid["version"] == version
        assert invalid["reason"].startswith("protocol: Input should be 'http'")
        assert invalid["left_out"] == ["endpoint/web-1", "route/web"]
        started = await asyncio.to_thread(log.read_text)
        warnings = [line for line in started.splitlines() if "does not validate" in line]
        assert len(warnings) == 1, started
        assert "kind=services name=web" in warnings[0]

        mesh = Mesh(None, http)
        bootstrap = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=admin_port)
        async with EnvoyProcess(bootstrap) as envoy:
            await wait_until_served(f"{gateway}/api", lambda r: answered_by(r) == "api")
            assert await hits(f"{gateway}/web", 3) == {"status 404": 3}  # no route to web
            clusters = await envoy.cluster_names()
            assert "api" in clusters
            assert "web" not in clusters

            fixed = await http.put(
                "/api/v1/services/web",
                json={"spec": {"protocol": "http"}},
                headers={"If-Match": f'"{version}"'},
            )
            assert fixed.status_code == 200, fixed.text
            await wait_until_served(f"{gateway}/web", lambda r: answered_by(r) == "web")
            assert await hits(f"{gateway}/api", 3) == {"api": 3}
            assert (await http.get("/api/v1/server")).json()["invalid_resources"] == []
