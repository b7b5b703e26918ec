"""Codec: xds-protos (upb, what meshplane uses) against envoy-data-plane (betterproto2).

Both sides run bench/codec_worker.py in a fresh process of their own environment (import time
is only meaningful in a fresh interpreter): the upb side in this venv, the betterproto side in
bench/.venvs/codec. They build the same clusters and route configuration, time build, serialize,
parse and import, and write their bytes; this scenario then checks the bytes are identical and,
where they are not, whether they still decode (with upb) to equal messages.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.results import Measure, ScenarioResult
from bench.venvs import ensure_venv

__all__ = ["run"]

WORKER = Path(__file__).resolve().parent.parent / "codec_worker.py"
_STEPS = (
    ("import", "import_s"),
    ("build clusters", "build_clusters_s"),
    ("build route configuration", "build_routes_s"),
    ("serialize clusters", "serialize_clusters_s"),
    ("serialize route configuration", "serialize_routes_s"),
    ("parse clusters", "parse_clusters_s"),
    ("parse route configuration", "parse_routes_s"),
)


def run_worker(python: Path | str, lib: str, ctx: Context, out: Path) -> dict[str, Any]:
    sizes = ctx.sizes
    command = [
        str(python), "-P", str(WORKER), "--lib", lib,
        "--clusters", str(sizes.codec_clusters), "--routes", str(sizes.codec_routes),
        "--repeats", str(sizes.codec_repeats), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"codec worker ({lib}) failed:\n{done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def compare(upb_path: Path, other_path: Path) -> dict[str, int]:
    """Count records with identical bytes, and records that differ in bytes but decode equal."""
    from envoy.config.cluster.v3.cluster_pb2 import Cluster
    from envoy.config.route.v3.route_pb2 import RouteConfiguration

    ours, theirs = _records(upb_path), _records(other_path)
    if len(ours) != len(theirs):
        raise RuntimeError(f"record counts differ: {len(ours)} vs {len(theirs)}")
    identical = equal = 0
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a == b:
            identical += 1
            continue
        kind = RouteConfiguration if index == len(ours) - 1 else Cluster
        if kind.FromString(a) == kind.FromString(b):
            equal += 1
    return {"records": len(ours), "identical": identical, "equal_not_identical": equal}


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult("codec")
    sizes = ctx.sizes
    workdir = ctx.scratch("codec")
    upb = run_worker(sys.executable, "upb", ctx, workdir / "upb.bin")
    result.series["upb"] = upb
    result.note(
        f"{sizes.codec_clusters} clusters + 1 route configuration with {sizes.codec_routes} "
        f"routes, best of {sizes.codec_repeats}; upb: {upb['versions']}"
    )
    other: dict[str, Any] | None = None
    if ctx.peers:
        python = ensure_venv(ctx.venvs_dir, "codec")
        other = run_worker(python, "betterproto", ctx, workdir / "betterproto.bin")
        result.series["betterproto"] = other
        result.note(f"betterproto2 side: {other['versions']}")
    else:
        result.note("envoy-data-plane side skipped (peers disabled)")
    for label, key in _STEPS:
        ours = upb[key] * 1000
        if other is None:
            result.add(Measure(f"{label} (xds-protos/upb)", ours, "ms"))
            continue
        theirs = other[key] * 1000
        result.add(
            Measure(
                f"{label}: xds-protos/upb vs envoy-data-plane",
                ours,
                "ms",
                note=f"envoy-data-plane {theirs:.1f} ms ({theirs / ours:.1f}x upb)"
                if ours > 0
                else f"envoy-data-plane {theirs:.1f} ms",
            )
        )
    if other is not None:
        check = compare(workdir / "upb.bin", workdir / "betterproto.bin")
        result.series["bytes_check"] = check
        result.add(
            Measure(
                "messages with byte-identical encodings",
                check["identical"],
                f"of {check['records']}",
                note=f"{check['equal_not_identical']} more decode to equal messages but differ "
                "in bytes (field order)"
                if check["equal_not_identical"]
                else "",
            )
        )
    return result
