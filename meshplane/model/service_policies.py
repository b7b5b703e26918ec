"""How proxies protect and probe a service: circuit breakers, outlier detection, health checks.

These become settings of the service's Envoy clusters (and of its subset clusters, which copy
them), so every proxy that calls the service applies them on its own side.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from meshplane.model.durations import Duration
from meshplane.model.fields import HttpStatus, Path, Percent, Spec

__all__ = ["CircuitBreaker", "HealthCheck", "OutlierDetection", "RetryBudget"]

_MAX = 4_294_967_295  # the thresholds are uint32


class RetryBudget(Spec):
    """Allow retries only up to a share of the requests in flight, so retries cannot multiply
    the load on a struggling service."""

    percent: Percent = Field(
        20, gt=0, description="Retries allowed, as a share of active requests."
    )
    min_concurrency: int = Field(
        3, ge=0, le=_MAX, description="Retries always allowed, whatever the share."
    )


class CircuitBreaker(Spec):
    """Limits each calling proxy enforces towards the service; past one, it answers 503 at once
    (with `x-envoy-overloaded: true`) instead of queueing. Unset limits keep Envoy's default
    (1024 each)."""

    max_connections: int | None = Field(None, ge=1, le=_MAX)
    max_pending_requests: int | None = Field(
        None, ge=0, le=_MAX, description="Requests waiting for a connection."
    )
    max_requests: int | None = Field(None, ge=1, le=_MAX)
    max_retries: int | None = Field(None, ge=0, le=_MAX, description="Retries in flight at once.")
    retry_budget: RetryBudget | None = Field(
        None, description="Bound retries by a share of active requests (replaces max_retries)."
    )

    @model_validator(mode="after")
    def _one_retry_limit(self) -> Self:
        if self.max_retries is not None and self.retry_budget is not None:
            raise ValueError("give max_retries or retry_budget, not both (a budget replaces it)")
        return self


class OutlierDetection(Spec):
    """Eject an endpoint that keeps failing; it comes back after the ejection time (longer each
    time it is ejected again)."""

    consecutive_5xx: int = Field(5, ge=1, le=1_000_000, description="Failures in a row to eject.")
    interval: Duration = Field(10.0, gt=0, description="How often ejections are reconsidered.")
    base_ejection_time: Duration = Field(30.0, gt=0, description="First ejection's length.")
    max_ejection_percent: int = Field(
        10, ge=0, le=100, description="At most this share of endpoints is ejected at once."
    )


class HealthCheck(Spec):
    """Probe every endpoint with an HTTP GET; endpoints failing it get no traffic.

    The interval also applies while a proxy has not sent the service any traffic yet, so a dead
    endpoint is known before the first request.
    """

    path: Path = Field("/healthz", description="Path probed on each endpoint.")
    interval: Duration = Field(10.0, gt=0, description="Time between probes.")
    timeout: Duration = Field(1.0, gt=0, description="A probe slower than this fails.")
    healthy_threshold: int = Field(1, ge=1, le=100, description="Passes to become healthy.")
    unhealthy_threshold: int = Field(3, ge=1, le=100, description="Failures to become unhealthy.")
    expected_statuses: list[HttpStatus] = Field(
        default_factory=list, description="Statuses that pass; default any 2xx."
    )
