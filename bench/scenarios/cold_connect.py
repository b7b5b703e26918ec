"""Cold connect: control-plane CPU to serve 1,000 clusters to one newly connected proxy.

The mesh has 1,000 services (one endpoint each), a gateway and 10 routes, committed
through meshplane's Store before the control plane starts (see bench/controlplane.py). Each
repetition connects one more simulated gateway proxy (a new TCP connection and ADS stream, see
bench/adsload.py) that fetches everything as Envoy does: CDS, then EDS for every cluster, LDS,
RDS, ACKing each. The control plane's CPU time (all threads, nanosecond schedstat) is read before
the connect and once the process is idle again; the idle rate measured beforehand is subtracted.
The first proxy of a group also pays for translating the group's own resources, so it is
reported apart from the median of the others.
"""

from __future__ import annotations

import time

from bench.adsload import LoadPool, LoadSpec
from bench.context import Context
from bench.controlplane import ControlPlaneProcess
from bench.meshes import GATEWAY, synthetic_items
from bench.results import Measure, ScenarioResult
from bench.sampling import PySpy
from bench.stats import percentile

__all__ = ["TARGET_MS", "run"]

TARGET_MS = 5.0
_ROUTES = 10  # every write of a route re-checks route precedence against all routes: slow
_QUIET_WINDOW_S = 0.05
_QUIET_CPU_S = 0.0005


def _settle(plane: ControlPlaneProcess, timeout: float = 10.0) -> None:
    """Return once the process used < 0.5 ms of CPU over a 50 ms window (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = plane.cpu_seconds()
        time.sleep(_QUIET_WINDOW_S)
        if plane.cpu_seconds() - before < _QUIET_CPU_S:
            return


def _idle_rate(plane: ControlPlaneProcess, seconds: float = 1.0) -> float:
    """CPU seconds per second the idle control plane uses (timers, keepalives)."""
    cpu0, t0 = plane.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (plane.cpu_seconds() - cpu0) / (time.monotonic() - t0)


def _connect_one(plane: ControlPlaneProcess, pool: LoadPool, idle: float) -> tuple[float, int]:
    """Connect one more proxy; (control-plane CPU ms it cost, clusters it received)."""
    cpu0, t0 = plane.cpu_seconds(), time.monotonic()
    state = pool.grow(pool.size + 1, timeout=60)
    _settle(plane)
    elapsed = time.monotonic() - t0
    cost = plane.cpu_seconds() - cpu0 - idle * elapsed
    if state["ready"] != pool.size:
        raise RuntimeError(f"a proxy did not get its configuration: {state}")
    return cost * 1000, int(state["clusters"])


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("cold_connect")
    clusters = ctx.sizes.cold_clusters
    items = synthetic_items(clusters, endpoints_per_service=1, routes=_ROUTES)
    started = time.monotonic()
    with ControlPlaneProcess(ctx.scratch("cold_connect"), preload=items) as plane:
        assert plane.api is not None
        result.note(
            f"preloaded {plane.preloaded} resources through the Store and started the control "
            f"plane in {time.monotonic() - started:.1f}s"
        )
        bootstrap = plane.api.bootstrap(role="gateway", gateway=GATEWAY, admin_port=9901)
        metadata = bootstrap["node"]["metadata"]["meshplane"]
        _settle(plane)
        idle = _idle_rate(plane)
        with LoadPool(LoadSpec(plane.xds_port, metadata), workers=1) as pool:
            first, received = _connect_one(plane, pool, idle)
            costs = []
            for _ in range(ctx.sizes.cold_repeats):
                cost, received = _connect_one(plane, pool, idle)
                costs.append(cost)
            result.series["cpu_ms"] = costs
            result.series["first_cpu_ms"] = first
            result.add(
                Measure(
                    f"serve {received:,} clusters to a newly connected proxy",
                    percentile(costs, 50),
                    "ms CPU",
                    TARGET_MS if clusters >= 1000 else None,
                    f"median of {len(costs)} connects (p90 {percentile(costs, 90):.1f} ms); "
                    f"{received} clusters + endpoints, a listener and {_ROUTES} routes each; "
                    f"idle rate {idle * 1000:.2f} ms/s subtracted",
                )
            )
            result.add(
                Measure(
                    "the same, first proxy of its group (translates the group's resources)",
                    first,
                    "ms CPU",
                )
            )
            if ctx.profile and result.measures[0].met is False:
                output = ctx.results_dir / "profiles" / "cold-connect.txt"
                title = f"control plane serving {received} clusters to 30 newly connected proxies"
                with PySpy(plane.pid, output, title) as spy:
                    for _ in range(30):
                        _connect_one(plane, pool, idle)
                if spy.profile is not None:
                    result.profiles.append(spy.profile)
                else:
                    result.note(f"profile skipped: {spy.error}")
    return result
