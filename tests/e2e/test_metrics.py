"""GET /metrics describes the control plane as it is: proxies, pushes, NACK-free convergence,
cache contents, certificate expiry and API traffic, with a real Envoy connected."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


def _value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    assert match, f"{name}{{{wanted}}} not in /metrics"
    return float(match.group(1))


async def test_metrics_follow_a_route_change(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    blue, green = backends("blue"), backends("green")
    port = free_port()
    for name, backend in (("blue", blue), ("green", green)):
        await mesh.put("services", name, {})
        await mesh.put(
            "endpoints", name, {"service": name, "address": "127.0.0.1", "port": backend.port}
        )
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    await mesh.put("routes", "r", {"gateways": ["edge"], "destinations": [{"service": "blue"}]})
    boot = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
    url = f"http://127.0.0.1:{port}/"
    async with EnvoyProcess(boot):
        await wait_until_served(url, lambda r: answered_by(r) == "blue")
        connected = (await mesh.http.get("/metrics")).text
        await mesh.put(
            "routes", "r", {"gateways": ["edge"], "destinations": [{"service": "green"}]}
        )
        await wait_until_served(url, lambda r: answered_by(r) == "green")
        text = (await mesh.http.get("/metrics")).text

    gauge = 'meshplane_xds_connected_proxies{role="gateway",transport="sotw"} 1.0'
    assert gauge in connected
    async with asyncio.timeout(10):  # Envoy gone: its stream closes and the gauge follows
        while gauge in (await mesh.http.get("/metrics")).text:
            await asyncio.sleep(0.05)

    assert _value(text, "meshplane_xds_connected_proxies", role="gateway", transport="sotw") == 1
    assert _value(text, "meshplane_xds_pushes_total", type="routes") >= 2
    assert _value(text, "meshplane_proxy_convergence_seconds_count") >= 1
    assert _value(text, "meshplane_build_seconds_count") >= 1
    assert _value(text, "meshplane_cache_resources", type="clusters") == 2
    assert _value(text, "meshplane_cache_bytes", type="clusters") > 0
    expiry = _value(
        text,
        "meshplane_certificate_expiry_seconds",
        identity="spiffe://meshplane.local/gateway/edge",
    )
    assert 23 * 3600 < expiry <= 24 * 3600
    assert (
        _value(
            text,
            "meshplane_api_requests_total",
            method="PUT",
            route="/routes/{name}",
            status="200",
        )
        >= 1
    )
    assert "meshplane_xds_nacks_total{" not in text  # nothing was rejected
