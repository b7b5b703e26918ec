"""Build meshes in tests the way users write specs (plain dicts), without a store or an API."""

from __future__ import annotations

from typing import Any

from meshplane.model import (
    EndpointSpec,
    GatewaySpec,
    Mesh,
    ProxyGroup,
    Role,
    RouteSpec,
    ServiceSpec,
    Spec,
)

__all__ = [
    "endpoint",
    "gateway",
    "gateway_group",
    "mesh",
    "route",
    "service",
    "sidecar_group",
]

Item = tuple[str, str, Spec]


def service(name: str, **fields: Any) -> Item:
    return ("services", name, ServiceSpec.model_validate(fields))


def endpoint(name: str, service: str, address: str, port: int, **fields: Any) -> Item:
    data = {"service": service, "address": address, "port": port, **fields}
    return ("endpoints", name, EndpointSpec.model_validate(data))


def gateway(name: str, port: int, **fields: Any) -> Item:
    return ("gateways", name, GatewaySpec.model_validate({"port": port, **fields}))


def route(name: str, **fields: Any) -> Item:
    return ("routes", name, RouteSpec.model_validate(fields))


def mesh(*items: Item) -> Mesh:
    return Mesh.of(1, items)


def gateway_group(name: str) -> ProxyGroup:
    return ProxyGroup(Role.GATEWAY, gateway=name)


def sidecar_group(
    service: str, inbound: int = 15006, app: int = 8080, outbound: int = 15001
) -> ProxyGroup:
    return ProxyGroup(
        Role.SIDECAR, service=service, inbound_port=inbound, app_port=app, outbound_port=outbound
    )
