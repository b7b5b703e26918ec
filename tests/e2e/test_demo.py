"""`meshplane demo --check`: the first README command walks its tour and leaves nothing behind."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.support.ports import free_ports

pytestmark = pytest.mark.e2e


async def test_demo_check_passes_and_stops_everything() -> None:
    api, xds, gateway, admin = free_ports(4)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshplane", "demo", "--check",
        "--api-port", str(api), "--xds-port", str(xds),
        "--gateway-port", str(gateway), "--admin-port", str(admin),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 0, text
    assert "check: ok" in text
    # Nothing it started is left: the gateway port and the admin port are free again.
    for port in (gateway, admin, api):
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
