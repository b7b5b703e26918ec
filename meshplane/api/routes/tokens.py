"""API and node tokens: create (the token is answered once), list (never the token), revoke.

Admin only. A `bootstrap` token needs a scope: the identities (`service/orders`,
`gateway/edge`: Subject texts) it may fetch bootstraps for; a `node` token (what a bootstrap
carries; each bootstrap issues one) names the one identity it speaks for on xDS; the other
roles take none. Revoking a node token ends its proxies' xDS streams within a second, on every
replica, and refuses their reconnects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Self

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from meshplane.api.deps import AdminDep, AuthenticatorDep, CallerDep
from meshplane.api.schemas import ErrorOut
from meshplane.model import NAME_PATTERN, Subject
from meshplane.store import NODE_ROLE, ApiToken, Role

__all__ = ["router"]

router = APIRouter(prefix="/tokens", tags=["tokens"])

_MAX_TTL = 10 * 366 * 86400

TokenName = Annotated[
    str,
    Path(pattern=NAME_PATTERN, max_length=63, description="The token's name."),
]


def _identity(text: str) -> str:
    return Subject.parse(text).text


class TokenCreate(BaseModel):
    """A new API token."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Unique; names the "
        "token in lists, in the change log (who wrote) and to revoke it.",
    )
    role: Role = Field(
        description="admin (everything), editor (the mesh, explain, leaf rotation), viewer "
        "(read only; no bootstraps), bootstrap (bootstraps for its scope only), node (xDS "
        "only, for the one identity of its scope; bootstraps issue these)."
    )
    scope: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="For a bootstrap token: the identities it may fetch bootstraps for, "
        "e.g. ['service/orders', 'gateway/edge']; for a node token, its one identity.",
    )
    ttl_seconds: float | None = Field(
        None, gt=0, le=_MAX_TTL, description="Lifetime; none: valid until revoked."
    )

    @field_validator("name")
    @classmethod
    def _not_auto(cls, name: str) -> str:
        if name == "auto":
            raise ValueError("'auto' names auto-registration in the change log; choose another")
        return name

    @field_validator("scope")
    @classmethod
    def _identities(cls, scope: list[str]) -> list[str]:
        return sorted({_identity(text) for text in scope})

    @model_validator(mode="after")
    def _scope_for_bootstrap(self) -> Self:
        if self.role == "bootstrap" and not self.scope:
            raise ValueError("a bootstrap token needs a scope: the identities it may bootstrap")
        if self.role == NODE_ROLE and len(self.scope) != 1:
            raise ValueError("a node token needs a scope of exactly one identity")
        if self.role not in ("bootstrap", NODE_ROLE) and self.scope:
            raise ValueError(f"only a bootstrap or node token takes a scope, not {self.role!r}")
        return self


class TokenOut(BaseModel):
    """A stored API token; the token itself is never shown again."""

    name: str
    role: Role
    scope: list[str]
    created_at: datetime
    created_by: str = Field(description="The name of the token that created it.")
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute.")

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            name=token.name,
            role=token.role,
            scope=list(token.scope),
            created_at=token.created_at,
            created_by=token.created_by,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token: shown this once, only its hash is stored.")


class TokenList(BaseModel):
    items: list[TokenOut]


class Revoked(BaseModel):
    """The tokens a revocation deleted, by name."""

    revoked: list[str]


@router.post(
    "",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_token",
    responses={409: {"model": ErrorOut, "description": "A token of that name exists"}},
)
async def create_token(
    body: TokenCreate, authenticator: AuthenticatorDep, caller: AdminDep
) -> TokenCreated:
    """Create an API token; the answer holds the token, shown this once (only a hash is kept).
    Send it as `Authorization: Bearer <token>`."""
    expires_at = None
    if body.ttl_seconds is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=body.ttl_seconds)
    value = await authenticator.create(
        body.name, body.role, scope=body.scope, expires_at=expires_at, created_by=caller.name
    )
    created = next(t for t in await authenticator.tokens.all() if t.name == body.name)
    return TokenCreated(**TokenOut.of(created).model_dump(), token=value)


@router.get("/me", response_model=TokenOut, operation_id="get_own_token")
async def own_token(caller: CallerDep) -> TokenOut:
    """The token this request carries: its name, role and scope (any role; the dashboard asks
    it to know what to offer)."""
    return TokenOut.of(caller)


@router.get("", response_model=TokenList, operation_id="list_tokens")
async def list_tokens(
    authenticator: AuthenticatorDep,
    _caller: AdminDep,
    role: Annotated[Role | None, Query(description="Only the tokens of this role.")] = None,
) -> TokenList:
    """Every token (or those of `role`): name, role, scope, expiry and last use; never the
    token."""
    tokens = (
        await authenticator.tokens.all()
        if role is None
        else await authenticator.tokens.all((role,))
    )
    return TokenList(items=[TokenOut.of(t) for t in tokens])


@router.delete("", response_model=Revoked, operation_id="revoke_node_tokens")
async def revoke_node_tokens(
    authenticator: AuthenticatorDep,
    caller: AdminDep,
    identity: Annotated[
        str,
        AfterValidator(_identity),
        Query(description="Revoke every node token of this identity, e.g. service/orders."),
    ],
) -> Revoked:
    """Revoke every node token of an identity at once: each proxy of it is disconnected
    within a second and refused until it has a new bootstrap. Answers the names revoked."""
    revoked = await authenticator.revoke_identity(identity, by=caller.name)
    return Revoked(revoked=[t.name for t in revoked])


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="revoke_token",
    responses={404: {"model": ErrorOut, "description": "No token of that name"}},
)
async def revoke_token(name: TokenName, authenticator: AuthenticatorDep, caller: AdminDep) -> None:
    """Revoke a token at once: its next call is a 401; a node token's xDS streams end within a
    second and it opens no new one."""
    await authenticator.revoke(name, by=caller.name)
