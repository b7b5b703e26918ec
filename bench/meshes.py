"""The meshes the scenarios use, as the REST API takes them and as in-process model meshes.

One definition feeds both meshplane and the peer, so the comparison runs on the same services and
routes. Synthetic meshes are shaped like a real one: every service has endpoints and a gateway
route of its own, and a few services use label subsets and timeouts, so the translator does all
of its usual work rather than a trivial subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshplane.model import EndpointSpec, GatewaySpec, Mesh, RouteSpec, ServiceSpec, Spec

__all__ = [
    "GATEWAY",
    "ROUTE",
    "flip_route",
    "gateway_name",
    "service_name",
    "synthetic_items",
    "synthetic_mesh",
]

GATEWAY = "edge"
ROUTE = "main"

Item = tuple[str, str, dict[str, Any]]


def service_name(index: int) -> str:
    return f"svc-{index:05d}"


def gateway_name(index: int) -> str:
    """The synthetic meshes' gateways: `GATEWAY` first (the one scenarios measure)."""
    return GATEWAY if index == 0 else f"{GATEWAY}-{index}"


def flip_route(service: str, *, gateway: str = GATEWAY) -> dict[str, Any]:
    """The route spec the propagation and fan-out scenarios flip between two services."""
    return {"gateways": [gateway], "match": {"prefix": "/"}, "destinations": [{"service": service}]}


def synthetic_items(
    services: int,
    *,
    endpoints_per_service: int = 2,
    routes: int | None = None,
    gateway_port: int = 10000,
    gateways: int = 1,
) -> Iterator[Item]:
    """REST items (kind, name, spec) for a mesh of `services` services, their endpoints,
    `gateways` gateways (`gateway_name`, ports from `gateway_port` up) and gateway routes to the
    first `routes` services (None: one per service), route i on gateway i % `gateways`.

    Every 10th route splits traffic 90/10 between the service's v1 and v2 endpoints (label
    subsets), every 7th has a timeout; endpoint addresses are distinct 10.x.y.z addresses (never
    contacted: these meshes are only translated and served, not sent traffic).
    """
    for g in range(gateways):
        yield ("gateways", gateway_name(g), {"port": gateway_port + g, "address": "127.0.0.1"})
    for i in range(services):
        name = service_name(i)
        protocol = "http2" if i % 5 == 0 else "http"
        yield ("services", name, {"protocol": protocol, "connect_timeout": "250ms"})
        for e in range(endpoints_per_service):
            n = i * endpoints_per_service + e
            address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            labels = {"version": "v1" if e % 2 == 0 else "v2"}
            spec = {"service": name, "address": address, "port": 8080, "labels": labels}
            yield ("endpoints", f"{name}-{e}", spec)
    for i in range(services if routes is None else min(routes, services)):
        name = service_name(i)
        gateway = gateway_name(i % gateways)
        route: dict[str, Any] = {"gateways": [gateway], "match": {"prefix": f"/{name}/"}}
        if i % 10 == 0 and endpoints_per_service >= 2:
            route["destinations"] = [
                {"service": name, "labels": {"version": "v1"}, "weight": 90},
                {"service": name, "labels": {"version": "v2"}, "weight": 10},
            ]
        else:
            route["destinations"] = [{"service": name}]
        if i % 7 == 0:
            route["timeout"] = "5s"
        yield ("routes", name, route)


_SPECS: dict[str, type[Spec]] = {
    "services": ServiceSpec,
    "endpoints": EndpointSpec,
    "gateways": GatewaySpec,
    "routes": RouteSpec,
}


def to_spec(kind: str, spec: dict[str, Any]) -> Spec:
    """Validate a REST spec into the model's spec, as the API would."""
    return _SPECS[kind].model_validate(spec)


def synthetic_mesh(services: int, *, revision: int = 1, **options: Any) -> Mesh:
    """The model Mesh for `synthetic_items(services, **options)`."""
    return Mesh.of(
        revision,
        [
            (kind, name, to_spec(kind, spec))
            for kind, name, spec in synthetic_items(services, **options)
        ],
    )
