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
        Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Print (or write) an Envoy bootstrap that points Envoy at this control plane.

    It carries the node token the control plane issued for the service or gateway: without it
    the xDS server refuses the proxy. Treat the file like a credential.

    Run Envoy with it: `envoy -c bootstrap.yaml`. The named gateway or service need not exist yet.
    """
    options = node_options(node)
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        text = client.bootstrap(options, format=format.value)
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    typer.echo(f"wrote {output}", err=True)
