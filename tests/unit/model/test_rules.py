"""The mesh-wide write rules, on meshes built in memory."""

from __future__ import annotations

from typing import Any

import pytest

from meshplane.model import Change, Mesh, RouteSpec, check_write
from meshplane.model.shadowing import shadowing
from tests.support.meshes import endpoint, gateway, mesh, service

BASE = mesh(
    service("shop"),
    endpoint("shop-1", "shop", "10.0.0.1", 80, labels={"version": "v1"}),
    gateway("edge", 8080, hosts=["a.example", "b.example"]),
)


def write(before: Mesh, kind: str, name: str, spec: Any) -> list[str]:
    after = before.with_changes([Change(2, kind, name, spec)])
    return [p.message for p in check_write(before, after, kind, name)]


def match_route(**match: Any) -> RouteSpec:
    return RouteSpec.model_validate(
        {"gateways": ["edge"], "match": match, "destinations": [{"service": "shop"}]}
    )


@pytest.mark.parametrize(
    ("first", "second", "hidden"),
    [
        ({"prefix": "/a"}, {"prefix": "/a"}, True),
        ({"prefix": "/a"}, {"prefix": "/a/b"}, False),  # longer prefixes come first
        ({"path": "/a"}, {"prefix": "/a"}, False),
        ({"regex": "^/a$"}, {"regex": "^/a$"}, True),
        ({"methods": ["GET", "POST"]}, {"methods": ["GET"]}, True),
        ({"methods": ["GET"]}, {"methods": ["POST"]}, False),
        (
            {"headers": [{"name": "x", "present": True}]},
            {"headers": [{"name": "x", "exact": "1"}]},
            True,
        ),
        (
            {"headers": [{"name": "x", "present": True}]},
            {"headers": [{"name": "x", "present": False}]},
            False,
        ),
        (
            {"headers": [{"name": "x", "exact": "1"}]},
            {"headers": [{"name": "x", "exact": "2"}]},
            False,
        ),
        (
            {"query": [{"name": "q", "present": True}]},
            {"query": [{"name": "q", "regex": "^1$"}]},
            True,
        ),
        (
            {"query": [{"name": "q", "exact": "1"}]},
            {"headers": [{"name": "q", "exact": "1"}]},
            False,
        ),
    ],
)
def test_a_route_is_hidden_only_when_an_earlier_one_matches_everything_it_would(
    first: dict[str, Any], second: dict[str, Any], hidden: bool
):
    # "a" sorts before "b": with equal precedence, "a" comes first.
    example = BASE.with_changes(
        [
            Change(2, "routes", "a", match_route(**first)),
            Change(3, "routes", "b", match_route(**second)),
        ]
    )
    found = {(s.winner, s.loser) for s in shadowing(example, {"edge"})}
    assert (("a", "b") in found) is hidden


def test_only_new_shadowing_is_reported():
    old = BASE.with_changes(
        [
            Change(2, "routes", "a", match_route(prefix="/x")),
            Change(3, "routes", "b", match_route(prefix="/x")),
        ]
    )
    # An unrelated change to 'a' does not trip over the overlap that was already there.
    assert write(old, "routes", "a", match_route(prefix="/x")) == []
    problems = write(old, "routes", "c", match_route(prefix="/x"))
    assert problems == [
        "route 'c' can never match on gateway 'edge' host a.example, b.example: route 'a' comes "
        "first and matches every request it would; make the matches differ or remove one",
    ]


def test_changing_a_gateways_hosts_can_introduce_shadowing():
    example = BASE.with_changes(
        [
            Change(
                2,
                "routes",
                "a",
                RouteSpec.model_validate(
                    {
                        "gateways": ["edge"],
                        "hosts": ["c.example"],
                        "destinations": [{"service": "shop"}],
                    }
                ),
            ),
            Change(3, "routes", "b", match_route()),
        ]
    )
    spec = example.gateways["edge"].model_copy(update={"hosts": ["c.example"]})
    assert len(write(example, "gateways", "edge", spec)) == 1


def test_sidecar_routes_are_checked_per_host_too():
    def sidecar(hosts: list[str]) -> RouteSpec:
        return RouteSpec.model_validate({"hosts": hosts, "destinations": [{"service": "shop"}]})

    example = BASE.with_changes([Change(2, "routes", "a", sidecar(["shop"]))])
    assert write(example, "routes", "b", sidecar(["other"])) == []
    (message,) = write(example, "routes", "b", sidecar(["shop", "other"]))
    assert "on sidecars' host shop:" in message


def test_sticky_and_subset_problems_name_their_fields():
    spec = RouteSpec.model_validate(
        {
            "gateways": ["edge"],
            "sticky": {"header": "x-user"},
            "destinations": [{"service": "shop", "labels": {"version": "v2"}}],
        }
    )
    after = BASE.with_changes([Change(2, "routes", "r", spec)])
    assert [p.field for p in check_write(BASE, after, "routes", "r")] == [
        "sticky",
        "destinations[0].labels",
    ]


def test_endpoint_writes_have_no_mesh_rules():
    assert write(BASE, "endpoints", "shop-1", None) == []
