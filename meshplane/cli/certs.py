"""`meshplane certs ...` and `meshplane ca ...`: see and rotate the mesh's certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, fail, reporting, table

__all__ = ["ca_app", "certs_app"]

certs_app = typer.Typer(
    help="Identity certificates of services and gateways.", no_args_is_help=True
)
ca_app = typer.Typer(
    help="The mesh's certificate authority and root rotation.", no_args_is_help=True
)


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"


def _certificates_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("IDENTITY", "SERIAL", "ISSUER", "NOT AFTER", "NEXT RENEWAL"),
        (
            (
                c["spiffe_id"],
                c["serial"][:16],
                c["issuer_serial"][:16],
                _when(c["not_after"]),
                _when(c["next_renewal"]),
            )
            for c in items
        ),
    )


@certs_app.command("list")
def list_certificates(
    api_url: ApiUrl = DEFAULT_API_URL, ca_file: CaFile = None, token: ApiToken = None
) -> None:
    """Each identity's certificate: serial, issuer, expiry and next automatic renewal."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        typer.echo(_certificates_table(client.certificates()))


@certs_app.command("rotate")
def rotate_certificates(
    service: Annotated[str | None, typer.Option(help="Rotate this service's certificate.")] = None,
    gateway: Annotated[str | None, typer.Option(help="Rotate this gateway's certificate.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rotate every certificate.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Issue new certificates now; Envoys pick them up over SDS without a restart."""
    if sum((service is not None, gateway is not None, all_)) != 1:
        fail("give exactly one of --service NAME, --gateway NAME or --all")
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        issued = client.rotate_certificates(service=service, gateway=gateway, all=all_)
    typer.echo(_certificates_table(issued))


def _ca_text(status: dict[str, Any]) -> str:
    header = (
        f"trust domain: {status['trust_domain']}\n"
        f"phase:        {status['phase']}  {status['detail']}\n"
    )
    roots = table(
        ("ID", "SERIAL", "STATE", "NOT AFTER", "RETIRES"),
        (
            (
                str(r["id"]),
                r["serial"][:16],
                r["state"],
                _when(r["not_after"]),
                _when(r.get("retire_at")),
            )
            for r in status["roots"]
        ),
    )
    return header + roots


@ca_app.command("status")
def ca_status(
    api_url: ApiUrl = DEFAULT_API_URL, ca_file: CaFile = None, token: ApiToken = None
) -> None:
    """The roots (issuing, incoming, outgoing, retired) and the phase of a root rotation."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        typer.echo(_ca_text(client.ca()))


@ca_app.command("rotate")
def ca_rotate(
    overlap: Annotated[
        float | None,
        typer.Option(
            help="Seconds both roots stay trusted after re-issuing, 0 to 31536000 (365 days); "
            "the server's MESHPLANE_CA_OVERLAP_SECONDS when not given."
        ),
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="Use this CA certificate (PEM) instead of a new root.")
    ] = None,
    private_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    chain: Annotated[
        Path | None, typer.Option(help="For an intermediate: its chain up to the root (PEM).")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Rotate the root: trust both, re-issue every leaf, then drop the old root.

    Each step waits until every connected proxy has acknowledged the previous one, so no
    connection fails. Follow the phases with `meshplane ca status`; end the overlap early with
    `meshplane ca finish`, or go back with `meshplane ca abort`. An imported CA is checked first
    (CA certificate, matching ECDSA or RSA key, valid for at least a leaf lifetime, chain signed
    up to its root); the server refuses it naming the problem.
    """
    if (certificate is None) != (private_key is None):
        fail("give both --certificate and --private-key, or neither")
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        status = client.rotate_ca(
            overlap_seconds=overlap,
            certificate=certificate.read_text() if certificate else None,
            private_key=private_key.read_text() if private_key else None,
            chain=chain.read_text() if chain else "",
        )
    typer.echo(_ca_text(status))


@ca_app.command("finish")
def ca_finish(
    api_url: ApiUrl = DEFAULT_API_URL, ca_file: CaFile = None, token: ApiToken = None
) -> None:
    """End a rotation's overlap now: the old root leaves the trust bundle.

    A rotation that stopped on an error goes on from where it stopped, without overlap.
    """
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        typer.echo(_ca_text(client.finish_ca_rotation()))


@ca_app.command("abort")
def ca_abort(
    api_url: ApiUrl = DEFAULT_API_URL, ca_file: CaFile = None, token: ApiToken = None
) -> None:
    """Abort a root rotation (under way or stopped on an error): go back to the previous root.

    In adding-root the new root leaves the trust bundle at once (it has signed nothing yet). In
    reissuing or overlap the previous root signs again and every certificate is re-issued from
    it while both roots stay trusted (phase aborting); once every proxy holds its new
    certificate, the new root leaves the trust bundle. No connection fails on the way.

    Refused when there is nothing to abort, an abort is under way, or the previous root can no
    longer sign (expired, or expiring within a certificate lifetime): then finish instead.
    """
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        typer.echo(_ca_text(client.abort_ca_rotation()))
