"""What the mesh tells every Envoy to record: access logs, Prometheus stats, traces."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from meshplane.model.fields import Path, Port
from meshplane.model.names import Name
from meshplane.model.specs import Spec

__all__ = ["AccessLog", "ServiceTelemetry", "Telemetry", "Tracing"]


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]
Percent = Annotated[float, Field(ge=0, le=100)]


class AccessLog(Spec):
    enabled: bool = Field(
        True,
        description="One JSON line per request, and per connection of a tcp service or a "
        "tcp or tls gateway.",
    )
    path: Path | None = Field(
        None, description="Write to this file (in the Envoy's filesystem); default: stdout."
    )


class Tracing(Spec):
    provider: Literal["zipkin", "opentelemetry"] = Field(
        "zipkin", description="zipkin: Zipkin/Jaeger JSON over HTTP; opentelemetry: OTLP gRPC."
    )
    collector: HostPort = Field(description="Where spans go, e.g. 'jaeger:9411' or 'otel:4317'.")
    sampling: Percent = Field(100.0, description="Share of requests that start a trace.")


class ServiceTelemetry(Spec):
    """Per-service overrides of the mesh-wide telemetry."""

    access_log: bool | None = None
    sampling: Percent | None = None
    prometheus_port: Port | None = None


class Telemetry(Spec):
    access_log: AccessLog = Field(default_factory=AccessLog)
    prometheus_port: Port | None = Field(
        None,
        description="Serve Envoy's stats in Prometheus format at /stats/prometheus on this port "
        "of every sidecar and gateway (off when unset; per-service overrides for shared hosts).",
    )
    tracing: Tracing | None = Field(None, description="Off when unset.")
    services: dict[Name, ServiceTelemetry] = Field(
        default_factory=dict, description="Overrides for the sidecars of these services."
    )
