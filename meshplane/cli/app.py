"""The `meshplane` command: run the control plane, or manage a running one over its REST API.

The composition root of the client side: this module assembles every command into one Typer app.
`serve` builds Settings (flags over MESHPLANE_* variables), configures logging (the only place
that does) and hands over to `meshplane.serve`; the other commands live in their own modules.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from meshplane.cli.api_client import describe
from meshplane.cli.bootstrap import bootstrap
from meshplane.cli.certs import ca_app, certs_app
from meshplane.cli.demo import demo_app
from meshplane.cli.explain import explain
from meshplane.cli.history import diff, history, rollback
from meshplane.cli.output import fail
from meshplane.cli.proxy import proxy
from meshplane.cli.resources import apply, delete, get, status
from meshplane.cli.tokens import tokens_app
from meshplane.logs import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="meshplane",
    help="A service-mesh control plane for Envoy.",
    no_args_is_help=True,
    add_completion=False,
)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def serve(
    database_url: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///FILE or postgresql://USER@HOST/DB. (default: sqlite:///meshplane.db)"
        ),
    ] = None,
    api_host: Annotated[
        str | None, typer.Option(help="Address the REST API listens on. (default: 127.0.0.1)")
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the REST API; 0 picks a free one. (default: 8080)")
    ] = None,
    xds_host: Annotated[
        str | None,
        typer.Option(
            help="Address the xDS (ADS) server listens on; TLS on any but a loopback address. "
            "(default: 0.0.0.0)"
        ),
    ] = None,
    xds_port: Annotated[
        int | None,
        typer.Option(help="Port of the xDS server; 0 picks a free one. (default: 18000)"),
    ] = None,
    advertise_address: Annotated[
        str | None,
        typer.Option(help="Host generated bootstraps point Envoy at. (default: 127.0.0.1)"),
    ] = None,
    trust_domain: Annotated[
        str | None,
        typer.Option(help="SPIFFE trust domain of the mesh. (default: meshplane.local)"),
    ] = None,
    xds_tls: Annotated[
        bool | None,
        typer.Option(
            "--xds-tls/--no-xds-tls",
            help="Serve xDS over TLS with a certificate from the mesh CA even on a loopback "
            "address (always on any other, unless --xds-plaintext). (default: off)",
        ),
    ] = None,
    xds_plaintext: Annotated[
        bool | None,
        typer.Option(
            "--xds-plaintext",
            help="Serve xDS in plaintext on a non-loopback address: node tokens then cross the "
            "network in clear. (default: off)",
        ),
    ] = None,
    api_tls: Annotated[
        bool | None,
        typer.Option(
            "--api-tls",
            help="Serve the REST API over TLS with a certificate from the mesh CA; the roots "
            "are written to meshplane-ca.pem (MESHPLANE_CA_BUNDLE_FILE) for clients' --ca-file. "
            "(default: off)",
        ),
    ] = None,
    api_tls_cert: Annotated[
        Path | None,
        typer.Option(help="Serve the REST API over TLS with this certificate chain (PEM file)."),
    ] = None,
    api_tls_key: Annotated[
        Path | None, typer.Option(help="The private key (PEM file) of --api-tls-cert.")
    ] = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            help="Where the first start writes its admin API token (mode 0600), unless "
            "MESHPLANE_ADMIN_TOKEN is set. (default: meshplane.admin-token beside the SQLite file)"
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="Log verbosity.")] = LogLevel.INFO,
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one object per line with the key=value pairs as fields.",
            envvar="MESHPLANE_LOG_FORMAT",
        ),
    ] = "text",
) -> None:
    """Run the control plane (REST API and xDS server) until interrupted.

    Each option left out falls back to its MESHPLANE_* environment variable (e.g.
    MESHPLANE_DATABASE_URL), then to the default shown.
    """
    # Imported here: only serve needs gRPC, uvicorn and the xDS machinery.
    from meshplane.serve import serve as run
    from meshplane.settings import Settings
    from meshplane.store import DatabaseInUse

    given: dict[str, Any] = {
        "database_url": database_url,
        "api_host": api_host,
        "api_port": api_port,
        "xds_host": xds_host,
        "xds_port": xds_port,
        "advertise_address": advertise_address,
        "trust_domain": trust_domain,
        "xds_tls": xds_tls,
        "xds_plaintext": xds_plaintext,
        "api_tls": api_tls,
        "api_tls_cert": api_tls_cert,
        "api_tls_key": api_tls_key,
        "admin_token_file": admin_token_file,
    }
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        fail(describe(exc.errors()))
    if log_format not in ("text", "json"):
        fail(f"--log-format must be text or json, not {log_format!r}")
    configure_logging(log_level, log_format)
    try:
        with suppress(KeyboardInterrupt):
            asyncio.run(run(settings))
    except DatabaseInUse as exc:
        fail(str(exc))


for command in (serve, apply, get, delete, history, diff, rollback, status, bootstrap):
    app.command()(command)
app.add_typer(certs_app, name="certs")
app.add_typer(ca_app, name="ca")
app.add_typer(demo_app, name="demo")
app.add_typer(tokens_app, name="tokens")
app.command("proxy")(proxy)
app.command("explain")(explain)


def main() -> None:
    """The `meshplane` console script."""
    app()
