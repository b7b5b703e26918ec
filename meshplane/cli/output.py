"""What every client command shares: the --api-url and --ca-file options, error reporting and
tables."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from meshplane.cli.api_client import ApiError, verifying

__all__ = ["ApiToken", "ApiUrl", "CaFile", "fail", "reporting", "table"]

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MESHPLANE_API_URL",
        help="Base URL of the meshplane REST API.",
        show_default=True,
    ),
]

ApiToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MESHPLANE_TOKEN",
        help="API token; default: MESHPLANE_ADMIN_TOKEN, else the admin token file the server "
        "wrote at its first start (meshplane.admin-token beside its SQLite file).",
        show_default=False,
    ),
]


def _readable_roots(value: Path | None) -> Path | None:
    """Refuse a --ca-file that is not PEM roots before any command runs."""
    if value is not None:
        try:
            verifying(value)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise typer.BadParameter(f"cannot read CA certificates from {value}: {exc}") from None
    return value


CaFile = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        envvar="MESHPLANE_CA_FILE",
        help="PEM roots to verify an https API with (e.g. the meshplane-ca.pem that "
        "`meshplane serve --api-tls` writes); default: the usual public roots.",
        callback=_readable_roots,
    ),
]


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def reporting() -> Iterator[None]:
    """Turn an API refusal into its message on stderr and exit status 1."""
    try:
        yield
    except ApiError as exc:
        fail(exc.message)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
