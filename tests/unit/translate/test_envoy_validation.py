"""Every example mesh's translated resources pass `envoy --mode validate` (real Envoy 1.40)."""

from __future__ import annotations

import pytest
from envoy.config.route.v3 import route_components_pb2, route_pb2

from meshplane.xds.translate import group_resources, shared_resources
from meshplane.xds.type_urls import CLUSTER, LISTENER, ROUTE
from tests.support.envoy import (
    EnvoyError,
    merge_resources,
    static_bootstrap,
    validate_resource_sets,
)
from tests.unit.translate.meshes import EXAMPLES


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_resources_pass_envoy_validation(example):
    """One Envoy per proxy group, all started at once: shared resources plus that group's."""
    case = EXAMPLES[example]
    shared = shared_resources(case.mesh)
    sets = [merge_resources(shared, group_resources(case.mesh, group)) for group in case.groups]
    validate_resource_sets(sets or [shared])


def test_validation_rejects_a_route_to_an_unknown_cluster():
    """Guards the check above: a dangling reference must fail, or the validation proves nothing."""
    bad = route_pb2.RouteConfiguration(
        name="bad",
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name="x",
                domains=["*"],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(cluster="nowhere"),
                    )
                ],
            )
        ],
    )
    with pytest.raises(EnvoyError, match="nowhere"):
        validate_resource_sets([{ROUTE: [bad]}])


def test_folding_refuses_resources_envoy_would_wait_on_forever():
    resources = shared_resources(EXAMPLES["two-endpoints"].mesh)
    with pytest.raises(ValueError, match="no ClusterLoadAssignment"):
        static_bootstrap({CLUSTER: resources[CLUSTER]})
    group = group_resources(EXAMPLES["sidecar"].mesh, EXAMPLES["sidecar"].groups[0])
    with pytest.raises(ValueError, match="route configuration 'outbound'"):
        static_bootstrap({LISTENER: group[LISTENER]})
