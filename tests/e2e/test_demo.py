"""`meshplane demo --check`: the README's first command walks its tour and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from meshplane.demo.topology import GATEWAY_PORT, INSTANCES, XDS_PORT, demo_nodes
from meshplane.serve import ControlPlane
from meshplane.settings import ADMIN_TOKEN_FILE
from meshplane.store import NODE_ROLE, TokenRepo
from tests.e2e.conftest import make_settings
from tests.support.envoy import validate_configs

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


async def test_compose_bootstraps_fetched_by_mesh_config_pass_envoy_validation(
    tmp_path: Path,
) -> None:
    # What compose's mesh-config runs, against a real control plane: one bootstrap per Envoy,
    # each private to its owner, each with a node token of its own, each one Envoy accepts.
    async with ControlPlane(make_settings(tmp_path)) as plane:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "meshplane", "demo", "bootstraps",
            "--out", str(tmp_path / "bootstraps"), "--api-url", plane.api_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, output.decode()
        assert plane.store is not None
        issued = await TokenRepo(plane.store.database).all((NODE_ROLE,))
    files = sorted((tmp_path / "bootstraps").iterdir())
    assert [f.name for f in files] == sorted(demo_nodes())
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    bootstraps = [yaml.safe_load(f.read_text()) for f in files]
    tokens = {b["node"]["metadata"]["meshplane"]["token"] for b in bootstraps}
    assert len(tokens) == len(files) == len(issued)
    assert sorted(t.identity or "" for t in issued) == sorted(
        options.subject.text for options in demo_nodes().values()
    )
    await asyncio.to_thread(validate_configs, bootstraps)
