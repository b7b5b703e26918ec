"""EDS: endpoints per cluster, ordered by endpoint name, with weights and labels."""

from __future__ import annotations

from google.protobuf import json_format

from meshplane.xds.type_urls import ENDPOINT
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
