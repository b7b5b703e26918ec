"""Two real sidecars (a calls b) and optionally a gateway, on a control plane with a test hook.

The hook can make every upstream request open a new connection, so each request is a fresh TLS
handshake: rotation tests then prove that new connections keep working at every phase, not just
that old ones stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from google.protobuf.message import Message

from meshplane.model import ProxyGroup
from meshplane.xds.type_urls import CLUSTER
from tests.e2e.conftest import Mesh, make_settings, running_mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.traffic import answered_by, wait_until_served

_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def one_request_per_connection(
    group: ProxyGroup | None, resources: dict[str, list[Message]]
) -> None:
    """Test hook: service clusters close each upstream connection after one request."""
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as http

    if group is not None:
        return
    for cluster in resources.get(CLUSTER, []):
        options = http.HttpProtocolOptions()
        options.common_http_protocol_options.max_requests_per_connection.value = 1
        options.explicit_http_config.http_protocol_options.SetInParent()
        cluster.typed_extension_protocol_options[_HTTP_OPTIONS].Pack(options)  # type: ignore[attr-defined]


@dataclass
class Sidecars:
    mesh: Mesh
    envoy_a: EnvoyProcess
    envoy_b: EnvoyProcess
    a_outbound: int
    b_inbound: int
    app_b: HttpBackend

    @property
    def a_to_b(self) -> str:
        return f"http://127.0.0.1:{self.a_outbound}/"

    async def wait_a_reaches_b(self) -> None:
        await wait_until_served(self.a_to_b, lambda r: answered_by(r) == "b", headers={"host": "b"})


@contextlib.asynccontextmanager
async def sidecars(tmp_path: Path, *, fresh_connections: bool = False) -> AsyncIterator[Sidecars]:
    hook = one_request_per_connection if fresh_connections else None
    app_a, app_b = HttpBackend("a").start(), HttpBackend("b").start()
    a_in, a_out, b_in, b_out, a_admin, b_admin = free_ports(6)
    try:
        async with running_mesh(make_settings(tmp_path), hook=hook) as mesh:
            await mesh.put("services", "a", {})
            await mesh.put("services", "b", {})
            boot_a = await mesh.bootstrap(
                role="sidecar", service="a", inbound_port=a_in, app_port=app_a.port,
                outbound_port=a_out, admin_port=a_admin, node_id="a-1",
            )  # fmt: skip
            boot_b = await mesh.bootstrap(
                role="sidecar", service="b", inbound_port=b_in, app_port=app_b.port,
                outbound_port=b_out, admin_port=b_admin, node_id="b-1",
            )  # fmt: skip
            async with EnvoyProcess(boot_a) as envoy_a, EnvoyProcess(boot_b) as envoy_b:
                found = Sidecars(mesh, envoy_a, envoy_b, a_out, b_in, app_b)
                await found.wait_a_reaches_b()
                yield found
    finally:
        app_a.stop()
        app_b.stop()


@dataclass
class Load:
    """Requests from app a to b, one after another, until stopped; counts every outcome."""

    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, limit_seconds: float = 60.0) -> None:
        deadline = time.monotonic() + limit_seconds
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = await http.get(self.url, headers={"host": "b"})
                except httpx.TransportError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if answered_by(response) == "b":
                    self.ok += 1
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:120]}")

    def stop(self) -> None:
        self._stop.set()


@contextlib.asynccontextmanager
async def continuous_load(url: str) -> AsyncIterator[Load]:
    load = Load(url)
    task = asyncio.create_task(load.run())
    try:
        yield load
    finally:
        load.stop()
        await task


async def leaf_serials(envoy: EnvoyProcess) -> list[tuple[str, list[str]]]:
    """(serial, SPIFFE IDs) of each leaf Envoy holds, from its admin /certs."""
    data = (await envoy.admin_get("/certs")).json()
    out = []
    for entry in data.get("certificates", []):
        for cert in entry.get("cert_chain", []):
            uris = [san["uri"] for san in cert.get("subject_alt_names", []) if "uri" in san]
            out.append((cert["serial_number"], uris))
    return out
