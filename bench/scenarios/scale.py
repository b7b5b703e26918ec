"""Scale: what a large mesh costs everything else the control plane does, one row per figure.

Each row is a function of the context that adds its measures to the result (`ROWS`; more join
as they are measured); rows share one `meshplane serve` process (bench/controlplane.py) with
`scale_services` synthetic services (bench/meshes.py) and `_ROUTES` gateway routes over
`_GATEWAYS` gateways (the issue's geometry: 1,000 routes on the measured gateway's host)
preloaded through the Store, and one proxy of each gateway connected (simulated ADS streams,
bench/adsload.py), so every build translates the shared resources and the gateways' routes, and
pushes them to streams, as a real deployment would.

Rows:
- A whole mesh applied: `meshplane apply -f` of a file holding `scale_services` services, an
  endpoint each, a gateway and a route each (30,001 documents at 10,000), plus a probe route
  last, on a control plane of its own with a real Envoy gateway connected; timed from the
  command's start until the gateway answers on the probe route (and the command's own time).
- Writes served: an API write (a route flipped between two services) until a real Envoy
  gateway serves it, with `_PROXIES` simulated proxies of the gateway connected, p50 and p99;
  beside it, Envoy's own median time to apply the gateway's route configuration (its RDS
  `update_duration`), the floor of that write; the same writes again with the gateway Envoy's
  periodic stats flush off (`_NO_FLUSH_TIMER`); then the same write on a control plane whose
  gateway has `_FEW_ROUTES` routes, and the ratio of the two medians (the write's cost must not
  grow with the routes beside it).
- API reads under rebuilds: GET /api/v1/services/<name> latency while full rebuilds run back to
  back. A writer flips a route between a service and one of its label subsets (the subsets
  change, so each build is a full one) every `_WRITE_EVERY_S`, faster than a build, so one is
  always pending; meanwhile a reader GETs a service every ~10 ms on its own keep-alive
  connection and times each answer. The builds the control plane logged in the window are
  reported beside the latency, so the figure is known to have been taken under rebuilds; the
  same reads on the idle control plane come first, for comparison.
"""

from __future__ import annotations

import contextlib
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.adsload import LoadPool, LoadSpec
from bench.context import Context
from bench.controlplane import Api, ControlPlaneProcess
from bench.dataplane import ChangeTimer, Envoy, backends_bootstrap
from bench.meshes import (
    GATEWAY,
    ROUTE,
    flip_route,
    gateway_name,
    service_name,
    synthetic_items,
)
from bench.results import Measure, ScenarioResult
from bench.scenarios.propagation import SERVICES, flips, serving, summarize_latencies
from bench.stats import percentile
from tests.support.ports import free_ports

__all__ = ["APPLY_TARGET_S", "READ_UNDER_REBUILDS_TARGET_MS", "WRITE_RATIO_TARGET", "run"]

READ_UNDER_REBUILDS_TARGET_MS = 50.0
WRITE_RATIO_TARGET = 1.5
_PROXIES = 100  # simulated proxies of the gateway while writes are timed
_FEW_ROUTES = 10
APPLY_TARGET_S = 10.0
_PROBE = "probe-last"  # the apply row's last route and its service
TARGET_SIZE = 10_000
_WRITE_EVERY_S = 0.1
_READ_EVERY_S = (0.005, 0.015)  # uniform: a random phase against the builds
_IDLE_READ_S = 3.0
_FLIP = "rebuilds"  # the gateway and route the writer flips
# Envoy merges and flushes its stats on its main thread every 5 s by default; holding 20,000
# clusters' stats, that takes it about 100 ms, and a change arriving meanwhile waits (the
# slowest writes of the row). The second pass of writes has the gateway Envoy flush only when
# its admin endpoint is asked (update_ms asks), to show the writes without that pause.
_NO_FLUSH_TIMER: dict[str, Any] = {"stats_flush_on_admin": True}
# Gateway routes preloaded, one per service up to this many (the 10,000 services and
# 10,000 routes), spread over this many gateways, so 1,000 are on the measured one's host; the
# preload is one batch apply.
_ROUTES = 10_000
_GATEWAYS = 10
# A build's log line (meshplane/xds/builder.py); a scope in parentheses marks a partial one.
_BUILD_LINE = re.compile(r"built revision=(\d+) groups=(\d+) .*?ms=([\d.]+)( \(.*\))?$")


@dataclass(frozen=True, slots=True)
class Scale:
    """What the rows share: the control plane, its simulated gateway proxies, the gateway's port."""

    plane: ControlPlaneProcess
    pool: LoadPool
    gateway_port: int


