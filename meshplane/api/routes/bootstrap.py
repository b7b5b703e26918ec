"""Generate an Envoy bootstrap, so nobody writes Envoy YAML by hand.

Defaults come from the server: the xDS address is the advertised one, and the node id is
`<role>-<gateway or service>-<admin_port>`, unique per host because two Envoys on one host cannot
share an admin port. The named gateway or service need not exist yet: Envoy starts, connects and
simply gets no listener (gateway) or no peers until it is created.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal, cast

import yaml
from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError

from meshplane.api.deps import BoxDep, MaybeAuthorityDep, SettingsDep
from meshplane.certs.ca import spiffe_id
from meshplane.errors import excerpt
from meshplane.model import NAME_PATTERN, ZONE_PATTERN, EndpointSpec, Role
from meshplane.xds.bootstrap import XDS_SERVER_SUBJECT, BootstrapOptions, render_bootstrap

__all__ = ["router"]

router = APIRouter(prefix="/bootstrap", tags=["bootstrap"])

_Port = Annotated[int | None, Query(ge=1, le=65535)]
_NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=63)]
_REQUIRED: dict[Role, tuple[str, ...]] = {
    Role.GATEWAY: ("gateway",),
    Role.SIDECAR: ("service", "inbound_port", "app_port", "outbound_port"),
}
# The labels of an endpoint: what a sidecar's auto-registered endpoint will be checked against.
_LABELS = TypeAdapter[dict[str, str]](cast(Any, EndpointSpec.model_fields["labels"].annotation))
# The same document either way: YAML is the JSON object's other spelling.
_FORMATS = {
    "application/yaml": {"schema": {"type": "object"}},
    "application/json": {"schema": {"type": "object"}},
}


def _invalid(errors: list[dict[str, Any]]) -> RequestValidationError:
    return RequestValidationError(errors)


def _labels(items: list[str]) -> tuple[tuple[str, str], ...]:
    """Parse KEY=VALUE labels, checked as the sidecar's auto-registered endpoint will check them
    (a label accepted here but refused there would leave the sidecar unregistered)."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError("is not KEY=VALUE")
            _LABELS.validate_python({key: value})
        except ValueError as exc:  # pydantic's ValidationError is one too
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise _invalid(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "label"),
                        "msg": f"{excerpt(item)!r}: {reason}",
                    }
                ]
            ) from None
        pairs.append((key, value))
    return tuple(sorted(pairs))


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
    role: Annotated[Role, Query(description="gateway: an edge Envoy; sidecar: one per instance.")],
    gateway: Annotated[_NameQuery, Query(description="gateway: the gateway it serves.")] = None,
    service: Annotated[_NameQuery, Query(description="sidecar: the service it belongs to.")] = None,
    inbound_port: Annotated[
        _Port, Query(description="sidecar: where peers reach it (mTLS).")
    ] = None,
    app_port: Annotated[
        _Port, Query(description="sidecar: where its app listens on 127.0.0.1.")
    ] = None,
    outbound_port: Annotated[
        _Port, Query(description="sidecar: where its app sends outgoing requests.")
    ] = None,
    address: Annotated[
        str | None,
        Query(
            description="sidecar: the IP peers reach it at (default: the address its xDS "
            "connection comes from)."
        ),
    ] = None,
    node_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            description="Envoy's node id; default <role>-<gateway or service>-<admin_port>.",
        ),
    ] = None,
    admin_port: Annotated[
        int, Query(ge=1, le=65535, description="Envoy's admin port, on 127.0.0.1.")
    ] = 9901,
    xds_host: Annotated[
        str | None, Query(min_length=1, description="Default: the server's advertised address.")
    ] = None,
    xds_port: Annotated[
        int | None, Query(ge=1, le=65535, description="Default: the server's xDS port.")
    ] = None,
    delta: Annotated[
        bool, Query(description="Use delta xDS instead of state of the world.")
    ] = False,
    format: Annotated[
        Literal["yaml", "json"], Query(description="yaml (default) or json.")
    ] = "yaml",
    label: Annotated[
        list[str] | None,
        Query(description="sidecar: KEY=VALUE label of its auto-registered endpoint (repeat)."),
    ] = None,
    zone: Annotated[
        str | None,
        Query(
            pattern=ZONE_PATTERN,
            description="Where the proxy runs: it prefers endpoints in this zone and fails over "
            "to others when they are unhealthy; a sidecar's own endpoint gets this zone.",
        ),
    ] = None,
) -> Response:
    """An Envoy bootstrap pointing at this control plane, as YAML (default) or JSON.

    422 names any parameter the role requires and that is missing, or the option that does not
    fit (e.g. a sidecar's ports colliding).
    """
    given = {
        "gateway": gateway,
        "service": service,
        "inbound_port": inbound_port,
        "app_port": app_port,
        "outbound_port": outbound_port,
    }
    missing = [name for name in _REQUIRED[role] if given[name] is None]
    if missing:
        raise _invalid(
            [
                {"type": "missing", "loc": ("query", name), "msg": f"required when role is {role}"}
                for name in missing
            ]
        )
    labels = _labels(label or [])
    subject = f"gateway/{gateway}" if role == "gateway" else f"service/{service}"
    options = BootstrapOptions(
        role=role,
        node_id=node_id or f"{role}-{gateway or service}-{admin_port}",
        xds_host=xds_host or settings.advertise_address,
        xds_port=xds_port or settings.xds_port,
        admin_port=admin_port,
        delta=delta,
        gateway=gateway,
        service=service,
        inbound_port=inbound_port,
        app_port=app_port,
        outbound_port=outbound_port,
        address=address,
        token=box.node_token(subject) if box is not None else None,
        labels=labels,
        zone=zone,
    )
    if settings.xds_tls and authority is not None:
        options = replace(
            options,
            xds_trusted_ca="".join(authority.state.trust_bundle),
            xds_server_id=spiffe_id(settings.trust_domain, *XDS_SERVER_SUBJECT.split("/")),
        )
    try:
        document = render_bootstrap(options)
    except ValueError as exc:
        raise _invalid([{"type": "value_error", "loc": ("query",), "msg": str(exc)}]) from None
    if format == "json":
        return JSONResponse(document)
    return Response(yaml.safe_dump(document, sort_keys=False), media_type="application/yaml")
