"""Several replicas on one PostgreSQL database: a write through one reaches the proxies of
another at once (its commit's notice wakes their builders); an Envoy whose replica is killed
moves to another without a failed request (its bootstrap lists every live replica); a root
rotation whose leader is killed is finished by another replica without a failed request; a
second server on one SQLite file is refused."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshplane.serve import ControlPlane
from meshplane.store import DatabaseInUse
from meshplane.store.replicas import DEAD_AFTER_S
from tests.conftest import _postgres_schema, postgres_url, schema_url
from tests.e2e.conftest import Mesh, make_settings, running_mesh
from tests.e2e.identity_mesh import Load, continuous_load, leaf_serials
from tests.support.backends import HttpBackend
from tests.support.control_plane import meshplane_serve
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port, free_ports
from tests.support.tokens import bearer
from tests.support.traffic import answered_by, client, wait_until_served

pytestmark = pytest.mark.e2e


def _route(service: str) -> dict[str, object]:
    return {"gateways": ["edge"], "destinations": [{"service": service}]}


@pytest.mark.postgres
async def test_a_route_written_through_one_replica_is_served_by_envoy_on_another(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    url = postgres_url()
    with _postgres_schema(url) as schema:
        # One secret key (the key file in tmp_path) and one database: two replicas.
        settings = make_settings(tmp_path, database_url=schema_url(url, schema))
        async with running_mesh(settings) as a, running_mesh(settings) as b:
            gateway = free_port()
            for name in ("blue", "green"):
                backend = backends(name)
                await a.put("services", name, {})
                spec = {"service": name, "address": "127.0.0.1", "port": backend.port}
                await a.put("endpoints", f"{name}-1", spec)
            await a.put("gateways", "edge", {"port": gateway, "address": "127.0.0.1"})
            await a.put("routes", "main", _route("blue"))
            # Only B's address (a bootstrap names every live replica unless told one).
            assert b.plane is not None
            bootstrap = await b.bootstrap(
                role="gateway",
                gateway="edge",
                admin_port=free_port(),
                xds_host="127.0.0.1",
                xds_port=b.plane.xds_port,
            )
            async with EnvoyProcess(bootstrap):
                served = f"http://127.0.0.1:{gateway}/"
                await wait_until_served(served, lambda r: answered_by(r) == "blue")
                await a.put("routes", "main", _route("green"))
                await wait_until_served(served, lambda r: answered_by(r) == "green")
                assert b.plane is not None
                assert b.plane.replica is not None
                held_by_b = [p for p in await b.proxies() if p["replica"] == b.plane.replica.id]
                assert held_by_b != []
                async with asyncio.timeout(10):  # A lists B's proxy too, as B last wrote it
                    while [p["replica"] for p in await a.proxies()] != [b.plane.replica.id]:
                        await asyncio.sleep(0.1)
            ids = []
            for mesh in (a, b):
                assert mesh.plane is not None
                assert mesh.plane.replica is not None
                ids.append(mesh.plane.replica.id)
            for mesh, mine in zip((a, b), ids, strict=True):  # each lists both, marks itself
                listed = (await mesh.http.get("/api/v1/replicas")).json()["items"]
                assert {(r["id"], r["this"]) for r in listed} == {(i, i == mine) for i in ids}


async def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with ControlPlane(settings):
        with pytest.raises(DatabaseInUse, match="another meshplane serve"):
            async with ControlPlane(settings.model_copy(update={"api_port": 0})):
                pass


@contextlib.asynccontextmanager
async def _replica(
    database: str, workdir: Path, hook: str | None = None, grace: float = 30.0
) -> AsyncIterator[tuple[Any, Mesh]]:
    """`meshplane serve` as a process (killed at the end), and its API signed in as admin."""
    api, xds = free_ports(2)
    async with (
        meshplane_serve(database, api, xds, workdir, hook=hook, grace_seconds=grace) as process,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api}", headers=bearer(), trust_env=False, timeout=10
        ) as http,
    ):
        yield process, Mesh(None, http)


async def _holds(mesh: Mesh, node_id: str) -> bool:
    """Whether the replica behind `mesh` holds a stream of `node_id`, all of it ACKed."""
    try:
        replicas = (await mesh.http.get("/api/v1/replicas")).json()["items"]
        response = await mesh.http.get("/api/v1/proxies")
    except httpx.TransportError:
        return False
    this = next(r["id"] for r in replicas if r["this"])
    for proxy in response.json()["items"] if response.status_code == 200 else []:
        if proxy["node_id"] == node_id and proxy["replica"] == this:
            return all(t["sent_version"] == t["acked_version"] for t in proxy["types"])
    return False


@contextlib.asynccontextmanager
async def _request_loop(url: str) -> AsyncIterator[list[str]]:
    """GET `url` every few ms until the block ends; yields the failures seen (filled as they
    happen: read it after the block)."""
    failed: list[str] = []
    stop = asyncio.Event()

    async def requests() -> None:
        async with client() as traffic:
            while not stop.is_set():
                try:
                    answer = await traffic.get(url)
                    if answer.status_code != 200:
                        failed.append(answered_by(answer))
                except httpx.TransportError as exc:
                    failed.append(type(exc).__name__)
                await asyncio.sleep(0.005)

    sender = asyncio.create_task(requests())
    try:
        yield failed
    finally:
        stop.set()
        await sender


@pytest.mark.postgres
async def test_envoy_moves_to_another_replica_when_its_own_is_killed(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    url = postgres_url()
    with _postgres_schema(url) as schema:
        database = schema_url(url, schema)
        async with _replica(database, tmp_path) as one, _replica(database, tmp_path) as two:
            gateway = free_port()
            mesh = one[1]
            for name in ("blue", "green"):
                await mesh.put("services", name, {})
                spec = {"service": name, "address": "127.0.0.1", "port": backends(name).port}
                await mesh.put("endpoints", f"{name}-1", spec)
            await mesh.put("gateways", "edge", {"port": gateway, "address": "127.0.0.1"})
            await mesh.put("routes", "main", _route("blue"))
            bootstrap = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
            xds = bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"]
            assert len(xds[0]["lb_endpoints"]) == 2  # both replicas' xDS addresses
            node_id = bootstrap["node"]["id"]
            served = f"http://127.0.0.1:{gateway}/"
            async with EnvoyProcess(bootstrap):
                await wait_until_served(served, lambda r: answered_by(r) == "blue")
                async with asyncio.timeout(20):
                    while not (held := [r for r in (one, two) if await _holds(r[1], node_id)]):
                        await asyncio.sleep(0.05)
                (killed,) = held
                survivor = two if killed is one else one
                async with _request_loop(served) as failed:
                    await asyncio.sleep(0.3)
                    os.kill(killed[0].pid, signal.SIGKILL)
                    async with asyncio.timeout(30):  # Envoy's retry backoff is at most 5 s
                        while not await _holds(survivor[1], node_id):
                            await asyncio.sleep(0.05)
                    await survivor[1].put("routes", "main", _route("green"))
                    await wait_until_served(served, lambda r: answered_by(r) == "green")
                assert failed == []


async def _leads(mesh: Mesh) -> bool:
    """Whether the replica behind `mesh` says it is the leader."""
    try:
        listed = (await mesh.http.get("/api/v1/replicas")).json()["items"]
    except httpx.TransportError:
        return False
    return any(r["this"] and r["leader"] for r in listed)


async def _phase(mesh: Mesh) -> str:
    phase: str = (await mesh.http.get("/api/v1/ca")).json()["phase"]
    return phase


async def _sidecar(
    mesh: Mesh, service: str, app_port: int, **only: Any
) -> tuple[dict[str, Any], int]:
    """A sidecar bootstrap naming every replica (or `only` xds_host and xds_port), and its
    outbound port."""
    inbound, outbound, admin = free_ports(3)
    bootstrap = await mesh.bootstrap(
        role="sidecar", service=service, inbound_port=inbound, app_port=app_port,
        outbound_port=outbound, admin_port=admin, node_id=f"{service}-1", **only,
    )  # fmt: skip
    return bootstrap, outbound


async def _xds_port(mesh: Mesh) -> int:
    listed = (await mesh.http.get("/api/v1/replicas")).json()["items"]
    port: int = next(r["xds"]["port"] for r in listed if r["this"])
    return port


async def _endpoint_exists(mesh: Mesh, name: str) -> bool:
    return (await mesh.http.get(f"/api/v1/endpoints/{name}")).status_code == 200


@pytest.mark.postgres
async def test_a_sidecar_keeps_its_endpoint_when_its_replica_is_killed(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    """b's sidecar moves to the surviving replica, which then holds its endpoint: traffic to b
    never fails, and the endpoint outlives the dead replica's grace period; c's sidecar could
    only reach the killed replica, so its endpoint goes once that grace period passed."""
    url = postgres_url()
    grace = 1.0
    with _postgres_schema(url) as schema:
        database = schema_url(url, schema)
        async with (
            _replica(database, tmp_path, grace=grace) as one,
            _replica(database, tmp_path, grace=grace) as two,
        ):
            mesh = one[1]
            for service in ("a", "b", "c"):
                await mesh.put("services", service, {})
            boot_a, outbound = await _sidecar(mesh, "a", backends("a").port)
            boot_b, _ = await _sidecar(mesh, "b", backends("b").port)
            async with EnvoyProcess(boot_a), EnvoyProcess(boot_b):
                a_to_b = f"http://127.0.0.1:{outbound}/"
                await wait_until_served(
                    a_to_b, lambda r: answered_by(r) == "b", headers={"host": "b"}
                )
                async with asyncio.timeout(20):
                    while not (held := [r for r in (one, two) if await _holds(r[1], "b-1")]):
                        await asyncio.sleep(0.05)
                (killed,) = held
                survivor = two if killed is one else one
                only = {"xds_host": "127.0.0.1", "xds_port": await _xds_port(killed[1])}
                boot_c, _ = await _sidecar(mesh, "c", backends("c").port, **only)
                async with EnvoyProcess(boot_c), continuous_load(a_to_b) as load:
                    async with asyncio.timeout(20):
                        while not await _endpoint_exists(survivor[1], "c-1"):
                            await asyncio.sleep(0.05)
                    await _more(load, 20)
                    os.kill(killed[0].pid, signal.SIGKILL)
                    async with asyncio.timeout(30):
                        while not await _holds(survivor[1], "b-1"):
                            await asyncio.sleep(0.05)
                    # The dead replica's heartbeat ages out, then its grace period passes.
                    async with asyncio.timeout(DEAD_AFTER_S + grace + 20):
                        while await _endpoint_exists(survivor[1], "c-1"):
                            await asyncio.sleep(0.1)
                    await _more(load, 20)
                assert load.failures == []
                assert await _endpoint_exists(survivor[1], "b-1")


@pytest.mark.postgres
async def test_a_root_rotation_whose_leader_is_killed_is_finished_by_another_replica(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    url = postgres_url()
    hook = "tests.e2e.identity_mesh:one_request_per_connection"  # a handshake per request
    with _postgres_schema(url) as schema:
        database = schema_url(url, schema)
        async with (
            _replica(database, tmp_path, hook) as one,
            _replica(database, tmp_path, hook) as two,
        ):
            async with asyncio.timeout(10):
                while not (leaders := [r for r in (one, two) if await _leads(r[1])]):
                    await asyncio.sleep(0.05)
            (leader,) = leaders
            follower = two if leader is one else one
            mesh = follower[1]
            await mesh.put("services", "a", {})
            await mesh.put("services", "b", {})
            boot_a, outbound = await _sidecar(mesh, "a", backends("a").port)
            boot_b, _ = await _sidecar(mesh, "b", backends("b").port)
            old_roots = (await mesh.http.get("/api/v1/ca")).json()["roots"]
            async with EnvoyProcess(boot_a), EnvoyProcess(boot_b) as envoy_b:
                a_to_b = f"http://127.0.0.1:{outbound}/"
                await wait_until_served(
                    a_to_b, lambda r: answered_by(r) == "b", headers={"host": "b"}
                )
                async with continuous_load(a_to_b) as load:
                    await _more(load, 20)
                    body = {"overlap_seconds": 3600}
                    started = await leader[1].http.post("/api/v1/ca/rotate", json=body)
                    assert started.status_code == 202, started.text
                    os.kill(leader[0].pid, signal.SIGKILL)  # its steps are left to the other
                    async with asyncio.timeout(60):
                        while not await _leads(mesh):
                            await asyncio.sleep(0.05)
                        while await _phase(mesh) != "overlap":
                            await asyncio.sleep(0.05)
                    await _more(load, 20)
                    finished = await mesh.http.post("/api/v1/ca/finish")
                    assert finished.status_code == 200, finished.text
                    async with asyncio.timeout(30):
                        while await _phase(mesh) != "idle":
                            await asyncio.sleep(0.05)
                    await _more(load, 20)
                assert load.failures == []
                status = (await mesh.http.get("/api/v1/ca")).json()
                states = {r["serial"]: r["state"] for r in status["roots"]}
                assert states[old_roots[0]["serial"]] == "retired"
                (issuing,) = [r["serial"] for r in status["roots"] if r["state"] == "issuing"]
                items = (await mesh.http.get("/api/v1/certificates")).json()["items"]
                leaf = next(c for c in items if c["subject"] == "service/b")
                assert leaf["issuer_serial"] == issuing

                async def serves_it() -> bool:
                    held = [serial.lstrip("0") for serial, _ in await leaf_serials(envoy_b)]
                    return leaf["serial"] in held

                await envoy_b.wait_for(serves_it)


async def _more(load: Load, count: int) -> None:
    """Until `count` more requests succeeded (or one failed)."""
    target = load.ok + count
    async with asyncio.timeout(30):
        while load.ok < target and not load.failures:
            await asyncio.sleep(0.01)
