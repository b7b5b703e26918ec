"""`meshplane proxy`: fetch the bootstrap, run Envoy, pass signals on, leave nothing behind."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


async def test_proxy_runs_a_gateway_until_signalled(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    port, admin = free_port(), free_port()
    await mesh.put("services", "web", {})
    await mesh.put(
        "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
    )
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    await mesh.put("routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    assert mesh.plane is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshplane", "proxy", "--gateway", "edge",
        "--admin-port", str(admin), "--api-url", mesh.plane.api_url,
    )  # fmt: skip
    try:
        await wait_until_served(f"http://127.0.0.1:{port}/", lambda r: answered_by(r) == "web")
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=15)
        assert code == 0
        with pytest.raises(ConnectionRefusedError):  # Envoy went with it
            await asyncio.open_connection("127.0.0.1", admin)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
