"""`meshplane demo` (run the demo locally), `meshplane demo configs` (regenerate its files) and
`meshplane demo bootstraps` (fetch its Envoys' bootstraps from a running control plane)."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, reporting

__all__ = ["demo_app"]

demo_app = typer.Typer(
    help="The demo mesh: frontend -> orders (v1, v2) -> payments behind a gateway.",
    invoke_without_command=True,
)


@demo_app.callback()
def demo(
    ctx: typer.Context,
    api_port: Annotated[int, typer.Option(help="Port of the demo's REST API.")] = 8080,
    check: Annotated[
        bool,
        typer.Option("--check", help="Walk the tour unattended, then stop (exit 1 on failure)."),
    ] = False,
) -> None:
    """Run the demo as local processes: the control plane (SQLite), four app instances, their
    Envoy sidecars and the gateway, from the same envoy-configs/ as docker-compose.yml.

    Uses ports 8000 (gateway), 8080 (API), 18000 (xDS), 81xx-83xx (apps), 151xx-153xx
    (sidecars) and 99xx (Envoy admin) on 127.0.0.1. Ctrl-C stops everything it started.
    """
    if ctx.invoked_subcommand is not None:
        return
    from meshplane.demo import DemoOptions, run_demo

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with suppress(KeyboardInterrupt):
        raise typer.Exit(asyncio.run(run_demo(DemoOptions(api_port, check))))


@demo_app.command("configs")
def configs(
    directory: Annotated[
        Path | None, typer.Option(help="Where to write (default: envoy-configs/demo).")
    ] = None,
) -> None:
    """Regenerate the demo's Prometheus configuration and docker-compose.yml from its topology.
    (Its Envoy bootstraps are fetched from the running control plane: `demo bootstraps`.)"""
    from meshplane.demo import config_dir, render_compose, render_prometheus

    target = directory or config_dir()
    target.mkdir(parents=True, exist_ok=True)
    (target / "prometheus.yml").write_text(render_prometheus())
    typer.echo(f"wrote {target / 'prometheus.yml'}")
    if directory is None:
        compose = config_dir().parents[1] / "docker-compose.yml"
        compose.write_text(render_compose())
        typer.echo(f"wrote {compose}")


@demo_app.command("bootstraps")
def bootstraps(
    out: Annotated[Path, typer.Option(help="Where to write one bootstrap per demo Envoy.")],
    xds_host: Annotated[
        str | None,
        typer.Option(
            help="The control plane's xDS address, as the Envoys reach it (default: every live "
            "replica's advertised address, which Envoy moves between)."
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Fetch the bootstrap of the demo's gateway and of every sidecar from the control plane
    (each with a node token of its own; files mode 0600): what docker-compose's mesh-config
    does before the Envoys start."""
    from meshplane.demo import fetch_bootstraps

    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        given = {"xds_host": xds_host} if xds_host else {}
        for path in fetch_bootstraps(client, out, **given):
            typer.echo(f"wrote {path}")
