"""Rebuild cost: translate + serialize a whole mesh, and the work one endpoint change causes.

In-process, on synthetic meshes (bench/meshes.py) of 100 / 1,000 / 10,000 services, each with
two endpoints and a gateway route (every 10th with a v1/v2 label split), all on one gateway:
1. full build, step by step: `shared_resources` (clusters, load assignments), `group_resources`
   for the gateway group (listener, route configuration), and `pack` (deterministic
   serialization, hashing) of every message;
2. the SnapshotBuilder as the control plane runs it (a fake MeshSource stands in for the store):
   `load()` with one watched gateway group, then one endpoint's port changed, `catch_up()` timed.
Incremental work is proportional to the change when (2) stays flat as the mesh grows; the ratio
of (2) to the full build is reported per size.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from typing import Any

from bench.context import Context
from bench.meshes import GATEWAY, service_name, synthetic_mesh
from bench.results import Measure, ScenarioResult
from bench.sampling import PySpy
from bench.stats import percentile
from meshplane.gc_tuning import server_collector
from meshplane.model import Change, EndpointSpec, Mesh, ProxyGroup, Role
from meshplane.xds import ResourceCache, Snapshot, SnapshotBuilder, pack
from meshplane.xds.translate import group_resources, shared_resources

__all__ = ["FULL_TARGET_S", "ONE_CHANGE_TARGET_MS", "run"]

FULL_TARGET_S = 2.0
ONE_CHANGE_TARGET_MS = 10.0
TARGET_SIZE = 10_000
GROUP = ProxyGroup(Role.GATEWAY, gateway=GATEWAY)


class _Source:
    """A MeshSource over an in-memory mesh and a list of pending changes."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.changes: list[Change] = []

    async def load_mesh(self) -> Mesh:
        return self.mesh

    async def changes_since(self, revision: int) -> list[Change] | None:
        return [c for c in self.changes if c.revision > revision]

    async def wait_beyond(self, revision: int) -> int:
        raise NotImplementedError("the benchmark calls catch_up() itself")


def _full_build(mesh: Mesh) -> dict[str, float]:
    """Seconds spent in each step of translating and packing the whole mesh for one group."""
    t0 = time.perf_counter()
    shared = shared_resources(mesh)
    t1 = time.perf_counter()
    own = group_resources(mesh, GROUP)
    t2 = time.perf_counter()
    count = 0
    for by_type in (shared, own):
        for type_url, messages in by_type.items():
            for message in messages:
                pack(type_url, message)
                count += 1
    t3 = time.perf_counter()
    return {
        "translate_shared_s": t1 - t0,
        "translate_group_s": t2 - t1,
        "pack_s": t3 - t2,
        "total_s": t3 - t0,
        "resources": count,
    }


def _endpoint_change(mesh: Mesh, revision: int) -> Change:
    """Move endpoint 0 of service 0 to another port (a different port every time)."""
    name = f"{service_name(0)}-0"
    spec = mesh.endpoints[name]
    assert isinstance(spec, EndpointSpec)
    moved = spec.model_copy(update={"port": 20000 + revision % 20000})
    return Change(revision, "endpoints", name, moved)


def _service_change(mesh: Mesh, revision: int) -> Change:
    """Change service 0's connect timeout (a different one every time)."""
    name = service_name(0)
    spec = mesh.services[name]
    return Change(revision, "services", name, spec.model_copy(update={"connect_timeout": revision}))


async def _timed_changes(
    builder: SnapshotBuilder,
    source: _Source,
    published: list[Snapshot],
    change: Callable[[Mesh, int], Change],
    repeats: int,
    collect: bool,
) -> list[float]:
    """Milliseconds `catch_up` takes for each of `repeats` changes made by `change`."""
    times = []
    revision = builder.mesh.revision
    for _ in range(repeats):
        revision += 1
        source.changes.append(change(builder.mesh, revision))
        if collect:
            gc.collect()
        t0 = time.perf_counter()
        await builder.catch_up()
        times.append((time.perf_counter() - t0) * 1000)
        if builder.mesh.revision != revision or published[-1].revision != revision:
            raise RuntimeError("the builder did not publish the change")
    return times


