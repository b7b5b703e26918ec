"""Fan-out and memory: one route change pushed to N connected proxies, and what each idle proxy
costs the control plane in memory.

The control plane runs in its own process; simulated gateway proxies (bench/adsload.py, one TCP
connection each, like Envoys) are opened in steps up to each level of N. At each level:
1. memory: once every stream holds its configuration and the process has settled, its RSS is
   read; RSS against N (0 included) is fitted with a line whose slope is the cost per proxy;
2. fan-out: the gateway's route is flipped between two services through the REST API, and the
   time from the start of the PUT until the last stream has received (and ACKed) the new route
   configuration is recorded, several times per level.
The load generator shares the machine's 2 cores with the control plane, so its own CPU time per
change is reported beside each figure (the control plane's CPU time too).
"""

from __future__ import annotations

import time
from typing import Any

from bench.adsload import LoadPool, LoadSpec
from bench.context import Context
from bench.controlplane import ControlPlaneProcess
from bench.meshes import GATEWAY, ROUTE, flip_route
from bench.results import Measure, ScenarioResult
from bench.sampling import PySpy
from bench.stats import linear_fit, percentile

__all__ = ["ramp", "run", "wait_idle"]

TARGETS_S = {1000: 0.5, 5000: 2.0}  # N -> seconds until all N ACKed
MEMORY_TARGET_KB = 100.0
_SETTLE_S = 1.0
_COLLECT_TIMEOUT_S = 30.0
_SERVICES = ("blue", "green")


def _mesh(api: Any) -> None:
    api.put("gateways", GATEWAY, {"port": 10000, "address": "127.0.0.1"})
    for index, service in enumerate(_SERVICES):
        api.put("services", service, {"protocol": "http"})
        spec = {"service": service, "address": "127.0.0.1", "port": 9000 + index}
        api.put("endpoints", f"{service}-0", spec)
    api.put("routes", ROUTE, flip_route(_SERVICES[0]))


def _flip(plane: ControlPlaneProcess, pool: LoadPool, service: str) -> dict[str, Any]:
    """One timed change: arm, PUT, collect; times are seconds after the PUT started."""
    assert plane.api is not None
    pool.arm()
    cpu0 = plane.cpu_seconds()
    t0 = time.monotonic()
    plane.api.put("routes", ROUTE, flip_route(service))
    put_s = time.monotonic() - t0
    answer = pool.collect(_COLLECT_TIMEOUT_S)
    times = [t - t0 for t in answer["times"] if t is not None]
    missing = len(answer["times"]) - len(times)
    return {
        "all_acked_s": max(times) if times and not missing else None,
        "p50_s": percentile(times, 50) if times else None,
        "p99_s": percentile(times, 99) if times else None,
        "missing": missing,
        "put_s": put_s,
        "server_cpu_s": plane.cpu_seconds() - cpu0,
        "client_cpu_s": answer["client_cpu"],
        "errors": answer["errors"],
        "first_error": answer["first_error"],
    }


