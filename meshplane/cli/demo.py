"""`meshplane demo` (run the demo locally) and `meshplane demo configs` (regenerate its files)."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

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
    """Regenerate the demo's Envoy bootstraps and docker-compose.yml from its topology."""
    from meshplane.demo import config_dir, render_compose, render_prometheus, write_configs

    target = directory or config_dir()
    for path in write_configs(target):
        typer.echo(f"wrote {path}")
    (target / "prometheus.yml").write_text(render_prometheus())
    typer.echo(f"wrote {target / 'prometheus.yml'}")
    if directory is None:
        compose = config_dir().parents[1] / "docker-compose.yml"
        compose.write_text(render_compose())
        typer.echo(f"wrote {compose}")
