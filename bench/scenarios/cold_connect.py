"""Cold connect: control-plane CPU to serve 1,000 clusters to one newly connected proxy.

The mesh has 1,000 services (one endpoint each), a gateway and 10 routes, committed
through meshplane's Store before the control plane starts (see bench/controlplane.py). Each
repetition connects one more simulated gateway proxy (a new TCP connection and ADS stream, see
bench/adsload.py) that fetches everything as Envoy does: CDS, then EDS for every cluster, LDS,
RDS, ACKing each. The control plane's CPU time (all threads, nanosecond schedstat) is read before
the connect and once the process is idle again; the idle rate measured beforehand is subtracted.
The first proxy of a group also pays for translating the group's own resources, so it is
reported apart from the median of the others.

The floor, measured the same way in the same run: a bare grpc.aio server (bench/floor_ads.py)
replaying the very responses meshplane sent, to the same simulated proxies. The difference is
what meshplane's own work costs; the floor is what grpc.aio and the machine cost (on a VM where
every wake-up of a thread is expensive, most of it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

from bench.adsload import LoadPool, LoadSpec, record_responses
from bench.context import Context
from bench.controlplane import ControlPlaneProcess
from bench.floor_ads import FloorAds
from bench.meshes import GATEWAY, synthetic_items
from bench.results import Measure, ScenarioResult
from bench.sampling import PySpy
from bench.stats import percentile

__all__ = ["TARGET_MS", "run"]

TARGET_MS = 5.0
_ROUTES = 10  # every write of a route re-checks route precedence against all routes: slow
_QUIET_WINDOW_S = 0.05
_QUIET_CPU_S = 0.0005


class _Server(Protocol):
    def cpu_seconds(self) -> float: ...


def _settle(plane: _Server, timeout: float = 10.0) -> None:
    """Return once the process used < 0.5 ms of CPU over a 50 ms window (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = plane.cpu_seconds()
        time.sleep(_QUIET_WINDOW_S)
        if plane.cpu_seconds() - before < _QUIET_CPU_S:
            return


def _idle_rate(plane: _Server, seconds: float = 1.0) -> float:
    """CPU seconds per second the idle control plane uses (timers, keepalives)."""
    cpu0, t0 = plane.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (plane.cpu_seconds() - cpu0) / (time.monotonic() - t0)


def _connect_one(plane: _Server, pool: LoadPool, idle: float) -> tuple[float, int]:
    """Connect one more proxy; (control-plane CPU ms it cost, clusters it received)."""
    cpu0, t0 = plane.cpu_seconds(), time.monotonic()
    state = pool.grow(pool.size + 1, timeout=60)
    _settle(plane)
    elapsed = time.monotonic() - t0
    cost = plane.cpu_seconds() - cpu0 - idle * elapsed
    if state["ready"] != pool.size:
        raise RuntimeError(f"a proxy did not get its configuration: {state}")
    return cost * 1000, int(state["clusters"])


def _alternate(
    measured: tuple[_Server, LoadPool, float], floor: tuple[_Server, LoadPool], repeats: int
) -> tuple[list[float], list[float]]:
    """CPU per connect to meshplane and to the floor, connects alternated: the machine drifts."""
    plane, pool, idle = measured
    floor_server, on_floor = floor
    _settle(floor_server)
    floor_idle = _idle_rate(floor_server)
    _connect_one(floor_server, on_floor, floor_idle)  # its first connect warms it up
    costs, floor_costs = [], []
    for _ in range(repeats):
        costs.append(_connect_one(plane, pool, idle)[0])
        floor_costs.append(_connect_one(floor_server, on_floor, floor_idle)[0])
    return costs, floor_costs


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
        spec = LoadSpec(plane.xds_port, metadata)
        with LoadPool(spec, workers=1) as pool:
            first, received = _connect_one(plane, pool, idle)
            recorded = record_responses(replace(spec, node_prefix="recorder"))
            with FloorAds(ctx.scratch("cold_connect"), recorded) as floor:
                floor_spec = replace(spec, xds_port=floor.xds_port, node_prefix="floor")
                with LoadPool(floor_spec, workers=1) as on_floor:
                    costs, floor_costs = _alternate(
                        (plane, pool, idle), (floor, on_floor), ctx.sizes.cold_repeats
                    )
            _report(result, received, costs, floor_costs, first, idle, enforce=clusters >= 1000)
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


def _report(
    result: ScenarioResult,
    received: int,
    costs: list[float],
    floor_costs: list[float],
    first: float,
    idle: float,
    *,
    enforce: bool,
) -> None:
    result.series["cpu_ms"] = costs
    result.series["floor_cpu_ms"] = floor_costs
    result.series["first_cpu_ms"] = first
    median, floor = percentile(costs, 50), percentile(floor_costs, 50)
    result.add(
        Measure(
            f"serve {received:,} clusters to a newly connected proxy",
            median,
            "ms CPU",
            TARGET_MS if enforce else None,
            f"median of {len(costs)} connects (p90 {percentile(costs, 90):.1f} ms); "
            f"{received} clusters + endpoints, their secrets, a listener and {_ROUTES} routes "
            f"each; idle rate {idle * 1000:.2f} ms/s subtracted",
        )
    )
    result.add(
        Measure(
            "the same from a bare grpc.aio server replaying meshplane's responses (the floor)",
            floor,
            "ms CPU",
            note=f"meshplane / floor = {median / floor:.2f}x; meshplane's own work "
            f"{median - floor:.2f} ms (alternated connects, same proxies, same bytes)",
        )
    )
    result.add(
        Measure(
            "the same, first proxy of its group (translates the group's resources)",
            first,
            "ms CPU",
        )
    )
