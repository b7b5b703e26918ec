"""Each scenario runs end to end at smoke sizes, so the harness cannot rot between full runs.

They check that figures come out and are plausible, not that targets are met (the benchmark
itself reports that).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.cli import main
from bench.context import Context
from bench.dataplane import Envoy
from bench.meshes import synthetic_mesh
from bench.peers import sovereign_templates
from bench.results import ScenarioResult
from bench.sampling import PySpy, summarize
from bench.scenarios import (
    codec,
    cold_connect,
    fanout,
    propagation,
    rebuild,
    replicas,
    scale,
    sovereign,
)
from bench.stats import linear_fit, percentile
from tests.support.ports import free_ports


def _values(result: ScenarioResult) -> dict[str, float | None]:
    assert result.error is None
    return {m.name: m.value for m in result.measures}


def test_rebuild_smoke(ctx: Context) -> None:
    values = _values(rebuild.run(ctx))
    assert values["full rebuild, 20 services + 20 routes"]
    assert values["one endpoint change at 20 services"]


def test_codec_smoke_runs_the_upb_side(ctx: Context) -> None:
    result = codec.run(ctx)
    values = _values(result)
    assert values["build clusters (xds-protos/upb)"] is not None
    upb = ctx.workdir / "codec" / "upb.bin"
    assert codec.compare(upb, upb) == {"records": 6, "identical": 6, "equal_not_identical": 0}


@pytest.mark.e2e
def test_cold_connect_smoke(ctx: Context) -> None:
    result = cold_connect.run(ctx)
    values = _values(result)
    assert values["serve 20 clusters to a newly connected proxy"] is not None
    assert len(result.series["cpu_ms"]) == ctx.sizes.cold_repeats


@pytest.mark.e2e
def test_propagation_smoke(ctx: Context) -> None:
    result = propagation.run(ctx)
    for transport in ("SotW", "delta"):
        latencies = result.series[transport]["latencies_s"]
        assert len(latencies) == ctx.sizes.propagation_changes
        assert all(x is not None and 0 < x < 10 for x in latencies)


@pytest.mark.e2e
def test_fanout_smoke(ctx: Context) -> None:
    result = fanout.run(ctx)
    _values(result)
    levels = result.series["fanout"]
    assert [level["n"] for level in levels] == list(ctx.sizes.fanout_levels)
    for level in levels:
        assert all(run["missing"] == 0 and run["all_acked_s"] for run in level["runs"])
    assert len(result.series["memory"]) == len(ctx.sizes.fanout_levels) + 1


@pytest.mark.e2e
def test_scale_smoke_times_reads_under_full_builds(ctx: Context) -> None:
    result = scale.run(ctx)
    values = _values(result)
    label = "API GET /api/v1/services/<name> while full rebuilds at 20 services run"
    assert values[f"{label} back to back, p99"]
    builds = result.series["reads_under_rebuilds"]["builds"]
    assert any(not scope for _, scope in builds)  # full builds ran while reads were timed
    assert values["that write's median at 20 routes / at 10"]  # a real Envoy served each write
    # Envoy's own route configuration updates were read off its stats (2 routes on its host).
    assert (
        values["Envoy's own time to apply that gateway's route configuration (2 routes)"]
        is not None
    )
    # The same writes again, served by an Envoy that flushes its stats only when asked.
    unflushed = "the same writes, the gateway Envoy flushing its stats only when asked"
    assert values[f"{unflushed} (stats_flush_on_admin), p50"]
    applied = "meshplane apply -f of 64 documents -> the gateway serves the last route"
    assert (
        values[applied] or 0
    ) > 0  # 20 services, an endpoint and a route each, a gateway, a probe


@pytest.mark.e2e
@pytest.mark.postgres
def test_replicas_smoke(ctx: Context) -> None:
    values = _values(replicas.run(ctx))
    assert values["write through replica A -> Envoy on replica B serves it p50"]
    n, f = ctx.sizes.replica_proxies, ctx.sizes.failover_proxies
    assert values[f"one change -> {n} proxies over 2 replicas all ACKed"]
    assert values[f"one change -> {n} proxies on 1 replica all ACKed (same run)"]
    assert values[f"SIGKILL of a replica -> its {f} proxies all served again by the other"]


@pytest.mark.e2e
def test_sovereign_config_and_templates_drive_envoy(ctx: Context, tmp_path: Path) -> None:
    """Without installing sovereign: its config is written and what our templates render for it
    is a configuration Envoy accepts (checked with a real Envoy, validate mode)."""
    assert sovereign.run(ctx).error is None
    assert (ctx.workdir / "sovereign" / "sovereign.yaml").exists()
    gateway, blue, green = free_ports(3)
    items = sovereign.source_items("blue", {"blue": blue, "green": green}, gateway)
    clusters = sovereign_templates.call_clusters(items)
    routes = sovereign_templates.call_routes(items)
    assert [c["name"] for c in clusters] == ["blue", "green"]
    assert routes[0]["virtual_hosts"][0]["routes"][0]["route"] == {"cluster": "blue"}
    bootstrap = sovereign.envoy_bootstrap(free_ports(1)[0], 0)
    bootstrap["static_resources"]["clusters"] += clusters
    listener = sovereign_templates.call_listeners(items)[0]
    bootstrap["static_resources"]["listeners"] = [listener]
    with Envoy(bootstrap, tmp_path / "envoy", wait_ready=False):
        pass  # started, hence accepted: Envoy exits at once on a config it rejects


def test_cli_writes_json_and_report(tmp_path: Path) -> None:
    results = tmp_path / "results"
    code = main(
        ["--smoke", "--only", "rebuild", "--only", "codec", "--no-peers", "--no-profile",
         "--results", str(results), "--venvs", str(tmp_path / "venvs")]
    )  # fmt: skip
    assert code == 0
    document = json.loads((results / "latest.json").read_text())
    assert [s["name"] for s in document["scenarios"]] == ["rebuild", "codec"]
    report = (results / "report.md").read_text()
    assert "| measure | target | result | met? |" in report
    assert "one endpoint change at 20 services" in report


def test_stats() -> None:
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile([0, 10], 25) == 2.5
    slope, intercept = linear_fit([0, 1, 2], [1, 3, 5])
    assert (slope, intercept) == pytest.approx((2.0, 1.0))


def test_summarize_aggregates_py_spy_stacks() -> None:
    raw = (
        "process 1:main;run (a.py:3);build (b.py:10);pack (c.py:5) 30\n"
        "process 1:main;run (a.py:3);build (b.py:11) 10\n"
    )
    profile = summarize(raw, "t", rate=100)
    assert profile.samples == 40
    assert profile.busy_seconds == 0.4
    assert profile.top_self[0] == ("pack (c.py)", 75.0)
    assert ("build (b.py)", 100.0) in profile.top_total


def test_pyspy_reports_why_it_did_not_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bench.sampling.pyspy_binary", lambda: None)
    with PySpy(os.getpid(), tmp_path / "out.txt", "t") as spy:
        pass
    assert spy.profile is None
    assert spy.error is not None
    assert "py-spy" in spy.error


def test_synthetic_mesh_shape() -> None:
    mesh = synthetic_mesh(20)
    assert len(mesh.services) == 20
    assert len(mesh.endpoints) == 40
    assert len(mesh.routes) == 20
