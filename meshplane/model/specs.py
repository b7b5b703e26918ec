"""The specs users write, one class per kind, validated field by field.

Every spec is frozen and forbids unknown fields, so a typo is a 422 naming the field rather than a
setting that silently does nothing. Later issues add fields with defaults; stored specs stay valid.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, StringConstraints, model_validator

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
from meshplane.model.route_policies import (
    DirectResponse,
    Fault,
    HeaderChanges,
    Mirror,
    RateLimit,
    Redirect,
    RetryPolicy,
    Rewrite,
    Sticky,
)
from meshplane.model.service_policies import CircuitBreaker, HealthCheck, OutlierDetection

# The route policies are the parts a RouteSpec is written with, so the specs name them too and
# the package face takes them from here.
__all__ = [
    "ZONE_PATTERN",
    "Destination",
    "DirectResponse",
    "EndpointSpec",
    "Fault",
    "GatewayProtocol",
    "GatewaySpec",
    "GatewayTls",
    "HeaderChanges",
    "HeaderMatch",
    "HttpsRedirect",
    "LbPolicy",
    "Method",
    "Mirror",
    "Path",
    "Protocol",
    "QueryMatch",
    "RateLimit",
    "Redirect",
    "RetryPolicy",
    "Rewrite",
    "RouteMatch",
    "RouteSpec",
    "ServiceSpec",
    "Spec",
    "Sticky",
]

Protocol = Literal["http", "http2", "grpc", "tcp"]
LbPolicy = Literal["round_robin", "least_request", "random", "ring_hash", "maglev"]
HASH_LB_POLICIES = frozenset({"ring_hash", "maglev"})
ZONE_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
Zone = Annotated[str, StringConstraints(pattern=ZONE_PATTERN)]
_PATH_KINDS = ("prefix", "path", "regex")
_Match = TypeVar("_Match", bound=Spec)


class ServiceSpec(Spec):
    """A logical destination; becomes one Envoy cluster fed by EDS."""

    protocol: Protocol = Field("http", description="How the service's instances speak.")
    connect_timeout: Duration = Field(1.0, gt=0, description="TCP connect timeout, e.g. '1s'.")
    lb_policy: LbPolicy = Field(
        "round_robin",
        description="How requests spread over endpoints; ring_hash and maglev hash the key a "
        "route's `sticky` names, so one key keeps reaching one endpoint.",
    )
    circuit_breaker: CircuitBreaker | None = Field(
        None, description="Limits each calling proxy enforces; past them it answers 503."
    )
    outlier_detection: OutlierDetection | None = Field(
        None, description="Eject endpoints that keep answering 5xx."
    )
    health_check: HealthCheck | None = Field(
        None, description="Probe endpoints actively; failing ones get no traffic."
    )
    rate_limit: RateLimit | None = Field(
        None,
        description="Per instance: each of the service's sidecars admits at most this many "
        "requests on its inbound listener, 429 past it. Instances without a sidecar are not "
        "limited; to limit at a gateway, set `rate_limit` on the route.",
    )
    port: Port | None = Field(
        None,
        description="tcp services only: the port callers reach the service on through the mesh. "
        "Every sidecar listens on 127.0.0.1:<port> and forwards each connection to the service "
        "(over mutual TLS to sidecar endpoints, verifying the service's SPIFFE ID), or to the "
        "subsets a sidecar route naming the service in `hosts` splits it between. Unique among "
        "services (a second service with the same port is a 409). A sidecar whose own inbound, "
        "app, outbound or admin port is this port skips the listener (the control plane logs "
        "it). Without a port a tcp service is reached only through a tcp gateway.",
    )

    @model_validator(mode="after")
    def _http_only(self) -> Self:
        if self.protocol == "tcp":
            given = [k for k in ("health_check", "rate_limit") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: HTTP policies, not for a tcp service")
        elif self.port is not None:
            raise ValueError(
                f"port: only a tcp service has a mesh port (HTTP services are reached by Host "
                f"on the sidecar's outbound port); this one's protocol is {self.protocol}"
            )
        return self


class EndpointSpec(Spec):
    """One instance of a service."""

    service: Name = Field(description="The service this endpoint belongs to.")
    address: IpAddress = Field(description="IP address Envoy connects to.")
    port: Port
    weight: int = Field(1, ge=1, le=65535, description="Relative share of the service's traffic.")
    labels: Labels = Field(default_factory=dict, description="e.g. {'version': 'v2'}.")
    zone: Zone | None = Field(
        None,
        description="Where the instance runs. A proxy started with a zone prefers endpoints in "
        "its own zone and fails over to the others when those are unhealthy.",
    )
    sidecar: bool = Field(
        False,
        description="The address is a meshplane sidecar's inbound port: callers use mutual TLS. "
        "Set by auto-registration; plain instances without a sidecar leave it false.",
    )


GatewayProtocol = Literal["http", "https", "tls", "tcp"]
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class GatewayTls(Spec):
    """How an `https` gateway terminates TLS."""

    certificates: list[Name] = Field(
        min_length=1,
        max_length=64,
        description="tls-certificate resources to present. Envoy picks the one whose DNS names "
        "match the client's SNI; a client without SNI (or naming no certificate's host) gets "
        "the first.",
    )
    min_version: Literal["1.2", "1.3"] = Field("1.2", description="Oldest TLS version accepted.")
    client_ca: str | None = Field(
        None,
        max_length=256 * 1024,
        description="PEM bundle: when given, clients must present a certificate signed by one "
        "of these CAs (mutual TLS for partner APIs); the verified certificate's subject and "
        "names reach the backends in the x-forwarded-client-cert header.",
    )

    @model_validator(mode="after")
    def _client_ca_is_pem(self) -> Self:
        if self.client_ca is not None and _PEM_CERTIFICATE not in self.client_ca:
            raise ValueError("client_ca: not a PEM bundle (no BEGIN CERTIFICATE block)")
        return self


class HttpsRedirect(Spec):
    """Where an http gateway sends every request: the same host and path over HTTPS."""

    port: Port = Field(443, description="The HTTPS port in the Location (443: left out).")


class GatewaySpec(Spec):
    """An edge listener on an Envoy that runs with `--role gateway`."""

    port: Port
    address: IpAddress = Field("0.0.0.0", description="Address the gateway listens on.")
    hosts: list[Host] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Host headers it serves (http, https), or SNI names (tls); a tcp gateway "
        "has none: leave the default.",
    )
    protocol: GatewayProtocol = Field(
        "http",
        description="http: routes by Host and path. https: the same behind TLS terminated with "
        "`tls`. tcp: forwards every connection to its port to the destinations of the one route "
        "attached to it (weighted, over mutual TLS to sidecar endpoints); that route carries "
        "only `destinations`, and while no route is attached the gateway does not listen "
        "(connections are refused). tls: TLS passthrough, each connection forwarded without "
        "terminating it to the route whose `hosts` match its SNI (routes carry only `hosts` "
        "and `destinations`; `*` takes any SNI, and clients without one).",
    )
    tls: GatewayTls | None = Field(None, description="Certificates of an https gateway.")
    https_redirect: HttpsRedirect | None = Field(
        None,
        description="An http gateway only: answer every request with a 301 to the same URL "
        "over HTTPS (true: port 443; or {port: N}); its routes are then not served.",
    )

    @property
    def streams(self) -> bool:
        """Whether the gateway forwards connections (tcp, tls) rather than HTTP requests."""
        return self.protocol in ("tcp", "tls")

    @model_validator(mode="before")
    @classmethod
    def _redirect_shorthand(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("https_redirect"), bool):
            return {**data, "https_redirect": {} if data["https_redirect"] else None}
        return data

    @model_validator(mode="after")
    def _protocol_fits(self) -> Self:
        if self.protocol == "tcp" and self.hosts != ["*"]:
            raise ValueError(
                "hosts: a tcp gateway forwards a port, it sees no Host header; leave hosts out"
            )
        if self.protocol == "https" and self.tls is None:
            raise ValueError("tls: an https gateway needs its certificates")
        if self.protocol != "https" and self.tls is not None:
            raise ValueError("tls: only an https gateway terminates TLS")
        if self.protocol != "http" and self.https_redirect is not None:
            raise ValueError("https_redirect: only an http gateway redirects to HTTPS")
        return self


def _one_condition(match: _Match) -> _Match:
    """A header or query condition has exactly one of `exact`, `regex`, `present`."""
    given = [k for k in ("exact", "regex", "present") if getattr(match, k) is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of 'exact', 'regex', 'present'")
    return match


class HeaderMatch(Spec):
    """One header condition; exactly one of `exact`, `regex`, `present`."""

    name: HeaderName
    exact: str | None = None
    regex: Regex | None = None
    present: bool | None = Field(None, description="true: header must be there; false: absent.")

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        return _one_condition(self)


class QueryMatch(Spec):
    """One query-parameter condition; exactly one of `exact`, `regex`, `present: true` (Envoy
    cannot match a parameter's absence)."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^&=#\s]+$")
    exact: str | None = None
    regex: Regex | None = None
    present: Literal[True] | None = Field(None, description="The parameter must be there.")

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        return _one_condition(self)


class RouteMatch(Spec):
    """What a request must look like; `prefix: "/"` when no path condition is given. Every
    condition given must hold."""

    prefix: Path | None = Field(None, description="The path starts with this (case-sensitive).")
    path: Path | None = Field(None, description="The path, without the query, is exactly this.")
    regex: Regex | None = Field(
        None, description="The path, without the query, matches this RE2 regex in full."
    )
    headers: list[HeaderMatch] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list, description="Any of these methods.")
    query: list[QueryMatch] = Field(default_factory=list, description="Query parameters.")

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
    destinations: list[Destination] = Field(
        default_factory=list,
        max_length=64,
        description="Where matching requests go, split by weight. Give destinations, "
        "`redirect` or `direct_response`: exactly one.",
    )
    redirect: Redirect | None = Field(None, description="Answer with a redirect instead.")
    direct_response: DirectResponse | None = Field(
        None, description="Answer from the proxy itself instead."
    )
    timeout: Duration | None = Field(
        None, description="Whole-request timeout, retries included; Envoy's default 15s."
    )
    retries: RetryPolicy | None = None
    sticky: Sticky | None = None
    rewrite: Rewrite | None = None
    request_headers: HeaderChanges | None = Field(
        None, description="Changes to the request before it is forwarded."
    )
    response_headers: HeaderChanges | None = Field(
        None, description="Changes to the response before it is sent back."
    )
    mirrors: list[Mirror] = Field(default_factory=list, max_length=8)
    fault: Fault | None = None
    rate_limit: RateLimit | None = Field(
        None,
        description="Per proxy serving the route (each gateway or sidecar has its own bucket); "
        "429 past it.",
    )

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if not self.gateways and not self.hosts:
            raise ValueError(
                "hosts: a sidecar route (no gateways) must name the hosts it applies to, "
                "e.g. the service name"
            )
        actions = [k for k in ("destinations", "redirect", "direct_response") if getattr(self, k)]
        if len(actions) != 1:
            raise ValueError(
                "give exactly one of 'destinations', 'redirect', 'direct_response' "
                f"(got {actions or 'none'})"
            )
        if self.destinations:
            _check_forwarding(self)
        else:
            forwarding_only = ("retries", "sticky", "rewrite", "request_headers", "timeout")
            given = [k for k in (*forwarding_only, "mirrors") if getattr(self, k)]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: only a route with destinations forwards requests"
                )
        path_rewrite = self.redirect.prefix if self.redirect else None
        if self.rewrite is not None and self.rewrite.prefix is not None:
            path_rewrite = self.rewrite.prefix
        if path_rewrite is not None and self.match.regex is not None:
            raise ValueError("a prefix rewrite needs a 'prefix' or 'path' match, not 'regex'")
        return self

    @functools.cached_property
    def rank(self) -> tuple[int, int, int]:
        """Where the route sorts among the routes of its host, its name aside (the rule is
        `route_table.rank`); kept, since every build sorts every route of a host by it."""
        from meshplane.model.route_table import rank  # the rule's home imports this module

        return rank(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy without the kept rank: `update` may change what it derives from."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("rank", None)
        return copy


def _check_forwarding(route: RouteSpec) -> None:
    """Raise ValueError for weights and timeouts that cannot work together."""
    if sum(d.weight for d in route.destinations) == 0:
        raise ValueError("destinations: at least one destination needs a weight above 0")
    retries = route.retries
    if (
        retries is not None
        and retries.per_try_timeout is not None
        and route.timeout is not None
        and route.timeout != 0
        and retries.per_try_timeout > route.timeout
    ):
        raise ValueError(
            "retries.per_try_timeout: longer than the route's timeout, so no retry could happen"
        )