Row = Callable[[Context, Scale, ScenarioResult], None]


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("scale")
    apply_whole_mesh(ctx, result)
    services = ctx.sizes.scale_services
    started = time.monotonic()
    (gateway_port,) = free_ports(1)
    items = synthetic_items(services, routes=_ROUTES, gateways=_GATEWAYS, gateway_port=gateway_port)
    with ControlPlaneProcess(ctx.scratch("scale"), preload=items) as plane:
        assert plane.api is not None
        result.note(
            f"preloaded {plane.preloaded:,} resources ({services:,} services) through the Store "
            f"and started the control plane in {time.monotonic() - started:.1f}s"
        )
        with contextlib.ExitStack() as others, _proxies(plane, 1) as pool:
            for g in range(1, _GATEWAYS):
                others.enter_context(_proxies(plane, 1, gateway_name(g)))
            for row in ROWS:
                row(ctx, Scale(plane, pool, gateway_port), result)
    return result


def reads_under_rebuilds(ctx: Context, scale: Scale, result: ScenarioResult) -> None:
    """GET latency on the idle control plane, then while full rebuilds run back to back."""
    plane = scale.plane
    services = ctx.sizes.scale_services
    path = f"/api/v1/services/{service_name(services // 2)}"
    idle = _timed_reads(plane, path, _IDLE_READ_S)
    log_from = plane.log_path.stat().st_size
    stop = threading.Event()
    writes: list[float] = []
    writer = threading.Thread(target=_flip_subsets, args=(plane, stop, writes), daemon=True)
    writer.start()
    try:
        busy = _timed_reads(plane, path, ctx.sizes.scale_seconds)
    finally:
        stop.set()
        writer.join(60)
    builds = _builds_logged(plane, log_from)
    full = [ms for ms, scope in builds if not scope]
    label = f"API GET /api/v1/services/<name> while full rebuilds at {services:,} services run"
    note = f"{len(busy)} reads over {ctx.sizes.scale_seconds:g}s, max {max(busy):.1f} ms; "
    note += f"{len(full)} full builds logged meanwhile"
    if full:
        note += f" (median {percentile(full, 50):.0f} ms, {sum(full) / 1000:.1f}s in all)"
    if writes:
        note += f"; {len(writes)} route writes, PUT p50 {percentile(writes, 50):.1f} ms"
    target = READ_UNDER_REBUILDS_TARGET_MS if services >= TARGET_SIZE else None
    result.add(Measure(f"{label} back to back, p99", percentile(busy, 99), "ms", target, note))
    result.add(Measure(f"{label}, p50", percentile(busy, 50), "ms"))
    result.add(
        Measure(
            f"API GET /api/v1/services/<name> on the idle control plane at {services:,} services,"
            " p99",
            percentile(idle, 99),
            "ms",
            note=f"{len(idle)} reads, p50 {percentile(idle, 50):.1f} ms",
        )
    )
    if not full:
        result.note("no full build was logged while reads were timed: the row measured nothing")
    result.series["reads_under_rebuilds"] = {"idle_ms": idle, "busy_ms": busy, "builds": builds}


def writes_served(ctx: Context, scale: Scale, result: ScenarioResult) -> None:
    """API write -> a real Envoy gateway serves it, with `_PROXIES` simulated proxies of the
    gateway connected; then the same write on a control plane of its own whose gateway has
    `_FEW_ROUTES` routes, with as many proxies, for the ratio the target is about."""
    state = scale.pool.grow(_PROXIES, timeout=600)
    if state["ready"] != _PROXIES:
        raise RuntimeError(f"not every simulated proxy got its configuration: {state}")
    services, changes = ctx.sizes.scale_services, ctx.sizes.scale_writes
    routes = min(_ROUTES, services)
    on_host = len(range(0, routes, _GATEWAYS))
    many, envoy_ms = _time_writes(
        scale.plane, scale.gateway_port, ctx.scratch("scale-writes"), changes
    )
    label = f"API write -> a real Envoy serves it at {services:,} services + {routes:,} routes"
    label += f" ({on_host:,} on its host), {_PROXIES} simulated proxies,"
    big = summarize_latencies(result, label, many, targets=services >= TARGET_SIZE)
    result.add(
        Measure(
            f"Envoy's own time to apply that gateway's route configuration ({on_host:,} routes)",
            envoy_ms,
            "ms",
            note="median RDS update_duration: the floor of the write above",
        )
    )
    unflushed, _ = _time_writes(
        scale.plane,
        scale.gateway_port,
        ctx.scratch("scale-writes-unflushed"),
        changes,
        envoy=_NO_FLUSH_TIMER,
    )
    summarize_latencies(
        result,
        "the same writes, the gateway Envoy flushing its stats only when asked"
        " (stats_flush_on_admin),",
        unflushed,
        targets=False,
    )
    (few_port,) = free_ports(1)
    small = synthetic_items(_FEW_ROUTES, endpoints_per_service=1, gateway_port=few_port)
    with (
        ControlPlaneProcess(ctx.scratch("scale-few"), preload=small) as plane,
        _proxies(plane, _PROXIES),
    ):
        few, _ = _time_writes(plane, few_port, ctx.scratch("scale-writes-few"), changes)
    little = summarize_latencies(
        result, f"the same write at {_FEW_ROUTES} routes,", few, targets=False
    )
    if big["p50_ms"] and little["p50_ms"]:
        ratio = big["p50_ms"] / little["p50_ms"]
        note = f"{big['p50_ms']:.1f} ms / {little['p50_ms']:.1f} ms"
        target = WRITE_RATIO_TARGET if services >= TARGET_SIZE else None
        result.add(
            Measure(
                f"that write's median at {routes:,} routes / at {_FEW_ROUTES}",
                ratio,
                "x",
                target,
                note,
            )
        )


