"""`meshplane demo --check`: the README's first command walks its tour and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from meshplane.demo.topology import GATEWAY_PORT, INSTANCES, XDS_PORT
from meshplane.settings import ADMIN_TOKEN_FILE

_CHECKOUT = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.e2e


async def test_demo_check_passes_and_stops_everything(tmp_path: Path) -> None:
    # As from a fresh terminal: no token in the environment; the tour's commands (the check
    # runs `meshplane status`'s client) find the one the demo hands them in this directory.
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MESHPLANE_TOKEN", "MESHPLANE_ADMIN_TOKEN")
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_CHECKOUT, os.environ.get("PYTHONPATH")])
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meshplane", "demo", "--check",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path, env=environment,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 0, text
    assert "check: ok" in text
    assert "0 failed" in text
    assert "database is locked" not in text
    assert "export MESHPLANE_TOKEN" not in text  # handed over, not to be typed
    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()  # and taken back
    # Nothing it started is left: every port of the topology is free again.
    ports = [GATEWAY_PORT, XDS_PORT, 8080]
    ports += [p for i in INSTANCES for p in (i.app_port, i.inbound_port, i.admin_port)]
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
