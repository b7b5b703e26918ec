"""Generate an Envoy bootstrap, so nobody writes Envoy YAML by hand.

The query is the node contract itself (`meshplane.model.NodeOptions`): its fields, bounds and
descriptions are the parameters of this operation, and its checks are the 422s. Defaults come
from the server: the xDS address is the advertised one, and the node id is
`<role>-<gateway or service>-<admin_port>`. The named gateway or service need not exist yet:
Envoy starts, connects and simply gets no listener (gateway) or no peers until it is created.
Each bootstrap carries a node token issued for it: stored hashed, expiring, revocable
(`meshplane tokens revoke`); its name is in the `Meshplane-Node-Token` header of the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import yaml
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from meshplane.api.deps import (
    AuthenticatorDep,
    BootstrapperDep,
    MaybeAuthorityDep,
    SettingsDep,
    StoreDep,
)
from meshplane.model import NODE_TOKEN_HEADER, XDS_SERVER, NodeOptions
from meshplane.store import ReplicaRepo
from meshplane.xds import XdsTls, render_bootstrap

__all__ = ["router"]

router = APIRouter(prefix="/bootstrap", tags=["bootstrap"])

# The same document either way: YAML is the JSON object's other spelling.
_FORMATS = {
    "application/yaml": {"schema": {"type": "object"}},
    "application/json": {"schema": {"type": "object"}},
}


class BootstrapQuery(NodeOptions):
    """The node's options, and the bootstrap's format; unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore", validate_by_name=False)

    format: Literal["yaml", "json"] = Field("yaml", description="yaml (default) or json.")
    token_ttl_seconds: float | None = Field(
        None,
        gt=60,
        le=10 * 366 * 86400,
        description="Lifetime of the node token the bootstrap carries; at most the server's "
        "(node_token_ttl_seconds, 365 days unless configured), which is also the default.",
    )


@router.get(
    "",
    operation_id="get_bootstrap",
    response_class=Response,
    responses={
        200: {
            "description": "The Envoy bootstrap",
            "content": _FORMATS,
            "headers": {NODE_TOKEN_HEADER: {"description": "The name of its node token"}},
        }
    },
)
async def bootstrap(
    settings: SettingsDep,
    authenticator: AuthenticatorDep,
    authority: MaybeAuthorityDep,
    query: Annotated[BootstrapQuery, Query()],
    caller: BootstrapperDep,
    store: StoreDep,
) -> Response:
    """An Envoy bootstrap pointing at this control plane, as YAML (default) or JSON.

    422 names any parameter the role requires and that is missing, or the option that does not
    fit (e.g. a sidecar's ports colliding). A `bootstrap` token gets bootstraps only for the
    identities of its scope (403 for any other). Every call issues a new node token, valid
    for `token_ttl_seconds`; `Meshplane-Node-Token` names it. Unless `xds_host` is given, Envoy
    gets every live replica's xDS address, this one's first, and moves to another when its
    replica goes away.
    """
    options = NodeOptions.model_validate(query.model_dump(exclude={"format", "token_ttl_seconds"}))
    if caller.role == "bootstrap" and options.subject.text not in caller.scope:
        raise HTTPException(
            403, f"the token {caller.name!r} may not fetch a bootstrap for {options.subject.text}"
        )
    options = options.with_server_defaults(
        xds_host=settings.advertise_address, xds_port=settings.xds_port
    )
    tls = None
    if settings.xds_serves_tls and authority is not None:
        tls = XdsTls(
            trusted_ca="".join(authority.state.trust_bundle),
            server_id=XDS_SERVER.spiffe_id(settings.trust_domain),
        )
    ttl = min(query.token_ttl_seconds or float("inf"), settings.node_token_ttl_seconds)
    name, token = await authenticator.issue_node_token(
        options.subject.text, ttl=timedelta(seconds=ttl), created_by=caller.name
    )
    replicas: list[tuple[str, int]] = []
    if query.xds_host is None:
        live = await ReplicaRepo(store.database).live(datetime.now(UTC))
        replicas = [(r.xds_host, r.xds_port) for r in live]
    document = render_bootstrap(options, token=token, tls=tls, replicas=replicas)
    headers = {NODE_TOKEN_HEADER: name}
    if query.format == "json":
        return JSONResponse(document, headers=headers)
    body = yaml.safe_dump(document, sort_keys=False)
    return Response(body, media_type="application/yaml", headers=headers)
