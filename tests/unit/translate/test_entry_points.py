"""shared_resources / group_resources: keys, ordering and stable bytes."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import ProxyGroup, Role
from meshplane.xds.translate import group_resources, shared_resources
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.support.meshes import mesh
from tests.unit.translate.meshes import EXAMPLES


def name_of(message: Any) -> str:
    return str(message.cluster_name if hasattr(message, "cluster_name") else message.name)


def serialized(resources) -> dict[str, list[bytes]]:
    return {
        key: [m.SerializeToString(deterministic=True) for m in messages]
        for key, messages in resources.items()
    }


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_keys_and_order_by_name(example):
    case = EXAMPLES[example]
    shared = shared_resources(case.mesh)
    assert set(shared) == {CLUSTER, ENDPOINT}
    for group in case.groups:
        resources = group_resources(case.mesh, group)
        assert set(resources) == {CLUSTER, LISTENER, ROUTE}
        for messages in [*shared.values(), *resources.values()]:
            names = [name_of(m) for m in messages]
            assert names == sorted(names)
            assert len(set(names)) == len(names)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_same_mesh_in_another_insertion_order_gives_the_same_bytes(example):
    case = EXAMPLES[example]
    items = [
        (kind, name, spec)
        for kind in ("services", "endpoints", "gateways", "routes", "authorization-policies")
        for name, spec in getattr(case.mesh, kind.replace("-", "_")).items()
    ]
    reordered = mesh(*reversed(items))
    assert serialized(shared_resources(reordered)) == serialized(shared_resources(case.mesh))
    for group in case.groups:
        assert serialized(group_resources(reordered, group)) == serialized(
            group_resources(case.mesh, group)
        )


def test_every_shared_cluster_has_its_assignment():
    resources = shared_resources(EXAMPLES["subsets"].mesh)
    assert [name_of(c) for c in resources[CLUSTER]] == [name_of(a) for a in resources[ENDPOINT]]


@pytest.mark.parametrize(
    "group",
    [
        ProxyGroup(Role.GATEWAY),
        ProxyGroup(Role.SIDECAR, service="a", inbound_port=1, app_port=2),
        ProxyGroup(Role.SIDECAR, inbound_port=1, app_port=2, outbound_port=3),
    ],
)
def test_incomplete_group_is_a_value_error(group):
    with pytest.raises(ValueError, match="needs"):
        group_resources(mesh(), group)
