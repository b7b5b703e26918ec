"""Dependency aliases: a handler's signature shows everything it needs.

The objects live on `app.state`, put there by `create_app`; nothing here is a global. Every
dependency is `async def` although none awaits: FastAPI runs a plain `def` dependency on a worker
thread, two thread hops per request for a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from meshplane.certs import CertificateAuthority, SecretBox
from meshplane.settings import Settings
from meshplane.store import IfMatch, Store
from meshplane.xds import StatusSource

__all__ = [
    "ANSWERS",
    "AuthorityDep",
    "BoxDep",
    "IfMatchDep",
    "MaybeAuthorityDep",
    "SettingsDep",
    "StatusDep",
    "StoreDep",
    "StoreOrMemoryDep",
    "parse_if_match",
]


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _store_or_memory(request: Request) -> Store:
    """The store, for a route that answers from memory when the database is unreachable (so
    it declares no 503)."""
    store: Store = request.app.state.store
    return store


async def _status(request: Request) -> StatusSource:
    status: StatusSource = request.app.state.status
    return status


async def _authority(request: Request) -> CertificateAuthority:
    authority: CertificateAuthority | None = request.app.state.authority
    if authority is None:
        raise HTTPException(503, "this API runs without a certificate authority")
    return authority


async def _maybe_authority(request: Request) -> CertificateAuthority | None:
    authority: CertificateAuthority | None = request.app.state.authority
    return authority


async def _box(request: Request) -> SecretBox | None:
    box: SecretBox | None = request.app.state.box
    return box


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def parse_if_match(value: str | None) -> IfMatch:
    """Read an If-Match header: `"7"` (as sent in ETag), bare `7`, or `*`.

    Raises ValueError for anything else, including weak tags (W/"7"), which If-Match's strong
    comparison can never match.
    """
    if value is None:
        return None
    text = value.strip()
    if text == "*":
        return "*"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not text.isdigit():
        raise ValueError(f'If-Match must be a version as sent in ETag ("7"), 7 or *; got {value!r}')
    return int(text)


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='Only write if the stored version is this one ("7", 7), '
            "or if the resource exists at all (*); otherwise 412 and nothing changes.",
        ),
    ] = None,
) -> IfMatch:
    try:
        return parse_if_match(if_match)
    except ValueError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "If-Match"),
                    "msg": str(exc),
                    "input": if_match,
                }
            ]
        ) from None


ANSWERS: dict[Callable[..., Any], dict[int, str]] = {
    _store: {
        503: "The database is unreachable; nothing was half-written. Try again after the "
        "Retry-After header's seconds."
    },
    _authority: {
        503: "This control plane runs without a certificate authority, or its database is "
        "unreachable."
    },
    _if_match: {412: "If-Match does not name the stored version; nothing changed."},
}
"""The error answers a route can give because it depends on each of these (see api/openapi.py)."""

StoreDep = Annotated[Store, Depends(_store)]
StoreOrMemoryDep = Annotated[Store, Depends(_store_or_memory)]
StatusDep = Annotated[StatusSource, Depends(_status)]
SettingsDep = Annotated[Settings, Depends(_settings)]
AuthorityDep = Annotated[CertificateAuthority, Depends(_authority)]
BoxDep = Annotated[SecretBox | None, Depends(_box)]
MaybeAuthorityDep = Annotated[CertificateAuthority | None, Depends(_maybe_authority)]
IfMatchDep = Annotated[IfMatch, Depends(_if_match)]
