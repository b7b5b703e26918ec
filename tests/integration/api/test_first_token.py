"""The first start without MESHPLANE_ADMIN_TOKEN writes an admin token (mode 0600) beside the
database and logs where, never the token; the tutorial's commands, run in that directory with
no token in their environment, find it; /metrics takes its own token when one is set."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshplane.settings import ADMIN_TOKEN_FILE
from tests.support.control_plane import meshplane_serve
from tests.support.ports import free_port
from tests.support.tokens import bearer

_CHECKOUT = str(Path(__file__).resolve().parents[3])
MESH = """\
kind: service
name: hello
spec: {protocol: http}
---
kind: gateway
name: edge
spec: {port: 8000}
"""


async def _meshplane(cwd: Path, api_port: int, *args: str) -> tuple[int, str, str]:
    """A `meshplane` command as the tutorial runs it: in `cwd`, no token in its environment."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MESHPLANE_ADMIN_TOKEN", "MESHPLANE_TOKEN")
    }
    environment["MESHPLANE_API_URL"] = f"http://127.0.0.1:{api_port}"
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_CHECKOUT, os.environ.get("PYTHONPATH")])
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshplane",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _serve_here(tmp_path: Path, api_port: int, xds_port: int, log: Path) -> Any:
    """`meshplane serve` started in `tmp_path` with no admin token given: its first start writes
    one beside the database there."""
    return meshplane_serve(
        "sqlite:///meshplane.db",
        api_port,
        xds_port,
        tmp_path,
        log=log,
        admin_token=None,
        cwd=tmp_path,
    )


async def test_the_first_start_writes_an_admin_token_the_cli_finds(tmp_path: Path):
    api_port, xds_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    async with _serve_here(tmp_path, api_port, xds_port, log):
        token_file = tmp_path / ADMIN_TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 40
        logged = log.read_text()
        assert str(token_file) in logged or ADMIN_TOKEN_FILE in logged
        assert token not in logged

        (tmp_path / "mesh.yaml").write_text(MESH)
        code, out, err = await _meshplane(tmp_path, api_port, "apply", "-f", "mesh.yaml")
        assert code == 0, err
        assert "service/hello created" in out
        code, out, err = await _meshplane(tmp_path, api_port, "get", "services")
        assert code == 0, err
        assert "hello" in out

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", trust_env=False
        ) as http:
            assert (await http.get("/api/v1/services")).status_code == 401
            assert (await http.get("/api/v1/services", headers=bearer(token))).status_code == 200

        # A pipeline token through the CLI: created, listed (never shown again), revoked.
        code, out, err = await _meshplane(
            tmp_path, api_port, "tokens", "create", "deploy-hello", "--role", "bootstrap",
            "--scope", "gateway/edge",
        )  # fmt: skip
        assert code == 0, err
        pipeline = out.strip()
        code, out, err = await _meshplane(tmp_path, api_port, "tokens", "list")
        assert code == 0, err
        assert "deploy-hello" in out
        assert "gateway/edge" in out
        assert pipeline not in out
        code, out, err = await _meshplane(
            tmp_path, api_port, "bootstrap", "--role", "gateway", "--gateway", "edge",
            "--token", pipeline,
        )  # fmt: skip
        assert code == 0, err
        # The node token in that bootstrap is an xDS credential only: the REST API refuses it.
        node_token = yaml.safe_load(out)["node"]["metadata"]["meshplane"]["token"]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}", trust_env=False
        ) as http:
            for path in ("/api/v1/services", "/api/v1/bootstrap?role=gateway&gateway=edge"):
                assert (await http.get(path, headers=bearer(node_token))).status_code == 401
        # It is listed under its name (printed on stderr), and revoked by its identity.
        issued = re.search(r"node token (node-[0-9a-f]+) for gateway/edge", err)
        assert issued, err
        code, out, err = await _meshplane(tmp_path, api_port, "tokens", "list", "--role", "node")
        assert code == 0, err
        assert issued.group(1) in out
        assert node_token not in out
        code, out, err = await _meshplane(
            tmp_path, api_port, "tokens", "revoke", "--identity", "gateway/edge"
        )
        assert code == 0, err
        assert out.strip() == f"revoked 1 node tokens of gateway/edge: {issued.group(1)}"
        code, _, err = await _meshplane(tmp_path, api_port, "tokens", "revoke", "deploy-hello")
        assert code == 0, err
        code, _, err = await _meshplane(
            tmp_path, api_port, "bootstrap", "--role", "gateway", "--gateway", "edge",
            "--token", pipeline,
        )  # fmt: skip
        assert code == 1
        assert "revoked" in err

    # A second start keeps the token it wrote.
    async with _serve_here(tmp_path, api_port, xds_port, log):
        assert (tmp_path / ADMIN_TOKEN_FILE).read_text().strip() == token
        code, _, err = await _meshplane(tmp_path, api_port, "get", "services")
        assert code == 0, err
