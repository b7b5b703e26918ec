"""The request `explain` is asked about, and the answer, as the API shows them (OpenAPI schemas)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meshplane.model import (
    CircuitBreaker,
    Duration,
    Fault,
    HeaderChanges,
    HealthCheck,
    Method,
    Mirror,
    Name,
    OutlierDetection,
    RateLimit,
    RetryPolicy,
    Sticky,
    exactly_one_of,
)

__all__ = [
    "Candidate",
    "Destination",
    "Endpoint",
    "ExplainRequest",
    "Explanation",
    "Outcome",
    "RoutePolicies",
    "ServicePolicies",
]

Outcome = Literal["forwarded", "redirected", "direct_response", "no_route", "unavailable"]


class ExplainRequest(BaseModel):
    """A request as a gateway or a service's sidecar would receive it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: Name | None = Field(None, description="The gateway that receives it.")
    source: Name | None = Field(
        None, description="Or: the service whose sidecar sends it (its outbound listener)."
    )
    host: str = Field(
        min_length=1,
        max_length=255,
        description="The Host header; at a tls gateway the SNI; with `source`, a tcp service's "
        "name asks about a connection to its mesh port; a tcp gateway does not look at it.",
    )
    path: str = Field("/", min_length=1, max_length=4096, description="Path, with any query.")
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="Other request headers.")

    _one_proxy = exactly_one_of("gateway", "source")

    @model_validator(mode="after")
    def _absolute_path(self) -> Self:
        if not self.path.startswith("/"):
            raise ValueError("path: must start with '/'")
        return self


class Candidate(BaseModel):
    """One route the proxy holds, and how it fared against the request."""

    route: str
    matched: bool = Field(description="Whether every condition of its match holds.")
    chosen: bool = Field(description="The route the proxy uses (the first that matches).")
    reasons: list[str] = Field(description="Why it was not chosen; empty for the chosen one.")


class Endpoint(BaseModel):
    address: str = Field(description="address:port")
    zone: str | None
    labels: dict[str, str]
    weight: int


class ServicePolicies(BaseModel):
    """How the proxy balances over and protects the destination service."""

    lb_policy: str
    circuit_breaker: CircuitBreaker | None = None
    outlier_detection: OutlierDetection | None = None
    health_check: HealthCheck | None = None
    rate_limit: RateLimit | None = Field(
        None, description="Per instance, applied by each instance's sidecar."
    )


class Destination(BaseModel):
    service: str
    labels: dict[str, str]
    weight: int
    percent: float = Field(description="Share of the matching requests it receives.")
    cluster: str = Field(description="The Envoy cluster it is.")
    endpoints: list[Endpoint] = Field(description="Endpoints that can answer, by name.")
    policies: ServicePolicies


class RoutePolicies(BaseModel):
    """The chosen route's policies in effect (null: not set)."""

    timeout: Duration | None = Field(None, description="Null: Envoy's default 15s.")
    retries: RetryPolicy | None = None
    sticky: Sticky | None = None
    fault: Fault | None = None
    rate_limit: RateLimit | None = Field(None, description="Per proxy serving the route.")
    mirrors: list[Mirror] = Field(default_factory=list)
    request_headers: HeaderChanges | None = None
    response_headers: HeaderChanges | None = None


class Explanation(BaseModel):
    """Which route a request takes, why the others do not, and where it goes."""

    proxy: str = Field(description="Which proxy was asked: a gateway or a sidecar's outbound.")
    protocol: Literal["http", "tcp", "tls"] = Field(
        "http",
        description="What the proxy sees there: HTTP requests, or TCP connections (tls: routed "
        "by SNI, passed through without terminating TLS).",
    )
    host: str = Field(description="The host as matched (lower case, port stripped).")
    virtual_host: str | None = Field(description="The virtual host chosen for that host.")
    route: str | None = Field(description="The route used; null when none matches.")
    outcome: Outcome
    status: int | None = Field(
        description="The status the proxy answers with itself (404, 503, a redirect or a direct "
        "response); null when the request is forwarded, and for connections (no HTTP)."
    )
    summary: str = Field(description="One sentence saying what happens.")
    candidates: list[Candidate] = Field(description="Routes in the order the proxy tries them.")
    destinations: list[Destination] = Field(default_factory=list)
    path: str | None = Field(None, description="The path forwarded (after any rewrite).")
    host_rewrite: str | None = Field(None, description="The Host header forwarded, if rewritten.")
    location: str | None = Field(None, description="A redirect's Location.")
    body: str | None = Field(None, description="A direct response's body.")
    policies: RoutePolicies | None = None
