"""`meshplane serve` as a real process, for tests of what only a whole process shows (a restart,
a kill -9, a start on a database another version wrote)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.support.tokens import ADMIN_TOKEN

__all__ = ["meshplane_serve"]

_CHECKOUT = str(Path(__file__).resolve().parents[2])
_HOOKED = "tests.support.hooked_serve"


@asynccontextmanager
async def meshplane_serve(
    database_url: str,
    api_port: int,
    xds_port: int,
    workdir: Path,
    *,
    log: Path | None = None,
    admin_token: str | None = ADMIN_TOKEN,
    cwd: Path | None = None,
    hook: str | None = None,
    grace_seconds: float = 30.0,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `meshplane serve` on `database_url` until it answers; SIGKILL it (no goodbye) on exit.

    `workdir` holds its secret key file, so a restart on the same database reads its keys. It
    runs in `cwd` (default: this one), with this checkout first on its import path. Its log
    (stderr) goes to `log` when given, else nowhere. It is given `admin_token` as
    MESHPLANE_ADMIN_TOKEN; None: no token in its environment at all (it writes its own beside
    the database, as at a first start). `hook` ("module:name") is a translate hook every
    build runs (tests/support/hooked_serve.py). `grace_seconds`: how long a sidecar's endpoint
    outlives its stream.
    """
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MESHPLANE_ADMIN_TOKEN", "MESHPLANE_TOKEN")
    }
    if admin_token is not None:
        environment["MESHPLANE_ADMIN_TOKEN"] = admin_token
    sink = await asyncio.to_thread(open, log, "ab") if log else None
    try:
        program = ["-m", "meshplane"] if hook is None else ["-m", _HOOKED, hook]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *program,
            "serve",
            "--database-url",
            database_url,
            "--api-port",
            str(api_port),
            "--xds-port",
            str(xds_port),
            "--xds-host",
            "127.0.0.1",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink or asyncio.subprocess.DEVNULL,
            cwd=cwd,
            env={
                **environment,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [_CHECKOUT, os.environ.get("PYTHONPATH")])
                ),
                "MESHPLANE_ENDPOINT_GRACE_SECONDS": str(grace_seconds),
                "MESHPLANE_SECRET_KEY_FILE": str(workdir / "meshplane.key"),
            },
        )
    finally:
        if sink is not None:
            sink.close()  # the child holds its own copy
    try:
        async with asyncio.timeout(20), httpx.AsyncClient(trust_env=False) as http:
            while True:
                try:
                    if (
                        await http.get(f"http://127.0.0.1:{api_port}/api/v1/server")
                    ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, "meshplane serve exited"
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
