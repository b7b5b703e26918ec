"""The HTTP filters traffic policies need, and their per-route settings.

Listeners that serve meshplane routes (gateways, sidecars' outbound) always carry the fault and
the local rate limit filters, configured to do nothing; a route that injects faults or limits its
rate turns them on for itself through `typed_per_filter_config`. Keeping the filters in place
whatever the routes say means a route change never rewrites a listener (which would drain its
connections). A service's own rate limit is a filter on its sidecars' inbound listener with the
bucket in the filter itself: one bucket per instance, whatever route the caller took.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.v3 import percent_pb2, token_bucket_pb2
from google.protobuf import any_pb2

from meshplane.model import Fault, RateLimit, ServiceSpec
from meshplane.xds.translate.proto_values import duration, packed

__all__ = [
    "FAULT_FILTER",
    "RATE_LIMIT_FILTER",
    "fault_config",
    "fractional_percent",
    "inbound_policy_filters",
    "rate_limit_config",
    "route_policy_filters",
]

FAULT_FILTER = "envoy.filters.http.fault"
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
# Stat prefixes: `<prefix>.http_local_rate_limit.rate_limited` counts the 429s.
_ROUTE_LIMIT_STATS = "route_rate_limit"
_INBOUND_LIMIT_STATS = "inbound_rate_limit"
_HUNDRED = percent_pb2.FractionalPercent.DenominatorType.HUNDRED
_MILLION = percent_pb2.FractionalPercent.DenominatorType.MILLION


def route_policy_filters() -> list[hcm_pb2.HttpFilter]:
    """Fault injection, then rate limiting: both idle until a route configures them.

    Faults come first so that an injected abort never spends a rate-limit token.
    """
    idle_limit = local_rate_limit_pb2.LocalRateLimit(stat_prefix=_ROUTE_LIMIT_STATS)
    return [
        hcm_pb2.HttpFilter(name=FAULT_FILTER, typed_config=packed(fault_pb2.HTTPFault())),
        hcm_pb2.HttpFilter(name=RATE_LIMIT_FILTER, typed_config=packed(idle_limit)),
    ]


def inbound_policy_filters(spec: ServiceSpec | None) -> list[hcm_pb2.HttpFilter]:
    """The service's per-instance rate limit, if it has one, for its sidecars' inbound."""
    if spec is None or spec.rate_limit is None:
        return []
    config = rate_limit_config(spec.rate_limit, _INBOUND_LIMIT_STATS)
    return [hcm_pb2.HttpFilter(name=RATE_LIMIT_FILTER, typed_config=packed(config))]


def fault_config(fault: Fault) -> any_pb2.Any:
    """A route's fault injection, packed for `typed_per_filter_config[FAULT_FILTER]`."""
    config = fault_pb2.HTTPFault()
    if fault.delay is not None:
        config.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=duration(fault.delay.duration),
                percentage=fractional_percent(fault.delay.percent),
            )
        )
    if fault.abort is not None:
        config.abort.CopyFrom(
            fault_pb2.FaultAbort(
                http_status=fault.abort.status,
                percentage=fractional_percent(fault.abort.percent),
            )
        )
    return packed(config)


def rate_limit_config(
    limit: RateLimit, stat_prefix: str = _ROUTE_LIMIT_STATS
) -> local_rate_limit_pb2.LocalRateLimit:
    """A token bucket enforced on every request (Envoy's default enforces on none)."""
    always = base_pb2.RuntimeFractionalPercent(
        default_value=percent_pb2.FractionalPercent(numerator=100, denominator=_HUNDRED)
    )
    return local_rate_limit_pb2.LocalRateLimit(
        stat_prefix=stat_prefix,
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=limit.burst or limit.requests,
            tokens_per_fill={"value": limit.requests},
            fill_interval=duration(limit.per),
        ),
        filter_enabled=always,
        filter_enforced=always,
    )


def fractional_percent(percent: float) -> percent_pb2.FractionalPercent:
    """Express a 0-100 percentage exactly: per hundred when whole, else per million."""
    if percent == int(percent):
        return percent_pb2.FractionalPercent(numerator=int(percent), denominator=_HUNDRED)
    return percent_pb2.FractionalPercent(numerator=round(percent * 10_000), denominator=_MILLION)
