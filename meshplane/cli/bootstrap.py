"""`meshplane bootstrap`: print or write the Envoy bootstrap the control plane renders."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.node_flags import node_options, with_node_flags
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, fail, reporting
from meshplane.model import NodeOptions
from meshplane.private_files import write_private

__all__ = ["bootstrap"]


class BootstrapFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


@with_node_flags(*NodeOptions.model_fields)
def bootstrap(
    node: dict[str, Any],
    format: Annotated[
        BootstrapFormat, typer.Option("--format", help="Output format.")
    ] = BootstrapFormat.YAML,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write to this file (mode 0600) instead of stdout."),
    ] = None,
    token_ttl: Annotated[
        float | None,
        typer.Option(
            "--token-ttl",
            help="Seconds the node token it carries stays valid (default: the server's, "
            "365 days unless configured).",
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Print (or write) an Envoy bootstrap that points Envoy at this control plane.

    It carries a node token the control plane issues for the service or gateway (each call
    issues a new one; its name is printed on stderr): without it the xDS server refuses the
    proxy. Treat the file like a credential; `meshplane tokens revoke NAME` (or `--identity
    service/NAME` for all of them) disconnects the proxies using it.

    Run Envoy with it: `envoy -c bootstrap.yaml`. The named gateway or service need not exist yet.
    """
    options = node_options(node)
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        fetched = client.bootstrap(options, format=format.value, token_ttl_seconds=token_ttl)
    text = fetched.text
    typer.echo(f"node token {fetched.token_name} for {options.subject.text}", err=True)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        write_private(output, text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    typer.echo(f"wrote {output}", err=True)
