"""The committed demo files are exactly what the topology generates, and they are valid.

docker-compose.yml and `meshplane demo` read the same envoy-configs/; if anyone edits one side
by hand, these fail and `meshplane demo configs` (make envoy-configs) puts them back in line.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from meshplane.demo.compose import render_compose, render_prometheus
from meshplane.demo.run import _bootstraps, _documents, _local
from meshplane.demo.topology import INSTANCES, config_dir, demo_bootstraps, render_config
from meshplane.model import kind_named
from tests.support.envoy import validate_configs

ROOT = config_dir().parents[1]


def test_bootstraps_match_the_topology() -> None:
    for name, bootstrap in demo_bootstraps().items():
        assert (config_dir() / name).read_text() == render_config(bootstrap), name


def test_compose_file_matches_the_topology() -> None:
    assert (ROOT / "docker-compose.yml").read_text() == render_compose()
    assert (config_dir() / "prometheus.yml").read_text() == render_prometheus()


def test_compose_and_local_demo_read_the_same_configs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounted = {
        service["command"][2].removeprefix("/envoy-configs/demo/")
        for service in compose["services"].values()
        if str(service.get("image", "")).startswith("envoyproxy/envoy:v1.40")
    }
    assert mounted == set(_bootstraps())  # the local demo runs exactly these files
    job = compose["services"]["mesh-config"]["command"][0]
    assert job.startswith("meshplane apply -f /envoy-configs/demo/mesh.yaml ")
    assert "-f /envoy-configs/demo/telemetry-compose.yaml" in job
    apps = {n for n, s in compose["services"].items() if "entrypoint" in s and n != "mesh-config"}
    assert apps == {i.node_id for i in INSTANCES}


def test_mesh_files_parse_as_specs() -> None:
    for name in ("mesh.yaml", "canary.yaml", "telemetry-compose.yaml"):
        for doc in _documents(config_dir() / name):
            kind_named(doc["kind"]).parse(doc["spec"])


def test_bootstraps_pass_envoy_validation_as_run_in_both_places() -> None:
    committed = [yaml.safe_load((config_dir() / n).read_text()) for n in demo_bootstraps()]
    validate_configs([*committed, *(_local(b) for b in committed)])


def test_docker_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must validate docker-compose.yml: install Debian's docker-compose")
        pytest.skip("docker-compose is not installed (CI installs it)")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
