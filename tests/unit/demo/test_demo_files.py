"""The committed demo files are exactly what the topology generates, and they are valid.

docker-compose.yml and `meshplane demo` run the same nodes, from bootstraps fetched from the
control plane; if anyone edits one side by hand, these fail and `meshplane demo configs` (make
envoy-configs) puts them back in line.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from meshplane.demo.compose import render_compose, render_prometheus
from meshplane.demo.run import _documents
from meshplane.demo.topology import INSTANCES, config_dir, demo_nodes
from meshplane.model import kind_named

ROOT = config_dir().parents[1]


def test_compose_file_matches_the_topology() -> None:
    assert (ROOT / "docker-compose.yml").read_text() == render_compose()
    assert (config_dir() / "prometheus.yml").read_text() == render_prometheus()


def test_compose_runs_the_demo_nodes_from_the_bootstraps_mesh_config_fetches() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    envoys = {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("envoyproxy/envoy:v1.40")
    }
    run = {service["command"][2].removeprefix("/bootstraps/") for service in envoys.values()}
    assert run == set(demo_nodes())  # the local demo fetches and runs exactly these
    for service in envoys.values():
        assert service["volumes"] == ["bootstraps:/bootstraps:ro"]
        assert service["depends_on"]["mesh-config"] == {
            "condition": "service_completed_successfully"
        }
    job = compose["services"]["mesh-config"]["command"][0]
    assert job.startswith("meshplane apply -f /envoy-configs/demo/mesh.yaml ")
    assert "-f /envoy-configs/demo/telemetry-compose.yaml" in job
    assert job.endswith(
        "&& meshplane demo bootstraps --out /bootstraps --api-url http://meshplane:8080"
    )
    assert "bootstraps:/bootstraps" in compose["services"]["mesh-config"]["volumes"]
    apps = {n for n, s in compose["services"].items() if "entrypoint" in s and n != "mesh-config"}
    assert apps == {i.node_id for i in INSTANCES}


def test_mesh_files_parse_as_specs() -> None:
    for name in ("mesh.yaml", "canary.yaml", "telemetry-compose.yaml"):
        for doc in _documents(config_dir() / name):
            kind_named(doc["kind"]).parse(doc["spec"])


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
