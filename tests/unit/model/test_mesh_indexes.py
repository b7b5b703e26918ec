"""The mesh's secondary indexes (endpoints by service, routes by gateway and sidecar routes by
host, tcp services) follow every change: after any sequence of writes and deletions they equal
the indexes built from the tables."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshplane.model import Change, EndpointSpec, GatewaySpec, Mesh, RouteSpec, ServiceSpec, Spec

_SERVICES = ["a", "b", "c"]
_GATEWAYS = ["edge", "admin", "partners"]


def _route(gateways: list[str]) -> RouteSpec:
    target = {"destinations": [{"service": "a"}]}
    return RouteSpec.model_validate(
        {**target, "gateways": gateways} if gateways else {**target, "hosts": ["a"]}
    )


def _endpoint(service: str) -> EndpointSpec:
    return EndpointSpec(service=service, address="10.0.0.1", port=80)


_route_change = st.tuples(
    st.just("routes"),
    st.sampled_from(["r1", "r2", "r3"]),
    st.none() | st.lists(st.sampled_from(_GATEWAYS), unique=True).map(_route),
)
_service_change = st.tuples(
    st.just("services"),
    st.sampled_from(["t1", "t2"]),
    st.none() | st.sampled_from(["tcp", "http"]).map(lambda p: ServiceSpec(protocol=p)),
)
_endpoint_change = st.tuples(
    st.just("endpoints"),
    st.sampled_from(["e1", "e2", "e3"]),
    st.none() | st.sampled_from(_SERVICES).map(_endpoint),
)


def _base() -> Mesh:
    specs: list[tuple[str, str, Spec]] = [("services", s, ServiceSpec()) for s in _SERVICES]
    specs += [("gateways", g, GatewaySpec(port=8000 + i)) for i, g in enumerate(_GATEWAYS)]
    return Mesh.of(1, specs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(_route_change | _endpoint_change | _service_change, min_size=1, max_size=4),
        max_size=6,
    )
)
def test_indexes_equal_the_tables_after_any_changes(
    batches: list[list[tuple[str, str, RouteSpec | EndpointSpec | ServiceSpec | None]]],
) -> None:
    mesh = _base()
    for revision, batch in enumerate(batches, start=2):
        mesh = mesh.with_changes(Change(revision, k, n, s) for k, n, s in batch)
        by_gateway = {
            g: {n: r for n, r in mesh.routes.items() if g in r.gateways} for g in _GATEWAYS
        }
        assert {g: dict(mesh.routes_of(g)) for g in _GATEWAYS} == by_gateway
        assert set(mesh.by_gateway) == {g for g, routes in by_gateway.items() if routes}
        by_service = {
            s: {n: e for n, e in mesh.endpoints.items() if e.service == s} for s in _SERVICES
        }
        assert {s: dict(mesh.endpoints_of(s)) for s in _SERVICES} == by_service
        on_a = {n: r for n, r in mesh.routes.items() if not r.gateways and "a" in r.hosts}
        assert dict(mesh.sidecar_routes_on("a")) == on_a
        assert set(mesh.sidecar_by_host) == ({"a"} if on_a else set())
        tcp = {n: s for n, s in mesh.services.items() if s.protocol == "tcp"}
        assert dict(mesh.tcp_services()) == tcp


def test_a_change_copies_only_the_index_entries_it_touches() -> None:
    mesh = _base().with_changes(
        [Change(2, "routes", "r1", _route(["edge"])), Change(2, "routes", "r2", _route(["admin"]))]
    )
    after = mesh.with_changes([Change(3, "routes", "r1", _route(["edge", "partners"]))])
    assert after.routes_of("admin") is mesh.routes_of("admin")
    assert set(after.routes_of("partners")) == {"r1"}
