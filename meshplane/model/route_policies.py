"""What a route may do besides choosing destinations: retries, rewrites, header changes, redirects,
direct responses, mirroring, fault injection, rate limits and sticky sessions.

Each class is one block of a route spec; the descriptions become the OpenAPI documentation.
Checks that need only the block itself live here; checks against the rest of the mesh (sticky
sessions need a hash-based load balancer, subsets must exist) live in `rules.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from meshplane.model.choices import at_most_one_of, exactly_one_of
from meshplane.model.durations import Duration
from meshplane.model.fields import (
    HeaderName,
    HeaderValue,
    Host,
    HttpStatus,
    Labels,
    Path,
    Percent,
    Port,
    Regex,
    Spec,
)
from meshplane.model.names import Name

__all__ = [
    "Backoff",
    "DirectResponse",
    "Fault",
    "FaultAbort",
    "FaultDelay",
    "HeaderChanges",
    "Mirror",
    "RateLimit",
    "Redirect",
    "RegexRewrite",
    "RetryOn",
    "RetryPolicy",
    "Rewrite",
    "Sticky",
    "StickyCookie",
]

RetryOn = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-4xx",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]
# Headers Envoy refuses to let a route add, set or remove: pseudo-headers and Host (use
# `rewrite.host` for that).
_PROTECTED = frozenset({"host"})
CookieName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$")]


def _default_retry_on() -> list[RetryOn]:
    return ["5xx", "reset", "connect-failure", "refused-stream"]


class Backoff(Spec):
    """Exponential back-off between retries, with jitter (Envoy's retry_back_off)."""

    base_interval: Duration = Field(0.025, gt=0, description="First back-off, e.g. '25ms'.")
    max_interval: Duration | None = Field(
        None, gt=0, description="Longest back-off; default 10 times `base_interval`."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_interval is not None and self.max_interval < self.base_interval:
            raise ValueError("max_interval must not be shorter than base_interval")
        return self


class RetryPolicy(Spec):
    """Retry failed attempts, each on another endpoint when one is available."""

    attempts: int = Field(2, ge=1, le=10, description="Retries after the first try.")
    per_try_timeout: Duration | None = Field(
        None, gt=0, description="Timeout of each try; the route's `timeout` bounds them all."
    )
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: _default_retry_on(),
        min_length=1,
        description="Conditions that trigger a retry (Envoy's x-envoy-retry-on values; the gRPC "
        "ones for grpc services).",
    )
    retriable_status_codes: list[HttpStatus] = Field(
        default_factory=list,
        description="Also retry answers with these statuses (implies 'retriable-status-codes').",
    )
    backoff: Backoff | None = Field(None, description="Wait between tries; Envoy's default 25ms.")


class HeaderChanges(Spec):
    """Headers to change on a request (before it is forwarded) or a response (before it is sent
    back). A name may appear in only one of `set`, `add` and `remove`."""

    set: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Replace the header (or add it when absent)."
    )
    add: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Add a value, keeping any the message already has."
    )
    remove: list[HeaderName] = Field(default_factory=list, description="Remove these headers.")

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        names = [*self.set, *self.add, *self.remove]
        protected = sorted({n for n in names if n.startswith(":") or n in _PROTECTED})
        if protected:
            raise ValueError(
                f"cannot change {', '.join(protected)}: pseudo-headers and host are Envoy's "
                "(use rewrite.host to change the host)"
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} appears more than once in set/add/remove")
        return self


class RegexRewrite(Spec):
    """Rewrite the path by regex: every match of `pattern` becomes `substitution` (\\1 etc.)."""

    pattern: Regex
    substitution: str = Field(max_length=2048)


class Rewrite(Spec):
    """Change the request before it is forwarded."""

    prefix: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Replace the matched prefix (or the matched path) with this; needs a "
        "`prefix` or `path` match. Mind the slashes: prefix '/api/' rewritten to '/' turns "
        "'/api/users' into '/users', but prefix '/api' would give '//users'.",
    )
    regex: RegexRewrite | None = Field(None, description="Rewrite the path by regex.")
    host: Host | None = Field(None, description="Send this Host header instead.")

    _one_path_rewrite = at_most_one_of("prefix", "regex")

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.host is not None and "*" in self.host:
            raise ValueError("host: a rewritten host cannot be a wildcard")
        if self.prefix is None and self.regex is None and self.host is None:
            raise ValueError("give at least one of 'prefix', 'regex' and 'host'")
        return self


class Redirect(Spec):
    """Answer with a redirect instead of forwarding; unset parts keep the request's own."""

    scheme: Literal["http", "https"] | None = None
    host: Host | None = None
    port: Port | None = None
    path: Path | None = Field(None, description="Replace the whole path.")
    prefix: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Replace the matched prefix; needs a `prefix` or `path` match.",
    )
    status: Literal[301, 302, 303, 307, 308] = 302
    strip_query: bool = Field(False, description="Drop the query string.")

    _one_path = at_most_one_of("path", "prefix")

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.host is not None and "*" in self.host:
            raise ValueError("host: a redirect target cannot be a wildcard")
        if all(getattr(self, k) is None for k in ("scheme", "host", "port", "path", "prefix")):
            raise ValueError(
                "a redirect must change at least one of scheme, host, port, path, prefix "
                "(otherwise it loops)"
            )
        return self


class DirectResponse(Spec):
    """Answer from the proxy itself, without forwarding."""

    status: HttpStatus
    body: str | None = Field(None, max_length=4096)


class Mirror(Spec):
    """Send a copy of matching requests to another service; its answers are discarded."""

    service: Name
    labels: Labels = Field(default_factory=dict, description="Only endpoints with these labels.")
    percent: Percent = Field(100, description="Share of requests copied.")


class FaultDelay(Spec):
    duration: Duration = Field(gt=0, description="How long to hold the request, e.g. '500ms'.")
    percent: Percent = Field(100, description="Share of requests delayed.")


class FaultAbort(Spec):
    status: HttpStatus = Field(description="The status the proxy answers with.")
    percent: Percent = Field(100, description="Share of requests aborted.")


class Fault(Spec):
    """Inject failures to test how callers cope: delays, aborts, or both (delay first)."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.delay is None and self.abort is None:
            raise ValueError("give 'delay', 'abort' or both")
        return self


class RateLimit(Spec):
    """A token bucket: `requests` tokens refill every `per`; past the limit the answer is 429."""

    requests: int = Field(ge=1, le=1_000_000_000, description="Tokens added every `per`.")
    per: Duration = Field(1.0, ge=0.05, description="Refill interval (at least 50ms), e.g. '1s'.")
    burst: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="Bucket size: requests allowed at once; default `requests`.",
    )


class StickyCookie(Spec):
    """Hash on a cookie; with `ttl` the proxy sets the cookie itself when the client has none."""

    name: CookieName
    ttl: Duration | None = Field(
        None, description="Lifetime of a cookie the proxy generates; unset: never generate one."
    )
    path: Path | None = None


class Sticky(Spec):
    """Send requests with the same header value (or cookie) to the same endpoint.

    Needs `lb_policy: ring_hash` or `maglev` on every destination service. Stickiness holds within
    one destination; the split between weighted destinations stays per request.
    """

    header: HeaderName | None = None
    cookie: StickyCookie | None = None

    _one_key = exactly_one_of("header", "cookie")
