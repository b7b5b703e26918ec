"""A service's traffic policies as cluster settings: load balancing, circuit breakers, outlier
detection and active health checks.

Applied to the service's cluster and to each of its subset clusters alike, so shifting traffic to
a subset never changes how it is protected (but each subset cluster counts its own limits).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.type.v3 import http_pb2, percent_pb2, range_pb2

from meshplane.model import CircuitBreaker, HealthCheck, OutlierDetection, ServiceSpec
from meshplane.xds.translate.proto_values import duration

__all__ = ["apply_service_policies"]

_LB_POLICIES = {
    "round_robin": cluster_pb2.Cluster.LbPolicy.ROUND_ROBIN,
    "least_request": cluster_pb2.Cluster.LbPolicy.LEAST_REQUEST,
    "random": cluster_pb2.Cluster.LbPolicy.RANDOM,
    "ring_hash": cluster_pb2.Cluster.LbPolicy.RING_HASH,
    "maglev": cluster_pb2.Cluster.LbPolicy.MAGLEV,
}
_HTTP2_PROTOCOLS = frozenset({"http2", "grpc"})
# Any 2xx passes a health check (Envoy alone accepts only 200). Ranges are half-open.
_ANY_2XX = range_pb2.Int64Range(start=200, end=300)


def apply_service_policies(cluster: cluster_pb2.Cluster, spec: ServiceSpec) -> None:
    """Set the load-balancing policy and whichever protections `spec` asks for."""
    cluster.lb_policy = _LB_POLICIES[spec.lb_policy]
    if spec.circuit_breaker is not None:
        cluster.circuit_breakers.CopyFrom(_circuit_breakers(spec.circuit_breaker))
    if spec.outlier_detection is not None:
        cluster.outlier_detection.CopyFrom(_outlier_detection(spec.outlier_detection))
    if spec.health_check is not None:
        cluster.health_checks.append(_health_check(spec.health_check, spec.protocol))


def _circuit_breakers(limits: CircuitBreaker) -> circuit_breaker_pb2.CircuitBreakers:
    thresholds = circuit_breaker_pb2.CircuitBreakers.Thresholds()
    for field in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
        value = getattr(limits, field)
        if value is not None:
            getattr(thresholds, field).value = value
    if limits.retry_budget is not None:
        budget = thresholds.retry_budget
        budget.budget_percent.CopyFrom(percent_pb2.Percent(value=limits.retry_budget.percent))
        budget.min_retry_concurrency.value = limits.retry_budget.min_concurrency
    return circuit_breaker_pb2.CircuitBreakers(thresholds=[thresholds])


def _outlier_detection(policy: OutlierDetection) -> outlier_detection_pb2.OutlierDetection:
    return outlier_detection_pb2.OutlierDetection(
        consecutive_5xx={"value": policy.consecutive_5xx},
        interval=duration(policy.interval),
        base_ejection_time=duration(policy.base_ejection_time),
        max_ejection_percent={"value": policy.max_ejection_percent},
    )


def _health_check(check: HealthCheck, protocol: str) -> health_check_pb2.HealthCheck:
    """An HTTP GET probe; `no_traffic_interval` equals `interval` so an idle proxy learns of a
    dead endpoint as fast as a busy one (Envoy's default waits 60s)."""
    http = health_check_pb2.HealthCheck.HttpHealthCheck(path=check.path)
    if check.expected_statuses:
        http.expected_statuses.extend(
            range_pb2.Int64Range(start=status, end=status + 1)
            for status in sorted(set(check.expected_statuses))
        )
    else:
        http.expected_statuses.append(_ANY_2XX)
    if protocol in _HTTP2_PROTOCOLS:
        http.codec_client_type = http_pb2.CodecClientType.HTTP2
    return health_check_pb2.HealthCheck(
        timeout=duration(check.timeout),
        interval=duration(check.interval),
        no_traffic_interval=duration(check.interval),
        unhealthy_threshold={"value": check.unhealthy_threshold},
        healthy_threshold={"value": check.healthy_threshold},
        http_health_check=http,
    )
