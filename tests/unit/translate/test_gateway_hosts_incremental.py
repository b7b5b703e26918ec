"""A RouteMemo keeps each gateway's virtual hosts between builds and re-assembles only the hosts
of changed routes: after any sequence of route and service changes, builds with and without
`keep`, and forks, the route configurations it gives equal those built from scratch."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.model import Change, GatewaySpec, Mesh, RouteSpec, ServiceSpec, Spec
from meshplane.xds.translate import RouteMemo
from meshplane.xds.translate.route_configs import gateway_route_configuration

_GATEWAYS = {"edge": ["a.example", "b.example"], "admin": ["*"]}
_HOSTS = ["a.example", "b.example", "c.example"]
_SERVICES = ["a", "b", "c"]


@st.composite
def _routes(draw: st.DrawFn) -> RouteSpec | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    kind = draw(st.sampled_from(["prefix", "path", "regex"]))
    value = draw(st.sampled_from(["/", "/x", "/xy", "/x/y"]))
    spec: dict[str, Any] = {
        "gateways": draw(st.lists(st.sampled_from(sorted(_GATEWAYS)), min_size=1, unique=True)),
        "hosts": draw(st.lists(st.sampled_from(_HOSTS), unique=True, max_size=2)),
        "match": {kind: value if kind != "regex" else value + ".*"},
        "destinations": [{"service": draw(st.sampled_from([*_SERVICES, "gone"]))}],
    }
    if draw(st.booleans()):
        spec["match"]["methods"] = ["GET"]
    return RouteSpec.model_validate(spec)


_route_change = st.tuples(
    st.just("routes"), st.sampled_from([f"r{i}" for i in range(6)]), _routes()
)
_service_change = st.tuples(
    st.just("services"), st.just("c"), st.sampled_from([None, ServiceSpec()])
)
_steps = st.lists(
    st.tuples(
        st.lists(_route_change | _service_change, min_size=1, max_size=3),
        st.sampled_from(["keep", "advance", "fork"]),
    ),
    min_size=1,
    max_size=8,
)


def _base() -> Mesh:
    specs: list[tuple[str, str, Spec]] = [("services", s, ServiceSpec()) for s in _SERVICES]
    specs += [
        ("gateways", name, GatewaySpec(port=8000 + i, hosts=hosts))
        for i, (name, hosts) in enumerate(_GATEWAYS.items())
    ]
    return Mesh.of(1, specs)


@settings(max_examples=150, deadline=None)
@given(_steps)
def test_gateway_configurations_equal_those_built_from_scratch(
    steps: list[tuple[list[tuple[str, str, Spec | None]], str]],
) -> None:
    mesh, memo = _base(), RouteMemo()
    for revision, (batch, how) in enumerate(steps, start=2):
        mesh = mesh.with_changes(Change(revision, k, n, s) for k, n, s in batch)
        if how == "fork":
            memo = memo.fork()
        memo.advance(keep=how == "keep")
        for gateway in _GATEWAYS:
            built = gateway_route_configuration(mesh, gateway, memo)
            assert built == gateway_route_configuration(mesh, gateway)
