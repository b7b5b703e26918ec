"""Dependency aliases: a handler's signature shows everything it needs.

The objects live on `app.state`, put there by `create_app`; nothing here is a global. Every
dependency is `async def` although none awaits: FastAPI runs a plain `def` dependency on a worker
thread, two thread hops per request for a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from meshplane.api.auth import Authenticator
from meshplane.api.core_loop import CoreLoop
from meshplane.certs import CertificateAuthority
from meshplane.errors import InvalidRequest, Unauthenticated
from meshplane.model import kind_named
from meshplane.settings import Settings
from meshplane.store import ApiToken, IfMatch, Role, Store
from meshplane.xds import ChangePreview, StatusSource

__all__ = [
    "ANSWERS",
    "MAX_MESSAGE",
    "AdminDep",
    "AuthenticatorDep",
    "AuthorityDep",
    "BootstrapperDep",
    "CallerDep",
    "ChangeMessageDep",
    "CoreDep",
    "DryRun",
    "EditorDep",
    "IfMatchDep",
    "KindFilterDep",
    "MaybeAuthorityDep",
    "PreviewDep",
    "SettingsDep",
    "StatusDep",
    "StoreDep",
    "StoreOrMemoryDep",
    "ValidateEnvoy",
    "ViewerDep",
    "parse_if_match",
]


def _state(attribute: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that answers `app.state.<attribute>`; its alias below states the type.

    Each call makes a new dependency, so two over one object can declare different answers
    in ANSWERS."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, attribute)

    return dependency


_store = _state("store")
# The store again, for a route that answers from memory when the database is unreachable (so it
# declares no 503).
_store_or_memory = _state("store")
_status = _state("status")
_core = _state("core")
_preview = _state("preview")
_maybe_authority = _state("authority")
_settings = _state("settings")
_authenticator = _state("authenticator")
# The authenticator again, for the routes that read or write the token table itself.
_token_table = _state("authenticator")


async def _authority(request: Request) -> CertificateAuthority:
    authority: CertificateAuthority | None = request.app.state.authority
    if authority is None:
        raise HTTPException(503, "this API runs without a certificate authority")
    return authority


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token (`meshplane tokens create`; the first admin token is in "
    "MESHPLANE_ADMIN_TOKEN or the file `meshplane serve` logs at its first start).",
)


async def _caller(
    authenticator: Annotated[Authenticator, Depends(_authenticator)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> ApiToken:
    """The API token the request carries as `Authorization: Bearer <token>`; 401 without a
    live one (missing, unknown, revoked or expired)."""
    if credentials is None:
        raise Unauthenticated("this operation needs an API token: Authorization: Bearer <token>")
    token = await authenticator.authenticate(credentials.credentials)
    if token is None:
        raise Unauthenticated("the API token is unknown, revoked or expired")
    return token


def _allowing(*roles: Role) -> Callable[..., Any]:
    """A dependency that answers 403 unless the caller's role is one of `roles`."""

    async def check(caller: Annotated[ApiToken, Depends(_caller)]) -> ApiToken:
        if caller.role not in roles:
            raise HTTPException(
                403, f"the token's role {caller.role!r} may not do this (it needs {_or(roles)})"
            )
        return caller

    return check


def _or(roles: tuple[Role, ...]) -> str:
    return " or ".join(repr(role) for role in roles)


_viewer = _allowing("admin", "editor", "viewer")
_editor = _allowing("admin", "editor")
_admin = _allowing("admin")
_bootstrapper = _allowing("admin", "editor", "bootstrap")


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


MAX_MESSAGE = 1000  # characters of a change's message


async def _kind_filter(
    kind: Annotated[str | None, Query(description="Only this kind (singular or plural).")] = None,
) -> str | None:
    """The `kind` query of a listing, as a plural; 422 naming it if no kind has that name."""
    if kind is None:
        return None
    try:
        return kind_named(kind).plural
    except KeyError as exc:
        raise InvalidRequest(exc.args[0], loc=("query", "kind")) from None


async def _change_message(
    message: Annotated[
        str | None,
        Header(
            alias="X-Change-Message",
            max_length=MAX_MESSAGE,
            description="Why this change is made: kept with its revision in the history "
            "(`GET /api/v1/changes`).",
        ),
    ] = None,
) -> str | None:
    if message is None or not message.strip():
        return None
    return message.strip()


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
    _token_table: {
        503: "The database is unreachable and this server has not read its API tokens yet."
    },
    _caller: {401: "No API token, or one that is unknown, revoked or expired."},
    _viewer: {403: "The token's role may not read (a bootstrap token)."},
    _editor: {403: "The token's role may not do this (it needs admin or editor)."},
    _admin: {403: "The token's role may not do this (it needs admin)."},
    _bootstrapper: {
        403: "The token's role may not fetch bootstraps, or not for this identity (a "
        "bootstrap token's scope)."
    },
}
"""The error answers a route can give because it depends on each of these (see api/openapi.py)."""

StoreDep = Annotated[Store, Depends(_store)]
StoreOrMemoryDep = Annotated[Store, Depends(_store_or_memory)]
StatusDep = Annotated[StatusSource, Depends(_status)]
CoreDep = Annotated[CoreLoop, Depends(_core)]
PreviewDep = Annotated[ChangePreview | None, Depends(_preview)]
"""What a dry run would change on the connected proxies (None: an API without xDS)."""
"""The control plane's loop, where the proxy table and the CA live (see api/core_loop.py)."""
SettingsDep = Annotated[Settings, Depends(_settings)]
AuthorityDep = Annotated[CertificateAuthority, Depends(_authority)]
MaybeAuthorityDep = Annotated[CertificateAuthority | None, Depends(_maybe_authority)]
IfMatchDep = Annotated[IfMatch, Depends(_if_match)]
ChangeMessageDep = Annotated[str | None, Depends(_change_message)]
KindFilterDep = Annotated[str | None, Depends(_kind_filter)]
"""An optional `kind` query (singular or plural), as the kind's plural."""
"""Why a write is made (X-Change-Message), kept in the history."""
DryRun = Annotated[
    bool, Query(description="Check everything as the real write would; write nothing.")
]
"""`?dry_run=true` on a batch write (apply, rollback)."""
ValidateEnvoy = Annotated[
    bool,
    Query(
        description="Before anything is stored, check what every affected proxy group would "
        "be sent with `envoy --mode validate`: a configuration Envoy would reject refuses the "
        "write (422, with Envoy's error); with dry_run, each group says it in `envoy_error`."
    ),
]
"""`?validate_envoy=true` on a batch write."""
AuthenticatorDep = Annotated[Authenticator, Depends(_token_table)]
CallerDep = Annotated[ApiToken, Depends(_caller)]
"""The caller, whatever its role."""
ViewerDep = Annotated[ApiToken, Depends(_viewer)]
"""The caller, who may read the mesh (admin, editor, viewer): never a secret or a bootstrap."""
EditorDep = Annotated[ApiToken, Depends(_editor)]
"""The caller, who may change the mesh, explain and rotate leaves (admin, editor)."""
AdminDep = Annotated[ApiToken, Depends(_admin)]
"""The caller, who may do anything: tokens and the CA included (admin)."""
BootstrapperDep = Annotated[ApiToken, Depends(_bootstrapper)]
"""The caller, who may fetch bootstraps (admin, editor; bootstrap for its scope's identities)."""
