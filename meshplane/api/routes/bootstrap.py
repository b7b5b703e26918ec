"""Generate an Envoy bootstrap, so nobody writes Envoy YAML by hand.

The query is the node contract itself (`meshplane.model.NodeOptions`): its fields, bounds and
descriptions are the parameters of this operation, and its checks are the 422s. Defaults come
from the server: the xDS address is the advertised one, and the node id is
`<role>-<gateway or service>-<admin_port>`. The named gateway or service need not exist yet:
Envoy starts, connects and simply gets no listener (gateway) or no peers until it is created.
"""

from __future__ import annotations

from typing import Annotated, Literal

import yaml
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from meshplane.api.deps import BootstrapperDep, BoxDep, MaybeAuthorityDep, SettingsDep
from meshplane.model import XDS_SERVER, NodeOptions
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


@router.get(
    "",
    operation_id="get_bootstrap",
    response_class=Response,
    responses={200: {"description": "The Envoy bootstrap", "content": _FORMATS}},
)
async def bootstrap(
    settings: SettingsDep,
    box: BoxDep,
    authority: MaybeAuthorityDep,
    query: Annotated[BootstrapQuery, Query()],
    caller: BootstrapperDep,
) -> Response:
    """An Envoy bootstrap pointing at this control plane, as YAML (default) or JSON.

    422 names any parameter the role requires and that is missing, or the option that does not
    fit (e.g. a sidecar's ports colliding). A `bootstrap` token gets bootstraps only for the
    identities of its scope (403 for any other).
    """
    options = NodeOptions.model_validate(query.model_dump(exclude={"format"}))
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
    token = box.node_token(options.subject.text) if box is not None else None
    document = render_bootstrap(options, token=token, tls=tls)
    if query.format == "json":
        return JSONResponse(document)
    return Response(yaml.safe_dump(document, sort_keys=False), media_type="application/yaml")