@contextlib.contextmanager
def _proxies(plane: ControlPlaneProcess, count: int, gateway: str = GATEWAY) -> Iterator[LoadPool]:
    """`count` simulated proxies of `gateway`, connected and configured, until the block ends."""
    assert plane.api is not None
    bootstrap = plane.api.bootstrap(role="gateway", gateway=gateway, admin_port=9901)
    spec = LoadSpec(plane.xds_port, bootstrap["node"]["metadata"]["meshplane"])
    with LoadPool(spec, workers=1) as pool:
        state = pool.grow(count, timeout=600)
        if state["ready"] != count:
            raise RuntimeError(f"not every simulated proxy got its configuration: {state}")
        yield pool


def _time_writes(
    plane: ControlPlaneProcess,
    gateway_port: int,
    workdir: Path,
    changes: int,
    *,
    envoy: dict[str, Any] | None = None,
) -> tuple[list[float | None], float | None]:
    """Seconds from each route flip's PUT until a real Envoy gateway serves it (None: never),
    and that Envoy's median time to apply its route configuration (ms, see Envoy.update_ms).
    `envoy`: bootstrap fields of the gateway Envoy to set besides the generated ones."""
    assert plane.api is not None
    api = plane.api
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    for name, port in ports.items():
        api.put("services", name, {"protocol": "http"})
        api.put("endpoints", f"{name}-0", {"service": name, "address": "127.0.0.1", "port": port})
    api.put("routes", ROUTE, flip_route(SERVICES[0]))
    (admin_port,) = free_ports(1)
    bootstrap = api.bootstrap(role="gateway", gateway=GATEWAY, admin_port=admin_port)
    bootstrap.update(envoy or {})
    with (
        Envoy(backends_bootstrap(ports), workdir / "backends"),
        Envoy(bootstrap, workdir / "gateway", wait_ready=False) as gateway,
    ):
        timer = ChangeTimer(gateway_port)
        try:
            if not serving(timer, timeout=300):
                raise RuntimeError("the gateway Envoy never served the flip route")
            if not gateway.settle(timeout=300) or not _all_acked(api, timeout=300):
                raise RuntimeError("the proxies did not take the mesh's configuration in 300 s")
            write = lambda service: api.put("routes", ROUTE, flip_route(service))  # noqa: E731
            latencies: list[float | None] = flips(timer, write, changes, timeout=60)["latencies_s"]
        finally:
            timer.close()
        envoy_ms = gateway.update_ms(r"\.rds\.")
    return latencies, envoy_ms