def wait_idle(plane: ControlPlaneProcess, timeout: float = 10.0) -> None:
    """Wait until the control plane uses < 5% of a core over 100 ms (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = plane.cpu_seconds()
        time.sleep(0.1)
        if plane.cpu_seconds() - before < 0.005:
            return


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("fanout")
    sizes = ctx.sizes
    with ControlPlaneProcess(ctx.scratch("fanout")) as plane:
        assert plane.api is not None
        _mesh(plane.api)
        bootstrap = plane.api.bootstrap(role="gateway", gateway=GATEWAY, admin_port=9901)
        metadata = bootstrap["node"]["metadata"]["meshplane"]
        wait_idle(plane)
        time.sleep(_SETTLE_S)
        memory: list[tuple[int, int]] = [(0, plane.rss_bytes())]
        result.note(f"control plane RSS with no proxy: {memory[0][1] / 2**20:.1f} MiB")
        levels: list[dict[str, Any]] = []
        spec = LoadSpec(plane.xds_port, metadata)
        with LoadPool(spec, workers=sizes.load_workers) as pool:
            flips = 0
            for level in sizes.fanout_levels:
                started = time.monotonic()
                state: dict[str, Any] = {"ready": pool.size}
                for size in ramp(pool.size, level, sizes.fanout_step):
                    state = pool.grow(size)
                if state["ready"] != level:
                    result.note(
                        f"only {state['ready']} of {level} streams got their configuration "
                        f"(errors: {state['errors']}, first: {state['first_error']})"
                    )
                connect_s = time.monotonic() - started
                wait_idle(plane)
                time.sleep(_SETTLE_S)
                rss = plane.rss_bytes()
                memory.append((level, rss))
                print(
                    f"  [fanout] N={level}: all connected ({connect_s:.1f}s to open), "
                    f"RSS {rss / 2**20:.1f} MiB",
                    flush=True,
                )
                runs = []
                for _ in range(sizes.fanout_repeats):
                    flips += 1
                    runs.append(_flip(plane, pool, _SERVICES[flips % 2]))
                    wait_idle(plane)
                levels.append({"n": level, "rss_bytes": rss, "connect_s": connect_s, "runs": runs})
                _report_level(result, level, runs)
            _report_memory(result, memory)
            result.series["fanout"] = levels
            result.series["memory"] = [{"n": n, "rss_bytes": rss} for n, rss in memory]
            if ctx.profile and _missed(result):
                _profile(ctx, result, plane, pool, flips)
    return result


def ramp(current: int, level: int, step: int) -> list[int]:
    """Sizes to grow through from `current` to `level`: multiples of `step`, then `level`.

    Opening thousands of streams at once makes grpc's client fail some of them; real fleets
    also connect over time rather than in one instant.
    """
    first = (current // step + 1) * step
    return [*range(first, level, step), level] if level > current else []


def _report_level(result: ScenarioResult, level: int, runs: list[dict[str, Any]]) -> None:
    done = [r["all_acked_s"] for r in runs if r["all_acked_s"] is not None]
    if len(done) < len(runs):
        missing = max(r["missing"] for r in runs)
        result.note(f"N={level}: {missing} streams did not receive a change within the timeout")
    median = percentile(done, 50) if done else None
    server = percentile([r["server_cpu_s"] for r in runs], 50)
    client = percentile([r["client_cpu_s"] for r in runs], 50)
    note = (
        f"median of {len(runs)} changes (worst {max(done):.2f} s); per change the control plane "
        f"used {server:.2f} CPU-s and the load generator {client:.2f} CPU-s of the 2 cores"
        if done
        else "no change reached every stream"
    )
    result.add(
        Measure(
            f"one change -> N={level} proxies all ACKed",
            median,
            "s",
            TARGETS_S.get(level),
            note,
        )
    )


def _report_memory(result: ScenarioResult, memory: list[tuple[int, int]]) -> None:
    if len(memory) < 2:
        return
    slope, intercept = linear_fit([n for n, _ in memory], [rss for _, rss in memory])
    result.series["memory_fit"] = {"bytes_per_proxy": slope, "intercept_bytes": intercept}
    result.add(
        Measure(
            "control-plane memory per idle connected proxy",
            slope / 1024,
            "KB",
            MEMORY_TARGET_KB,
            f"slope of RSS vs N over N={', '.join(str(n) for n, _ in memory)} "
            f"(one TCP connection and one SotW stream per proxy)",
        )
    )


def _missed(result: ScenarioResult) -> bool:
    return any(m.met is False for m in result.measures)


def _profile(
    ctx: Context, result: ScenarioResult, plane: ControlPlaneProcess, pool: LoadPool, flips: int
) -> None:
    """Sample the control plane during two more changes at the largest N."""
    output = ctx.results_dir / "profiles" / "fanout-server.txt"
    title = f"control plane during a change pushed to N={pool.size} proxies"
    with PySpy(plane.pid, output, title) as spy:
        for i in range(2):
            _flip(plane, pool, _SERVICES[(flips + 1 + i) % 2])
            wait_idle(plane)
    if spy.profile is not None:
        result.profiles.append(spy.profile)
    else:
        result.note(f"profile skipped: {spy.error}")
