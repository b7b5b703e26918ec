"""The README's Traffic management section stays true: its YAML applies, and its explain output
is what explain prints for that mesh."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from meshplane.cli.explain import render
from meshplane.explain import ExplainRequest, explain
from meshplane.model import Change, Mesh, Spec, check_write, kind_named
from meshplane.xds.translate import group_resources, shared_resources
from tests.support.envoy import merge_resources, validate_resources
from tests.support.meshes import gateway_group, sidecar_group

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Traffic management")
    return text[start : text.index("\n## ", start + 1)]


def documents() -> list[tuple[str, str, Spec]]:
    items = []
    for block in re.findall(r"```yaml\n(.*?)```", section(), re.S):
        for doc in yaml.safe_load_all(block):
            kind = kind_named(doc["kind"])
            items.append((kind.plural, doc["name"], kind.parse(doc["spec"])))
    return items


def test_every_example_is_valid_and_breaks_no_mesh_rule():
    items = documents()
    assert {kind for kind, _, _ in items} == {"services", "endpoints", "gateways", "routes"}
    mesh = Mesh.of(1, items)
    for kind, name, spec in items:
        before = Mesh.of(1, [item for item in items if item[:2] != (kind, name)])
        after = before.with_changes([Change(2, kind, name, spec)])
        assert check_write(before, after, kind, name) == [], (kind, name)
    groups = [gateway_group("edge"), sidecar_group("payments")]
    validate_resources(
        merge_resources(shared_resources(mesh), *(group_resources(mesh, g) for g in groups))
    )


def test_the_explain_example_prints_what_the_readme_shows():
    example = re.search(r"```sh\n(meshplane explain .*?)\n```\n\n```\n(.*?)```", section(), re.S)
    assert example is not None
    command, shown = example.groups()
    args = shlex.split(command)[2:]
    options: dict[str, Any] = dict(zip(args[::2], args[1::2], strict=True))
    ask = ExplainRequest(
        gateway=options["--gateway"], host=options["--host"], path=options["--path"]
    )
    answer = explain(Mesh.of(1, documents()), ask)
    assert render(answer.model_dump(mode="json")) + "\n" == shown
