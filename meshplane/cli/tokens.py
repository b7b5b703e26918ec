"""`meshplane tokens ...`: create, list and revoke API and node tokens (an admin token's job)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, fail, reporting, table

__all__ = ["tokens_app"]

tokens_app = typer.Typer(
    help="Tokens: who may call the REST API (API tokens) and which proxies may connect to xDS "
    "(node tokens, issued with each bootstrap).",
    no_args_is_help=True,
)


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Names the token (in lists and the change log).")],
    role: Annotated[
        str,
        typer.Option(
            help="admin, editor, viewer, bootstrap (with --scope), or node (an xDS credential; "
            "--scope names its one identity)."
        ),
    ] = "viewer",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="For --role bootstrap: an identity it may bootstrap (service/orders, "
            "gateway/edge); repeat for more. For --role node: its identity."
        ),
    ] = None,
    ttl: Annotated[float | None, typer.Option(help="Lifetime in seconds (default: none).")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Create a token and print it: the only time it is shown (only a hash is kept)."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        created = client.create_token(name, role, scope=scope or [], ttl_seconds=ttl)
        typer.echo(created["token"])


@tokens_app.command("list")
def list_tokens(
    role: Annotated[
        str | None, typer.Option(help="Only this role's tokens (e.g. node: the bootstraps').")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Every token: name, role, scope, expiry and last use (never the token). A node token's
    scope is the identity it speaks for."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        rows = (
            (
                t["name"],
                t["role"],
                ",".join(t["scope"]) or "-",
                _when(t["expires_at"]),
                _when(t["last_used_at"]),
            )
            for t in client.tokens(role)
        )
        typer.echo(table(("NAME", "ROLE", "SCOPE", "EXPIRES", "LAST USED"), rows))


@tokens_app.command("revoke")
def revoke_token(
    name: Annotated[str | None, typer.Argument(help="The token's name.")] = None,
    identity: Annotated[
        str | None,
        typer.Option(help="Instead of a name: every node token of this identity (service/orders)."),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Revoke a token at once: an API token's next call is refused; a node token's proxies are
    disconnected within a second and refused until they have a new bootstrap."""
    if (name is None) == (identity is None):
        fail("give a token's NAME or --identity service/NAME (every node token of it)")
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        if name is not None:
            client.revoke_token(name)
            typer.echo(f"revoked {name}")
            return
        assert identity is not None
        revoked = client.revoke_node_tokens(identity)
        typer.echo(f"revoked {len(revoked)} node tokens of {identity}: {', '.join(revoked) or '-'}")
