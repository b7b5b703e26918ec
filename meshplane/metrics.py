"""Control-plane metrics for Prometheus, in a registry the control plane owns (no globals).

Counters and histograms are updated where things happen (the xDS server, the builder, the API);
gauges that describe current state (connected proxies, cache contents, certificate expiry) are
read from their owners at scrape time, so they can never go stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

# Propagation and convergence are milliseconds on a healthy mesh; seconds mean trouble.
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GaugeRows = Callable[[], Iterable[tuple[tuple[str, ...], float]]]


class _Gauges(Collector):
    """One gauge family whose rows (label values, value) are computed at scrape time."""

    def __init__(self, name: str, documentation: str, labels: list[str], rows: GaugeRows) -> None:
        self._name, self._doc, self._labels, self._rows = name, documentation, labels, rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        for values, value in self._rows():
            family.add_metric(list(values), value)
        yield family


class Metrics:
    """Every metric meshplane exports; `render()` is the body of GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushes = Counter(
            "meshplane_xds_pushes", "xDS responses sent, by type.", ["type"], registry=r
        )
        self._pushed: dict[str, Counter] = {}  # `pushes` by type, see `pushed`
        self.push_errors = Counter(
            "meshplane_xds_push_errors",
            "xDS responses that could not be written.",
            ["type"],
            registry=r,
        )
        self.nacks = Counter(
            "meshplane_xds_nacks",
            "Responses proxies rejected (NACK), by type.",
            ["type"],
            registry=r,
        )
        self.refused_streams = Counter(
            "meshplane_xds_refused_streams",
            "Streams refused: bad metadata or node token.",
            ["reason"],
            registry=r,
        )
        self.denied_secrets = Counter(
            "meshplane_xds_denied_secret_requests",
            "Secret names a proxy asked for that are not its own.",
            registry=r,
        )
        self.build_seconds = Histogram(
            "meshplane_build_seconds",
            "Time to translate and serialize after a change (all watched groups).",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.convergence_seconds = Histogram(
            "meshplane_proxy_convergence_seconds",
            "From a committed change until a proxy has acknowledged everything it implies.",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            "meshplane_api_requests",
            "REST API requests.",
            ["method", "route", "status"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "meshplane_api_request_seconds",
            "REST API request time.",
            ["method", "route"],
            registry=r,
        )

    def pushed(self, kind: str) -> None:
        """Count one xDS response of `kind` sent. The labelled child is looked up once per
        kind: `labels()` takes a lock and checks its arguments, and a route write pushes to
        every connected proxy of the gateway (101 pushes at a time in the scale benchmark)."""
        child = self._pushed.get(kind)
        if child is None:
            child = self._pushed[kind] = self.pushes.labels(kind)
        child.inc()

    def gauge(self, name: str, documentation: str, labels: list[str], rows: GaugeRows) -> None:
        """Export a gauge family computed by `rows` on each scrape."""
        self.registry.register(_Gauges(name, documentation, labels, rows))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @staticmethod
    def now() -> float:
        return time.monotonic()