def _all_acked(api: Api, timeout: float) -> bool:
    """Wait until every connected proxy acknowledged all it was sent. Adding the flip's
    services sends every proxy all 10,000 clusters again (state of the world): writes timed
    before that settles would time the simulated proxies' catching up, not the write."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        types = [t for proxy in api.proxies() for t in proxy["types"]]
        if all(t["sent_version"] == t["acked_version"] for t in types):
            return True
        time.sleep(0.2)
    return False


ROWS: list[Row] = [reads_under_rebuilds, writes_served]


def apply_whole_mesh(ctx: Context, result: ScenarioResult) -> None:
    """`meshplane apply -f` of a whole mesh, until a connected Envoy gateway serves its last
    route (its own control plane: the mesh is what the file creates)."""
    services = ctx.sizes.scale_services
    workdir = ctx.scratch("scale-apply")
    backend_port, gateway_port, admin_port = free_ports(3)
    documents = _whole_mesh(services, backend_port, gateway_port)
    manifest = workdir / "mesh.yaml"
    manifest.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    probe = f"http://127.0.0.1:{gateway_port}/{_PROBE}"
    with (
        ControlPlaneProcess(workdir / "plane") as plane,
        Envoy(backends_bootstrap({_PROBE: backend_port}), workdir / "backend"),
    ):
        assert plane.api is not None
        bootstrap = plane.api.bootstrap(role="gateway", gateway=GATEWAY, admin_port=admin_port)
        with Envoy(bootstrap, workdir / "gateway", wait_ready=False):
            command = [sys.executable, "-m", "meshplane", "apply", "-f", str(manifest)]
            command += ["--api-url", plane.api_url, "--token", plane.token]
            started = time.perf_counter()
            cli = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            served = _until_served(probe, started, timeout=600)
            _, errors = cli.communicate(timeout=600)
            if cli.returncode != 0:
                raise RuntimeError(f"meshplane apply failed: {errors.decode()[-2000:]}")
    took = served - started
    label = f"meshplane apply -f of {len(documents):,} documents -> the gateway serves the last"
    target = APPLY_TARGET_S if services >= TARGET_SIZE else None
    note = f"{services:,} services with an endpoint and a route each; SQLite"
    result.add(Measure(f"{label} route", took, "s", target, note))


def _whole_mesh(services: int, backend_port: int, gateway_port: int) -> list[dict[str, Any]]:
    """The documents of `synthetic_items` (one endpoint and one route per service), then a
    probe service whose endpoint answers, and its route last."""
    items = list(synthetic_items(services, endpoints_per_service=1, gateway_port=gateway_port))
    items += [
        ("services", _PROBE, {"protocol": "http"}),
        ("endpoints", _PROBE, {"service": _PROBE, "address": "127.0.0.1", "port": backend_port}),
        (
            "routes",
            _PROBE,
            {
                "gateways": [GATEWAY],
                "match": {"prefix": f"/{_PROBE}"},
                "destinations": [{"service": _PROBE}],
            },
        ),
    ]
    return [{"kind": kind, "name": name, "spec": spec} for kind, name, spec in items]


def _until_served(url: str, started: float, timeout: float) -> float:
    """When (perf_counter) `url` first answered 200 (polled every 20 ms)."""
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.perf_counter() - started < timeout:
            with contextlib.suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return time.perf_counter()
            time.sleep(0.02)
    raise RuntimeError(f"{url} not served within {timeout:g}s")


def _timed_reads(plane: ControlPlaneProcess, path: str, seconds: float) -> list[float]:
    """Milliseconds each GET of `path` took, one at a time for `seconds` (own connection)."""
    api = Api(plane.api_url, plane.token)
    pause = random.Random(7)
    times: list[float] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            status = api.get_status(path)
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status}")
            time.sleep(pause.uniform(*_READ_EVERY_S))
    finally:
        api.close()
    return times


def _flip_subsets(plane: ControlPlaneProcess, stop: threading.Event, took: list[float]) -> None:
    """Until `stop`: every `_WRITE_EVERY_S` (or as soon as the last PUT answered), flip a route
    between a service and the service's v1 subset; record each PUT's ms. The route is alone on
    a gateway of its own (no proxy serves it), so its write checks no other route's precedence:
    the writes cost the control plane little besides the builds they cause."""
    assert plane.api is not None
    plane.api.put("gateways", _FLIP, {"port": 10001, "address": "127.0.0.1"})
    subset = False
    while not stop.is_set():
        subset = not subset
        destination: dict[str, Any] = {"service": service_name(1)}
        if subset:
            destination["labels"] = {"version": "v1"}
        t0 = time.perf_counter()
        plane.api.put("routes", _FLIP, {"gateways": [_FLIP], "destinations": [destination]})
        elapsed = time.perf_counter() - t0
        took.append(elapsed * 1000)
        stop.wait(max(0.0, _WRITE_EVERY_S - elapsed))


def _builds_logged(plane: ControlPlaneProcess, offset: int) -> list[tuple[float, str]]:
    """(ms, scope) of every build the control plane logged after byte `offset` of its log."""
    with plane.log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    builds = []
    for line in lines:
        match = _BUILD_LINE.search(line)
        if match:
            builds.append((float(match.group(3)), (match.group(4) or "").strip(" ()")))
    return builds
