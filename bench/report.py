"""Turn latest.json into report.md and PNG plots (latency distribution, fan-out and memory vs N).

The report leads with the targets table (measure, target, result, met?), then the peer beside
meshplane, every other figure with its note, the profiles taken where a target was missed, and
what failed. Plots need matplotlib (the `bench` extra); without it the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results import fmt

__all__ = ["write_plots", "write_report"]


def _measures(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(s["name"], m) for s in document["scenarios"] for m in s["measures"]]


def _value(m: dict[str, Any]) -> str:
    return "n/a" if m["value"] is None else f"{fmt(m['value'])} {m['unit']}"


def _target(m: dict[str, Any]) -> str:
    return f"<= {fmt(m['target'])} {m['unit']}" if m["target"] is not None else ""


def _met(m: dict[str, Any]) -> str:
    return {True: "yes", False: "**no**", None: "—"}[m["met"]]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _speed_line(document: dict[str, Any]) -> str:
    """The speed probe (bench/speed_probe.py) before each scenario: a shared machine drifts."""
    probes = [
        f"{s['name']} {s['speed_probe_ms']:.0f}"
        for s in document["scenarios"]
        if s.get("speed_probe_ms") is not None
    ]
    if not probes:
        return "Speed probe: not recorded."
    return (
        "Speed probe before each scenario, ms (a fixed pure-Python workload; lower is faster, "
        f"and a spread means the machine's speed changed during the run): {', '.join(probes)}."
    )


def write_report(document: dict[str, Any], results_dir: Path) -> Path:
    plots = write_plots(document, results_dir)
    machine = document["machine"]
    lines = [
        "# meshplane benchmark report",
        "",
        f"Run {document['started']} with `{document['command']}` ({document['sizes']} sizes).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
        f"{machine['os']}; Python {machine['python']}; Envoy {machine['envoy']}; meshplane "
        f"commit {machine['commit']}{' (+ uncommitted changes)' if machine['dirty'] else ''}.",
        "",
        _speed_line(document),
        "",
        "## Targets",
        "",
        "| measure | target | result | met? |",
        "|---|---|---|---|",
    ]
    for _, m in _measures(document):
        if m["target"] is not None:
            lines.append(f"| {_cell(m['name'])} | {_target(m)} | {_value(m)} | {_met(m)} |")
    peers = [m for name, m in _measures(document) if name == "sovereign"]
    if peers:
        lines += ["", "## Peer in the same run: sovereign", "", "| measure | result | note |"]
        lines.append("|---|---|---|")
        lines += [f"| {_cell(m['name'])} | {_value(m)} | {_cell(m['note'])} |" for m in peers]
    lines += ["", "## Every figure", "", "| scenario | measure | result | target | note |"]
    lines.append("|---|---|---|---|---|")
    for name, m in _measures(document):
        lines.append(
            f"| {name} | {_cell(m['name'])} | {_value(m)} | {_target(m)} | {_cell(m['note'])} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots if p.suffix == ".png"]
        lines += [str(p) for p in plots if p.suffix != ".png"]
    profiles = [(s["name"], p) for s in document["scenarios"] for p in s["profiles"]]
    if profiles:
        lines += ["", "## Profiles of missed targets", ""]
        for name, profile in profiles:
            lines += _profile_lines(name, profile)
    notes = [(s["name"], n) for s in document["scenarios"] for n in s["notes"]]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {name}: {_cell(note)}" for name, note in notes]
    failed = [s for s in document["scenarios"] if s["error"]]
    if failed:
        lines += ["", "## Scenarios that failed", ""]
        for s in failed:
            lines += [f"### {s['name']}", "", "```", s["error"], "```", ""]
    lines += ["", "## Time per scenario", ""]
    lines += [f"- {s['name']}: {s['seconds']:.0f} s" for s in document["scenarios"]]
    path = results_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _profile_lines(scenario: str, profile: dict[str, Any]) -> list[str]:
    lines = [
        f"### {scenario}: {profile['title']}",
        "",
        f"{profile['tool']}: {profile['samples']} busy samples ({profile['busy_seconds']} s of "
        f"CPU outside idle waits); raw stacks: `{profile['raw_path']}`.",
        "",
        "| self % | function (where the CPU was) | total % | meshplane function (incl. callees) |",
        "|---|---|---|---|",
    ]
    mine = profile.get("top_meshplane") or profile["top_total"]
    rows = max(len(profile["top_self"]), len(mine))
    for i in range(rows):
        left = profile["top_self"][i] if i < len(profile["top_self"]) else ("", "")
        right = mine[i] if i < len(mine) else ("", "")
        lines.append(f"| {left[1]} | `{left[0]}` | {right[1]} | `{right[0]}` |")
    return [*lines, ""]


def write_plots(document: dict[str, Any], results_dir: Path) -> list[Path]:
    """The PNGs this run's data allows; [Path('... skipped')] when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [Path("(plots skipped: matplotlib is not installed; pip install -e '.[bench]')")]
    series = {s["name"]: s["series"] for s in document["scenarios"] if not s["error"]}
    out: list[Path] = []

    latencies = {}
    for transport in ("SotW", "delta"):
        data = series.get("propagation", {}).get(transport)
        if data:
            latencies[f"meshplane {transport}"] = data["latencies_s"]
    peer = series.get("sovereign", {}).get("sovereign")
    if peer:
        latencies["sovereign (REST polling)"] = peer["latencies_s"]
    if latencies:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label, values in latencies.items():
            ms = sorted(v * 1000 for v in values if v is not None)
            if ms:
                ax.step(ms, [(i + 1) / len(ms) for i in range(len(ms))], where="post", label=label)
        ax.axvline(10, color="grey", linestyle="--", linewidth=0.8, label="p50 target 10 ms")
        ax.axvline(30, color="grey", linestyle=":", linewidth=0.8, label="p99 target 30 ms")
        ax.set_xscale("log")
        ax.set_xlabel("API write -> Envoy serves the change (ms, log scale)")
        ax.set_ylabel("fraction of changes")
        ax.set_title("Propagation latency distribution")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_save(fig, results_dir / "propagation.png"))

    fanout = series.get("fanout", {}).get("fanout")
    if fanout:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ns = [level["n"] for level in fanout]
        for key, label in (("all_acked_s", "all N ACKed"), ("p50_s", "half of N ACKed")):
            values = [[r[key] for r in level["runs"] if r[key] is not None] for level in fanout]
            medians = [sorted(v)[len(v) // 2] if v else float("nan") for v in values]
            lows = [m - min(v) if v else 0 for m, v in zip(medians, values, strict=True)]
            highs = [max(v) - m if v else 0 for m, v in zip(medians, values, strict=True)]
            ax.errorbar(ns, medians, yerr=[lows, highs], marker="o", capsize=3, label=label)
        ax.scatter([1000, 5000], [0.5, 2.0], marker="x", color="red", zorder=5, label="targets")
        ax.set_xlabel("connected proxies (N)")
        ax.set_ylabel("seconds after the API write")
        ax.set_title("Fan-out: one route change to N proxies (median, min-max)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_save(fig, results_dir / "fanout.png"))

    memory = series.get("fanout", {}).get("memory")
    if memory:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ns = [p["n"] for p in memory]
        mib = [p["rss_bytes"] / 2**20 for p in memory]
        ax.plot(ns, mib, "o", label="control-plane RSS")
        fit = series["fanout"].get("memory_fit")
        if fit:
            line = [(fit["intercept_bytes"] + fit["bytes_per_proxy"] * n) / 2**20 for n in ns]
            per = fit["bytes_per_proxy"] / 1024
            ax.plot(ns, line, "-", label=f"fit: {per:.1f} KB per proxy")
        ax.set_xlabel("connected idle proxies (N)")
        ax.set_ylabel("RSS (MiB)")
        ax.set_title("Control-plane memory vs connected proxies")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_save(fig, results_dir / "memory.png"))

    rebuild = series.get("rebuild", {}).get("sizes")
    if rebuild:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ns = [s["services"] for s in rebuild]
        ax.plot(ns, [s["total_s"] * 1000 for s in rebuild], "o-", label="full rebuild")
        ones = [sorted(s["one_change_ms"])[len(s["one_change_ms"]) // 2] for s in rebuild]
        ax.plot(ns, ones, "o-", label="one endpoint change (builder)")
        ax.scatter([10000, 10000], [2000, 10], marker="x", color="red", zorder=5, label="targets")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("services (each with 2 endpoints and a route)")
        ax.set_ylabel("ms")
        ax.set_title("Rebuild cost vs mesh size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_save(fig, results_dir / "rebuild.png"))
    return out


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
