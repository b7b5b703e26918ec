"""`python -m bench [--quick] [--only NAME ...]`: run scenarios, write latest.json and report.md.

A scenario that fails is recorded with its error and the run goes on, so one broken peer does
not hide every other figure; the exit status is 1 if any scenario failed (a missed target is a
result, not a failure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.results import Measure, ScenarioResult
from bench.sizes import FULL, QUICK, SMOKE, Sizes
from bench.speed_probe import probe_ms

__all__ = ["machine_info", "main", "run_scenarios"]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    """Where the figures come from: CPU, cores, memory, OS, Python, Envoy, commit."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    envoy = ""
    try:
        from tests.support.envoy import envoy_binary

        out = subprocess.run(
            [envoy_binary(), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        envoy = out.stdout.strip().split("version:")[-1].strip()
    except Exception as exc:  # reported, not fatal: the Envoy scenarios will fail loudly
        envoy = f"unavailable ({exc})"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "envoy": envoy,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "meshplane")),
    }


def run_scenarios(ctx: Context, names: list[str]) -> list[ScenarioResult]:
    from bench.scenarios import SCENARIOS

    results = []
    for name in names:
        probe = probe_ms()
        print(f"== {name} ({ctx.sizes.name}; speed probe {probe:.0f} ms)", flush=True)
        started = time.monotonic()
        try:
            result = SCENARIOS[name](ctx)
        except Exception as exc:
            result = ScenarioResult(name, error=f"{type(exc).__name__}: {exc}")
            print(f"  [{name}] FAILED: {result.error}", flush=True)
            traceback.print_exc()
        result.seconds = time.monotonic() - started
        result.speed_probe_ms = probe
        print(f"  [{name}] done in {result.seconds:.1f}s", flush=True)
        results.append(result)
    _peer_ratio(results)
    return results


def _peer_ratio(results: list[ScenarioResult]) -> None:
    """Put the peer's propagation beside ours: ratio of p50s and p99s (peer / meshplane)."""
    by_name = {r.name: r for r in results}
    ours, peer = by_name.get("propagation"), by_name.get("sovereign")
    if ours is None or peer is None or peer.error or ours.error:
        return

    def value(result: ScenarioResult, start: str, end: str) -> float | None:
        for m in result.measures:
            if m.name.startswith(start) and m.name.endswith(end) and m.value:
                return m.value
        return None

    for quantile in ("p50", "p99"):
        mine = value(ours, "API write -> Envoy serves the change (SotW)", quantile)
        theirs = value(peer, "sovereign:", quantile)
        if mine and theirs:
            peer.add(
                Measure(
                    f"sovereign / meshplane (SotW) propagation, {quantile}",
                    theirs / mine,
                    "x",
                    note=f"sovereign {theirs:,.0f} ms vs meshplane {mine:.1f} ms",
                )
            )


def _parser() -> argparse.ArgumentParser:
    from bench.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    sizes.add_argument("--smoke", action="store_true", help="the smoke tests' tiny sizes")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--results", type=Path, default=BENCH_DIR / "results", help="where to write the report"
    )
    parser.add_argument(
        "--venvs", type=Path, default=BENCH_DIR / ".venvs", help="peers' virtual environments"
    )
    parser.add_argument("--no-profile", action="store_true", help="never sample with py-spy")
    parser.add_argument("--no-peers", action="store_true", help="skip installing/running peers")
    return parser


def main(argv: list[str] | None = None) -> int:
    from bench.report import write_report
    from bench.scenarios import SCENARIOS

    args = _parser().parse_args(argv)
    sizes: Sizes = QUICK if args.quick else SMOKE if args.smoke else FULL
    names = args.only or list(SCENARIOS)
    results_dir: Path = args.results
    results_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(results_dir / "profiles", ignore_errors=True)
    machine = machine_info()
    print(
        f"meshplane bench ({sizes.name}) on {machine['cpu']}, {machine['cores']} cores", flush=True
    )
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="meshplane-bench-") as tmp:
        ctx = Context(
            sizes=sizes,
            workdir=Path(tmp),
            results_dir=results_dir,
            venvs_dir=args.venvs,
            profile=not args.no_profile,
            peers=not args.no_peers,
        )
        results = run_scenarios(ctx, names)
    document = {
        "started": started.isoformat(timespec="seconds"),
        "sizes": sizes.name,
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine,
        "scenarios": [r.as_dict() for r in results],
    }
    (results_dir / "latest.json").write_text(json.dumps(document, indent=1, default=str))
    report = write_report(document, results_dir)
    print(f"wrote {results_dir / 'latest.json'} and {report}", flush=True)
    return 1 if any(r.error for r in results) else 0
