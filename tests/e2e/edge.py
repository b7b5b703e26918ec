"""Helpers for traffic-policy tests: a gateway Envoy in front of services of real backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx

from meshplane.model import ProxyGroup, Role
from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import client, hits

__all__ = [
    "EDGE",
    "answered_only_by",
    "failing_health_check",
    "gateway",
    "request",
    "send_all",
    "service",
]

EDGE = ProxyGroup(Role.GATEWAY, gateway="edge")


async def gateway(mesh: Mesh, **bootstrap: Any) -> tuple[dict[str, Any], str]:
    """Create gateway `edge` on a free port; return its Envoy bootstrap and base URL."""
    port = free_port()
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    config = await mesh.bootstrap(
        role="gateway", gateway="edge", admin_port=free_port(), **bootstrap
    )
    return config, f"http://127.0.0.1:{port}"


async def service(
    mesh: Mesh,
    name: str,
    backends: Sequence[HttpBackend],
    spec: dict[str, Any] | None = None,
    endpoints: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Create service `name` (with `spec`) whose endpoints are `backends`, named after them;
    `endpoints` adds fields (labels, zone) per backend."""
    await mesh.put("services", name, spec or {})
    for i, backend in enumerate(backends):
        extra = endpoints[i] if endpoints else {}
        await mesh.put(
            "endpoints",
            backend.name,
            {"service": name, "address": backend.address, "port": backend.port, **extra},
        )


async def request(url: str, **kwargs: Any) -> httpx.Response:
    """One request on a fresh keep-alive client (redirects are not followed)."""
    async with client() as http:
        return await http.request(kwargs.pop("method", "GET"), url, **kwargs)


async def send_all(url: str, n: int, **kwargs: Any) -> list[httpx.Response]:
    """`n` requests at once, each on its own connection; answers in sending order."""

    async def one() -> httpx.Response:
        return await request(url, **kwargs)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def answered_only_by(
    url: str,
    names: set[str],
    batch: int = 10,
    timeout: float = 10.0,
) -> None:
    """Poll `url` in batches until a whole batch is answered by the backends `names` only.

    Envoy applies health changes of several endpoints after a merge window of up to 1s
    (CommonLbConfig.update_merge_window), so a test waits for the traffic itself.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = await hits(url, batch)
        if set(seen) <= names:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} still answered by {dict(seen)}, wanted only {names}")
        await asyncio.sleep(0.02)


async def failing_health_check(envoy: EnvoyProcess, cluster: str, *ports: int) -> bool:
    """Does Envoy's /clusters mark every endpoint on `ports` as failing its health check?"""
    text = (await envoy.admin_get("/clusters")).text
    return all(
        f"{cluster}::127.0.0.1:{port}::health_flags::/failed_active_hc" in text for port in ports
    )
