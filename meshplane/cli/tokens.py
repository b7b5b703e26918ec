"""`meshplane tokens ...`: create, list and revoke API tokens (an admin token's job)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.output import ApiToken, ApiUrl, reporting, table

__all__ = ["tokens_app"]

tokens_app = typer.Typer(help="API tokens: who may call the REST API.", no_args_is_help=True)


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Names the token (in lists and the change log).")],
    role: Annotated[
        str, typer.Option(help="admin, editor, viewer, or bootstrap (with --scope).")
    ] = "viewer",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="For --role bootstrap: an identity it may bootstrap (service/orders, "
            "gateway/edge); repeat for more."
        ),
    ] = None,
    ttl: Annotated[float | None, typer.Option(help="Lifetime in seconds (default: none).")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: ApiToken = None,
) -> None:
    """Create an API token and print it: the only time it is shown (only a hash is kept)."""
    with ApiClient(api_url, token=token) as client, reporting():
        created = client.create_token(name, role, scope=scope or [], ttl_seconds=ttl)
        typer.echo(created["token"])


@tokens_app.command("list")
def list_tokens(api_url: ApiUrl = DEFAULT_API_URL, token: ApiToken = None) -> None:
    """Every API token: name, role, scope, expiry and last use (never the token)."""
    with ApiClient(api_url, token=token) as client, reporting():
        rows = (
            (
                t["name"],
                t["role"],
                ",".join(t["scope"]) or "-",
                _when(t["expires_at"]),
                _when(t["last_used_at"]),
            )
            for t in client.tokens()
        )
        typer.echo(table(("NAME", "ROLE", "SCOPE", "EXPIRES", "LAST USED"), rows))


@tokens_app.command("revoke")
def revoke_token(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    api_url: ApiUrl = DEFAULT_API_URL,
    token: ApiToken = None,
) -> None:
    """Revoke a token at once: its next call is refused."""
    with ApiClient(api_url, token=token) as client, reporting():
        client.revoke_token(name)
        typer.echo(f"revoked {name}")
