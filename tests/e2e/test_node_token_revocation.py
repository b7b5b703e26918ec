"""Revoking a node token disconnects the real Envoy using it within a second, and keeps it out.

Two gateways, `a` and `b`, each a real Envoy from a bootstrap the API issued; revoking every node
token of gateway/a ends a's stream within a second and refuses its reconnects, while b's stream
and its traffic carry on untouched. (Expiry ends a stream the same way: tests/unit/xds.)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import hits, wait_until_served

pytestmark = pytest.mark.e2e

_REFUSED = re.compile(r'^meshplane_xds_refused_streams_total\{reason="token"\} (\S+)$', re.M)


async def _gateway(mesh: Mesh, name: str, **bootstrap: Any) -> tuple[dict[str, Any], str]:
    """Gateway `name` routing to `web`; its bootstrap (from the API) and its URL."""
    port = free_port()
    await mesh.put("gateways", name, {"port": port, "address": "127.0.0.1"})
    await mesh.put(
        "routes", f"web-{name}", {"gateways": [name], "destinations": [{"service": "web"}]}
    )
    issued = await mesh.bootstrap(role="gateway", gateway=name, admin_port=free_port(), **bootstrap)
    return issued, f"http://127.0.0.1:{port}/"


async def _streams(mesh: Mesh, gateway: str) -> list[int]:
    return [p["stream_id"] for p in await mesh.proxies() if p["gateway"] == gateway]


async def _refused(mesh: Mesh) -> float:
    text = (await mesh.http.get("/metrics")).text
    found = _REFUSED.search(text)
    return float(found.group(1)) if found else 0.0


async def _until(condition: Callable[[], Any], timeout: float = 10.0) -> float:
    """Seconds until `await condition()` is true (bounded)."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_revoking_an_identitys_node_tokens_disconnects_its_envoy_within_a_second(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    await mesh.put("services", "web", {"protocol": "http"})
    await mesh.put(
        "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
    )
    boot_a, url_a = await _gateway(mesh, "a")
    boot_b, url_b = await _gateway(mesh, "b")
    async with EnvoyProcess(boot_a) as envoy_a, EnvoyProcess(boot_b):
        await wait_until_served(url_a, lambda r: r.status_code == 200)
        await wait_until_served(url_b, lambda r: r.status_code == 200)
        (stream_b,) = await _streams(mesh, "b")
        refused = await _refused(mesh)

        revoked = await mesh.http.delete("/api/v1/tokens", params={"identity": "gateway/a"})
        assert revoked.status_code == 200, revoked.text
        assert len(revoked.json()["revoked"]) == 1
        closed_after = await _until(lambda: _no_stream(mesh, "a"))
        assert closed_after < 1.0, f"a's stream closed {closed_after:.2f} s after the revocation"

        # Envoy sees it, tries again (it retries within a second), and is refused each time.
        await _until(lambda: _disconnected(envoy_a))
        await _until(lambda: _more_refused(mesh, refused))
        await asyncio.sleep(1.5)
        assert await _streams(mesh, "a") == []
        assert (await envoy_a.stats())["control_plane.connected_state"] == 0

        # b never noticed: the same stream, still serving.
        assert await _streams(mesh, "b") == [stream_b]
        assert (await hits(url_b, 10)) == {"web": 10}


async def _no_stream(mesh: Mesh, gateway: str) -> bool:
    return not await _streams(mesh, gateway)


async def _disconnected(envoy: EnvoyProcess) -> bool:
    return (await envoy.stats()).get("control_plane.connected_state") == 0


async def _more_refused(mesh: Mesh, before: float) -> bool:
    return await _refused(mesh) > before