async def _builder_run(mesh: Mesh, repeats: int, *, collect: bool = True) -> dict[str, Any]:
    """Load the builder, then time `repeats` one-endpoint changes and `repeats` changes of one
    service's settings (gc before each, untimed, unless `collect` is off: under the profiler a
    full collection would be noise)."""
    source = _Source(mesh)
    cache = ResourceCache()
    published: list[Snapshot] = []
    cache.watch(GROUP, published.append)
    builder = SnapshotBuilder(source, cache)
    t0 = time.perf_counter()
    await builder.load()
    load_s = time.perf_counter() - t0
    changes_ms = await _timed_changes(
        builder, source, published, _endpoint_change, repeats, collect
    )
    service_ms = await _timed_changes(builder, source, published, _service_change, repeats, collect)
    return {"load_s": load_s, "one_change_ms": changes_ms, "service_change_ms": service_ms}


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("rebuild")
    sizes: list[dict[str, Any]] = []
    largest = max(ctx.sizes.rebuild_services)
    for services in ctx.sizes.rebuild_services:
        t0 = time.perf_counter()
        mesh = synthetic_mesh(services)
        model_s = time.perf_counter() - t0
        with server_collector():  # the build is timed as the control plane runs it
            full = _full_build(mesh)
            builder = asyncio.run(_builder_run(mesh, ctx.sizes.rebuild_repeats))
        one = percentile(builder["one_change_ms"], 50)
        entry = {
            "services": services,
            "routes": len(mesh.routes),
            "endpoints": len(mesh.endpoints),
            "model_s": model_s,
            **full,
            "builder_load_s": builder["load_s"],
            "one_change_ms": builder["one_change_ms"],
            "service_change_ms": builder["service_change_ms"],
        }
        sizes.append(entry)
        at_target = services >= TARGET_SIZE
        result.add(
            Measure(
                f"full rebuild, {services:,} services + {len(mesh.routes):,} routes",
                full["total_s"],
                "s",
                FULL_TARGET_S if at_target else None,
                f"{full['resources']:,} resources: translate shared "
                f"{full['translate_shared_s']:.2f} s + gateway group "
                f"{full['translate_group_s']:.2f} s + pack {full['pack_s']:.2f} s; "
                f"SnapshotBuilder.load {builder['load_s']:.2f} s",
            )
        )
        result.add(
            Measure(
                f"one endpoint change at {services:,} services",
                one,
                "ms",
                ONE_CHANGE_TARGET_MS if at_target else None,
                f"SnapshotBuilder.catch_up, median of {len(builder['one_change_ms'])}; "
                f"{one / 1000 / full['total_s']:.0%} of a full rebuild",
            )
        )
        service = percentile(builder["service_change_ms"], 50)
        result.add(
            Measure(
                f"one service's settings change at {services:,} services",
                service,
                "ms",
                note=f"SnapshotBuilder.catch_up, median of {len(builder['service_change_ms'])}: "
                "its clusters, then every watched group's listeners and routes "
                f"({service / 1000 / full['total_s']:.0%} of a full rebuild)",
            )
        )
    result.series["sizes"] = sizes
    if len(sizes) >= 2:
        first, last = sizes[0], sizes[-1]
        growth = percentile(last["one_change_ms"], 50) / percentile(first["one_change_ms"], 50)
        result.note(
            f"one endpoint change costs {growth:.0f}x more at {last['services']:,} services than "
            f"at {first['services']:,} ({last['services'] / first['services']:.0f}x the mesh): "
            + ("proportional to the mesh, not to the change" if growth > 5 else "flat")
        )
    if ctx.profile and any(m.met is False for m in result.measures):
        _profile(ctx, result, largest)
    return result


def _profile(ctx: Context, result: ScenarioResult, services: int) -> None:
    """Sample this process while the builder absorbs endpoint changes on the largest mesh."""
    mesh = synthetic_mesh(services)
    output = ctx.results_dir / "profiles" / "rebuild-one-change.txt"
    title = f"SnapshotBuilder: load() and 3 one-endpoint changes at {services:,} services"
    with PySpy(os.getpid(), output, title) as spy:
        asyncio.run(_builder_run(mesh, 3, collect=False))
    if spy.profile is not None:
        result.profiles.append(spy.profile)
    else:
        result.note(f"profile skipped: {spy.error}")
