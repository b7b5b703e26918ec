"""The specs users write, one class per kind, validated field by field.

Every spec is frozen and forbids unknown fields, so a typo is a 422 naming the field rather than a
setting that silently does nothing. Later issues add fields with defaults; stored specs stay valid.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from meshplane.model.durations import Duration
from meshplane.model.fields import (
    HeaderName,
    Host,
    IpAddress,
    Labels,
    Method,
    Path,
    Port,
    Regex,
    Spec,
)
from meshplane.model.names import Name

__all__ = [
    "Destination",
    "EndpointSpec",
    "GatewaySpec",
    "HeaderMatch",
    "LbPolicy",
    "Method",
    "Path",
    "Protocol",
    "RouteMatch",
    "RouteSpec",
    "ServiceSpec",
    "Spec",
]

Protocol = Literal["http", "http2", "grpc", "tcp"]
LbPolicy = Literal["round_robin", "least_request", "random"]
_PATH_KINDS = ("prefix", "path", "regex")


class ServiceSpec(Spec):
    """A logical destination; becomes one Envoy cluster fed by EDS."""

    protocol: Protocol = Field("http", description="How the service's instances speak.")
    connect_timeout: Duration = Field(1.0, gt=0, description="TCP connect timeout, e.g. '1s'.")
    lb_policy: LbPolicy = Field("round_robin", description="How requests spread over endpoints.")


class EndpointSpec(Spec):
    """One instance of a service."""

    service: Name = Field(description="The service this endpoint belongs to.")
    address: IpAddress = Field(description="IP address Envoy connects to.")
    port: Port
    weight: int = Field(1, ge=1, le=65535, description="Relative share of the service's traffic.")
    labels: Labels = Field(default_factory=dict, description="e.g. {'version': 'v2'}.")
    sidecar: bool = Field(
        False,
        description="The address is a meshplane sidecar's inbound port: callers use mutual TLS. "
        "Set by auto-registration; plain instances without a sidecar leave it false.",
    )


class GatewaySpec(Spec):
    """An edge listener on an Envoy that runs with `--role gateway`."""

    port: Port
    address: IpAddress = Field("0.0.0.0", description="Address the gateway listens on.")
    hosts: list[Host] = Field(default_factory=lambda: ["*"], min_length=1)


class HeaderMatch(Spec):
    """One header condition; exactly one of `exact`, `regex`, `present`."""

    name: HeaderName
    exact: str | None = None
    regex: Regex | None = None
    present: bool | None = Field(None, description="true: header must be there; false: absent.")

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        given = [k for k in ("exact", "regex", "present") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'exact', 'regex', 'present'")
        return self


class RouteMatch(Spec):
    """What a request must look like; `prefix: "/"` when no path condition is given."""

    prefix: Path | None = None
    path: Path | None = None
    regex: Regex | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_prefix(cls, data: object) -> object:
        if isinstance(data, dict) and not any(data.get(k) is not None for k in _PATH_KINDS):
            return {**data, "prefix": "/"}
        return data

    @model_validator(mode="after")
    def _one_path_condition(self) -> Self:
        given = [k for k in _PATH_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'prefix', 'path', 'regex' (got {given})")
        return self


class Destination(Spec):
    """Where a share of the matching requests goes: a service, optionally a label subset of it."""

    service: Name
    weight: int = Field(1, ge=0, le=10000, description="Relative share among destinations.")
    labels: Labels = Field(default_factory=dict, description="Only endpoints with these labels.")


class RouteSpec(Spec):
    """A routing rule, attached to gateways or (no gateways) to the mesh's sidecars."""

    gateways: list[Name] = Field(
        default_factory=list,
        description="Gateways that serve this route; empty means the mesh's sidecars.",
    )
    hosts: list[Host] = Field(
        default_factory=list,
        description="Host headers it applies to. Gateway routes default to the gateway's hosts; "
        "sidecar routes must name them (usually the service name).",
    )
    match: RouteMatch = Field(default_factory=RouteMatch)
    destinations: list[Destination] = Field(min_length=1)
    timeout: Duration | None = Field(
        None, description="Whole-request timeout; Envoy's default 15s."
    )

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if not self.gateways and not self.hosts:
            raise ValueError(
                "hosts: a sidecar route (no gateways) must name the hosts it applies to, "
                "e.g. the service name"
            )
        if sum(d.weight for d in self.destinations) == 0:
            raise ValueError("destinations: at least one destination needs a weight above 0")
        return self
