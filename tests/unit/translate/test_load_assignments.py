"""EDS: endpoints per cluster, ordered by endpoint name, with weights and labels."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from meshplane.model import Mesh
from meshplane.xds.translate import zone_resources
from meshplane.xds.type_urls import CLUSTER, ENDPOINT
from tests.support.envoy import validate_resource_sets
from tests.support.meshes import endpoint, mesh, service
from tests.unit.translate.meshes import EXAMPLES, shared


def assignments(example: str):
    return {cla.cluster_name: cla for cla in shared(EXAMPLES[example].mesh)[ENDPOINT]}


def endpoints(assignment) -> list[tuple[str, int, int]]:
    return [
        (
            lb.endpoint.address.socket_address.address,
            lb.endpoint.address.socket_address.port_value,
            lb.load_balancing_weight.value,
        )
        for locality in assignment.endpoints
        for lb in locality.lb_endpoints
    ]


def test_one_locality_with_endpoints_sorted_by_name_and_weighted():
    (assignment,) = assignments("two-endpoints").values()
    assert assignment.cluster_name == "reviews"
    assert len(assignment.endpoints) == 1
    # reviews-a was added second but sorts first.
    assert endpoints(assignment) == [("10.0.0.1", 9080, 1), ("10.0.0.2", 9080, 3)]


def test_labels_travel_as_envoy_lb_metadata():
    found = assignments("subsets")
    lb_endpoint = found["reviews"].endpoints[0].lb_endpoints[1]
    metadata = json_format.MessageToDict(lb_endpoint.metadata)
    assert metadata == {"filterMetadata": {"envoy.lb": {"version": "v2", "zone": "a"}}}
    unlabeled = assignments("two-endpoints")["reviews"].endpoints[0].lb_endpoints[0]
    assert not unlabeled.HasField("metadata")


def test_subset_assignment_holds_endpoints_carrying_every_label():
    found = assignments("subsets")
    assert list(found) == ["reviews", "reviews|version=v2", "reviews|version=v2,zone=a"]
    assert [a for a, _, _ in endpoints(found["reviews"])] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [a for a, _, _ in endpoints(found["reviews|version=v2"])] == ["10.0.0.2", "10.0.0.3"]
    assert [a for a, _, _ in endpoints(found["reviews|version=v2,zone=a"])] == ["10.0.0.2"]


def test_service_without_endpoints_gets_an_empty_assignment():
    found = assignments("empty-service")
    assert list(found) == ["lonely"]
    assert endpoints(found["lonely"]) == []
    assert len(found["lonely"].endpoints) == 0


def test_zero_weight_subset_still_gets_its_assignment():
    found = assignments("zero-weight")
    assert [a for a, _, _ in endpoints(found["a|v=1"])] == ["10.0.5.1"]
    assert set(found) == {"a", "a|v=1", "b", "c"}


def zoned(example: Mesh, zone: str) -> list[Any]:
    """`zone_resources`' assignments typed Any, so tests may read their fields."""
    return list(zone_resources(example, zone)[ENDPOINT])


def zoned_mesh() -> Mesh:
    return mesh(
        service("web"),
        endpoint("web-a1", "web", "10.0.6.1", 80, zone="a"),
        endpoint("web-a2", "web", "10.0.6.2", 80, zone="a"),
        endpoint("web-b1", "web", "10.0.6.3", 80, zone="b"),
        endpoint("web-x", "web", "10.0.6.4", 80),
        service("only-b"),
        endpoint("only-b-1", "only-b", "10.0.7.1", 80, zone="b"),
    )


def localities(assignment) -> list[tuple[int, str, list[str]]]:
    return [
        (
            group.priority,
            group.locality.zone,
            [lb.endpoint.address.socket_address.address for lb in group.lb_endpoints],
        )
        for group in assignment.endpoints
    ]


def test_endpoints_in_the_proxy_zone_come_first_and_the_rest_is_failover():
    found = {cla.cluster_name: cla for cla in zoned(zoned_mesh(), "a")}
    assert localities(found["web"]) == [
        (0, "a", ["10.0.6.1", "10.0.6.2"]),
        (1, "", ["10.0.6.4"]),
        (1, "b", ["10.0.6.3"]),
    ]
    # Nothing in zone a: everything stays priority 0 (Envoy needs a priority 0 to start from).
    assert localities(found["only-b"]) == [(0, "b", ["10.0.7.1"])]


def test_without_a_zone_every_locality_is_priority_zero():
    found = {cla.cluster_name: cla for cla in shared(zoned_mesh())[ENDPOINT]}
    assert localities(found["web"]) == [
        (0, "", ["10.0.6.4"]),
        (0, "a", ["10.0.6.1", "10.0.6.2"]),
        (0, "b", ["10.0.6.3"]),
    ]
    # A zone no endpoint is in sees exactly what proxies without a zone see (one shared version).
    assert zoned(zoned_mesh(), "c") == shared(zoned_mesh())[ENDPOINT]


def test_endpoints_without_zones_keep_one_locality_without_a_name():
    (assignment,) = zoned(EXAMPLES["two-endpoints"].mesh, "a")
    assert len(assignment.endpoints) == 1
    assert not assignment.endpoints[0].HasField("locality")


def test_zoned_assignments_pass_envoy_validation():
    example = zoned_mesh()
    clusters = shared(example)[CLUSTER]
    validate_resource_sets(
        [{CLUSTER: clusters, ENDPOINT: zone_resources(example, zone)[ENDPOINT]} for zone in "ab"]
    )
