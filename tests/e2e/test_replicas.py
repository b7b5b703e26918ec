"""Several replicas on one PostgreSQL database: a write through one reaches the proxies of
another at once (its commit's notice wakes their builders), and a second server on one SQLite
file is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import make_url

from meshplane.serve import ControlPlane
from meshplane.store import DatabaseInUse
from tests.conftest import _postgres_schema, postgres_url
from tests.e2e.conftest import make_settings, running_mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


def _route(service: str) -> dict[str, object]:
    return {"gateways": ["edge"], "destinations": [{"service": service}]}


@pytest.mark.postgres
async def test_a_route_written_through_one_replica_is_served_by_envoy_on_another(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    url = postgres_url()
    with _postgres_schema(url) as schema:
        database = make_url(url).update_query_dict({"options": f"-c search_path={schema}"})
        # One secret key (the key file in tmp_path) and one database: two replicas.
        settings = make_settings(tmp_path, database_url=database.render_as_string(False))
        async with running_mesh(settings) as a, running_mesh(settings) as b:
            gateway = free_port()
            for name in ("blue", "green"):
                backend = backends(name)
                await a.put("services", name, {})
                spec = {"service": name, "address": "127.0.0.1", "port": backend.port}
                await a.put("endpoints", f"{name}-1", spec)
            await a.put("gateways", "edge", {"port": gateway, "address": "127.0.0.1"})
            await a.put("routes", "main", _route("blue"))
            # The bootstrap B writes points Envoy at B's xDS port.
            bootstrap = await b.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
            async with EnvoyProcess(bootstrap):
                served = f"http://127.0.0.1:{gateway}/"
                await wait_until_served(served, lambda r: answered_by(r) == "blue")
                await a.put("routes", "main", _route("green"))
                await wait_until_served(served, lambda r: answered_by(r) == "green")
                assert [p["node_id"] for p in await b.proxies()] != []
                assert await a.proxies() == []  # Envoy is B's


async def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with ControlPlane(settings):
        with pytest.raises(DatabaseInUse, match="another meshplane serve"):
            async with ControlPlane(settings.model_copy(update={"api_port": 0})):
                pass
