"""A write's shadowing check looks only where the write is, and finds exactly what a comparison
of every route of the mesh before and after it would find."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshplane.model import Change, GatewaySpec, Mesh, RouteSpec
from meshplane.model.shadowing import Shadowing, gateway_shadowing, route_shadowing, shadowing
from tests.support.meshes import gateway, mesh, service

_SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_GATEWAYS = {"edge": ["a.example", "b.example"], "side": ["b.example", "c.example"]}
_BASE = mesh(
    service("shop"),
    service("cart"),
    *(gateway(name, 8080 + i, hosts=hosts) for i, (name, hosts) in enumerate(_GATEWAYS.items())),
)
_HOSTS = ["a.example", "b.example", "c.example", "shop"]

# Few values, most of them alike, so routes often share a host and a path condition and often
# cover one another (hiding chains need three routes in one place).
_matches = st.builds(
    lambda path, conditions: {path[0]: path[1], **conditions},
    st.sampled_from([("prefix", "/")] * 4 + [("prefix", "/x"), ("path", "/x"), ("regex", "/x")]),
    st.fixed_dictionaries(
        {
            "methods": st.lists(st.sampled_from(["GET", "POST"]), unique=True, max_size=2),
            "headers": st.lists(
                st.sampled_from([{"name": "x", "present": True}, {"name": "x", "exact": "1"}]),
                max_size=1,
            ),
        }
    ),
)


@st.composite
def _routes(draw: st.DrawFn) -> RouteSpec:
    gateways = draw(st.sampled_from([["edge"]] * 4 + [[], ["side"], ["edge", "side"]]))
    hosts = draw(st.lists(st.sampled_from(_HOSTS), unique=True, min_size=0 if gateways else 1))
    data: dict[str, Any] = {
        "gateways": gateways,
        "hosts": hosts,
        "match": draw(_matches),
        "destinations": [{"service": "shop"}],
    }
    return RouteSpec.model_validate(data)


_NAMES = st.sampled_from(["r0", "r1", "r2", "r3", "r4", "r5"])
_meshes = st.lists(st.tuples(_NAMES, _routes()), min_size=2, max_size=8).map(
    lambda routes: _BASE.with_changes([Change(2, "routes", n, s) for n, s in routes])
)


def _whole(before: Mesh, after: Mesh, scopes: set[str | None]) -> set[Shadowing]:
    """What comparing every route of the scopes before and after finds."""
    return shadowing(after, scopes) - shadowing(before, scopes)


def _scopes(*routes: RouteSpec | None) -> set[str | None]:
    scopes: set[str | None] = set()
    for route in routes:
        if route is not None:
            scopes |= set(route.gateways) if route.gateways else {None}
    return scopes


@_SETTINGS
@given(_meshes, _NAMES, st.one_of(st.none(), _routes()))
def test_a_route_write_finds_what_comparing_every_route_would(
    before: Mesh, name: str, spec: RouteSpec | None
):
    after = before.with_changes([Change(3, "routes", name, spec)])
    scopes = _scopes(before.routes.get(name), spec)
    assert route_shadowing(before, after, name) == _whole(before, after, scopes)


@_SETTINGS
@given(_meshes, st.sampled_from(sorted(_GATEWAYS)), st.lists(st.sampled_from(_HOSTS), max_size=3))
def test_a_gateway_write_finds_what_comparing_every_route_would(
    before: Mesh, name: str, hosts: list[str]
):
    spec = GatewaySpec.model_validate({"port": 9000, "hosts": hosts or ["*"]})
    after = before.with_changes([Change(3, "gateways", name, spec)])
    assert gateway_shadowing(before, after, name) == _whole(before, after, {name})


def _edge_route(hosts: list[str], methods: list[str], prefix: str = "/") -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "gateways": ["edge"],
            "hosts": hosts,
            "match": {"prefix": prefix, "methods": methods},
            "destinations": [{"service": "shop"}],
        }
    )


# r0 comes first and hides r1 and r2 on b.example; r1 would hide r2 without r0.
_CHAIN = _BASE.with_changes(
    [
        Change(2, "routes", "r0", _edge_route([], ["GET", "POST"])),
        Change(3, "routes", "r1", _edge_route(["b.example"], ["GET", "POST"])),
        Change(4, "routes", "r2", _edge_route(["b.example"], ["GET"])),
    ]
)
_R1_HIDES_R2 = {Shadowing("gateway 'edge'", "b.example", "r1", "r2")}


def test_a_route_that_stops_hiding_others_can_leave_one_hiding_another():
    after = _CHAIN.with_changes([Change(5, "routes", "r0", _edge_route([], ["GET"], "/y"))])
    assert route_shadowing(_CHAIN, after, "r0") == _R1_HIDES_R2


def test_a_host_a_gateway_drops_can_leave_one_route_hiding_another():
    spec = GatewaySpec.model_validate({"port": 8080, "hosts": ["a.example"]})
    after = _CHAIN.with_changes([Change(5, "gateways", "edge", spec)])
    assert gateway_shadowing(_CHAIN, after, "edge") == _R1_HIDES_R2
