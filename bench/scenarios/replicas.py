"""Replicas: two `meshplane serve` on one PostgreSQL database (a fresh schema of the server at
MESHPLANE_TEST_POSTGRES_URL, default 127.0.0.1:5432/test).

1. A write through replica A -> a real Envoy whose stream is on replica B serves it: B hears
   A's commit (PostgreSQL NOTIFY), builds and pushes; timed as the propagation scenario times
   one replica (a request loop through Envoy sees the new backend).
2. One change -> N simulated proxies all ACKed, N/2 on each replica, then all N on A alone,
   in the same run: what spreading streams over replicas buys.
3. SIGKILL of replica A holding F simulated proxies -> the same proxies (node ids) reconnect
   to B at once and all hold their configuration again. Envoy waits its retry backoff before
   reconnecting (up to 5 s, jittered, so a real fleet arrives spread over it); the figure is
   the control plane's part: B serving the whole fleet arriving at once.
Requests failed through Envoy across a replica kill and a leader kill mid-rotation are counted
by the end-to-end tests (tests/e2e/test_replicas.py: 0).
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from bench.adsload import LoadPool, LoadSpec
from bench.context import Context
from bench.controlplane import ControlPlaneProcess
from bench.dataplane import ChangeTimer, Envoy, backends_bootstrap
from bench.meshes import GATEWAY, ROUTE, flip_route
from bench.results import Measure, ScenarioResult
from bench.scenarios.fanout import ramp, wait_idle
from bench.scenarios.propagation import (
    SERVICES,
    backends_mesh,
    flips,
    serving,
    summarize_latencies,
)
from bench.stats import percentile
from tests.conftest import _postgres_schema, schema_url
from tests.support.ports import free_ports

__all__ = ["run"]

TARGET_P50_MS = 15.0
TARGET_P99_MS = 40.0
TARGET_FANOUT_S = 3.0
TARGET_FAILOVER_S = 3.0
_FANOUT_REPEATS = 3
_COLLECT_TIMEOUT_S = 60.0
_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("replicas")
    url = os.environ.get("MESHPLANE_TEST_POSTGRES_URL", _DEFAULT_POSTGRES)
    gateway_port, admin_port, *ports = free_ports(4)
    backend_ports = dict(zip(SERVICES, ports, strict=True))
    env = {"MESHPLANE_SECRET_KEY": secrets.token_urlsafe(32)}  # one secret for both
    with _postgres_schema(url) as schema:
        database = schema_url(url, schema)
        a = ControlPlaneProcess(ctx.scratch("replicas/a"), env=env, database_url=database)
        b = ControlPlaneProcess(ctx.scratch("replicas/b"), env=env, database_url=database)
        b.token = a.token  # one admin token for the mesh: each start sets it
        with (
            Envoy(backends_bootstrap(backend_ports), ctx.scratch("replicas/backends")),
            a,
            b,
        ):
            assert a.api is not None
            backends_mesh(a.api, backend_ports, gateway_port)
            _propagation(ctx, result, a, b, gateway_port, admin_port)
            _fanout(ctx, result, a, b)
            _failover(ctx, result, a, b)
    return result


def _propagation(
    ctx: Context,
    result: ScenarioResult,
    a: ControlPlaneProcess,
    b: ControlPlaneProcess,
    gateway_port: int,
    admin_port: int,
) -> None:
    """Writes through A, Envoy on B (its bootstrap names B only)."""
    assert a.api is not None
    assert b.api is not None
    write_api = a.api
    bootstrap = b.api.bootstrap(
        role="gateway",
        gateway=GATEWAY,
        admin_port=admin_port,
        xds_host="127.0.0.1",
        xds_port=b.xds_port,
    )
    with Envoy(bootstrap, ctx.scratch("replicas/envoy")):
        timer = ChangeTimer(gateway_port)
        try:
            if not serving(timer):
                raise RuntimeError("Envoy on replica B never served the route")
            runs = flips(
                timer,
                lambda s: write_api.put("routes", ROUTE, flip_route(s)),
                ctx.sizes.replica_changes,
            )
        finally:
            timer.close()
    label = "write through replica A -> Envoy on replica B serves it"
    limits = (TARGET_P50_MS, TARGET_P99_MS)
    summarize_latencies(result, label, runs["latencies_s"], targets=True, limits=limits)
    result.series["propagation"] = runs


def _writer(api: Any) -> Any:
    return lambda service: api.put("routes", ROUTE, flip_route(service))


def _spec(plane: ControlPlaneProcess, prefix: str) -> LoadSpec:
    assert plane.api is not None
    bootstrap = plane.api.bootstrap(role="gateway", gateway=GATEWAY, admin_port=9901)
    return LoadSpec(plane.xds_port, bootstrap["node"]["metadata"]["meshplane"], node_prefix=prefix)


def _grow(pool: LoadPool, total: int, step: int) -> dict[str, Any]:
    state: dict[str, Any] = {"ready": pool.size}
    for size in ramp(pool.size, total, step):
        state = pool.grow(size)
    return state


def _change(writer: ControlPlaneProcess, pools: list[LoadPool]) -> float | None:
    """One route flip through `writer` (to the service it does not route to); seconds until
    every stream of `pools` ACKed it."""
    assert writer.api is not None
    response = writer.api.http.get(f"/api/v1/routes/{ROUTE}")
    response.raise_for_status()
    current = response.json()["spec"]["destinations"][0]["service"]
    service = SERVICES[1 - SERVICES.index(current)]
    for pool in pools:
        pool.arm()
    t0 = time.monotonic()
    writer.api.put("routes", ROUTE, flip_route(service))
    times: list[float] = []
    for pool in pools:
        answer = pool.collect(_COLLECT_TIMEOUT_S)
        if any(t is None for t in answer["times"]):
            return None
        times += answer["times"]
    return max(times) - t0 if times else None


def _fanout(
    ctx: Context, result: ScenarioResult, a: ControlPlaneProcess, b: ControlPlaneProcess
) -> None:
    n, step, workers = ctx.sizes.replica_proxies, ctx.sizes.fanout_step, ctx.sizes.load_workers
    spread: list[float | None] = []
    alone: list[float | None] = []
    with LoadPool(_spec(a, "ra"), workers) as on_a:
        with LoadPool(_spec(b, "rb"), workers) as on_b:
            for pool, count in ((on_a, n // 2), (on_b, n - n // 2)):
                state = _grow(pool, count, step)
                if state["ready"] != count:
                    result.note(f"only {state['ready']} of {count} streams were ready")
            print(f"  [replicas] {n} proxies over 2 replicas connected", flush=True)
            for _ in range(_FANOUT_REPEATS):
                wait_idle(a)
                spread.append(_change(a, [on_a, on_b]))
        state = _grow(on_a, n, step)  # the same fleet on one replica
        print(f"  [replicas] {state['ready']} proxies on 1 replica connected", flush=True)
        for _ in range(_FANOUT_REPEATS):
            wait_idle(a)
            alone.append(_change(a, [on_a]))
    for label, runs, target in (
        (f"one change -> {n} proxies over 2 replicas all ACKed", spread, TARGET_FANOUT_S),
        (f"one change -> {n} proxies on 1 replica all ACKed (same run)", alone, None),
    ):
        done = [r for r in runs if r is not None]
        note = f"median of {len(done)} changes" + (
            f"; {len(runs) - len(done)} never reached every stream" if len(done) < len(runs) else ""
        )
        result.add(Measure(label, percentile(done, 50) if done else None, "s", target, note))
    result.series["fanout"] = {"spread_s": spread, "alone_s": alone}


def _failover(
    ctx: Context, result: ScenarioResult, a: ControlPlaneProcess, b: ControlPlaneProcess
) -> None:
    """F proxies on A; A killed; the same node ids connect to B at once."""
    count, step, workers = ctx.sizes.failover_proxies, ctx.sizes.fanout_step, ctx.sizes.load_workers
    with LoadPool(_spec(a, "fo"), workers) as on_a:
        state = _grow(on_a, count, step)
        if state["ready"] != count:
            result.note(f"failover: only {state['ready']} of {count} streams were ready on A")
        with LoadPool(_spec(b, "fo"), workers) as on_b:
            a.kill()
            t0 = time.monotonic()
            state = on_b.grow(count)
            elapsed = time.monotonic() - t0
    ready = state["ready"]
    note = f"{ready} of {count} streams hold their configuration on B" + (
        f" (errors: {state['errors']}, first: {state['first_error']})" if state["errors"] else ""
    )
    result.add(
        Measure(
            f"SIGKILL of a replica -> its {count} proxies all served again by the other",
            elapsed if ready == count else None,
            "s",
            TARGET_FAILOVER_S,
            note + "; all reconnecting at once (Envoy spreads them over its retry backoff)",
        )
    )
