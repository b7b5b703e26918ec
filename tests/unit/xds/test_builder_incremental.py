"""Changes that leave the shared resources alone skip rebuilding them, and end where a full
rebuild does: endpoint-only changes update load assignments in place; route changes that keep
the label subsets rebuild listeners and routes only; a service's settings change rebuilds its
own clusters besides."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from meshplane.model import (
    Change,
    EndpointSpec,
    GatewaySpec,
    Mesh,
    ProxyGroup,
    Role,
    RouteSpec,
    ServiceSpec,
)
from meshplane.xds.builder import SnapshotBuilder
from meshplane.xds.cache import ResourceCache
from meshplane.xds.resources import Snapshot


class FakeSource:
    """A MeshSource over a list of changes the test appends to."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.log: list[Change] = []

    async def load_mesh(self) -> Mesh:
        return self.mesh.with_changes(self.log)

    async def changes_since(self, revision: int) -> list[Change] | None:
        return [c for c in self.log if c.revision > revision]

    async def wait_beyond(self, revision: int) -> int:
        await asyncio.sleep(3600)
        return revision


def _endpoint(service: str, port: int, version: str, zone: str | None = None) -> EndpointSpec:
    return EndpointSpec(
        service=service, address="10.0.0.1", port=port, labels={"version": version}, zone=zone
    )


def _mesh() -> Mesh:
    route = RouteSpec.model_validate(
        {
            "hosts": ["orders"],
            "destinations": [
                {"service": "orders", "labels": {"version": "v1"}, "weight": 90},
                {"service": "orders", "labels": {"version": "v2"}, "weight": 10},
            ],
        }
    )
    specs = [
        ("services", "orders", ServiceSpec()),
        ("services", "payments", ServiceSpec()),
        ("endpoints", "o1", _endpoint("orders", 1, "v1", "a")),
        ("endpoints", "o2", _endpoint("orders", 2, "v2", "b")),
        ("endpoints", "p1", _endpoint("payments", 3, "v1")),
        ("routes", "orders", route),
    ]
    return Mesh.of(6, specs)


GROUPS = [
    ProxyGroup(Role.SIDECAR, service="payments", inbound_port=1, app_port=2, outbound_port=3),
    ProxyGroup(
        Role.SIDECAR, service="orders", inbound_port=1, app_port=2, outbound_port=3, zone="a"
    ),
]


def _versions(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    return {t: {n: r.version for n, r in rs.items()} for t, rs in snapshot.resources.items()}


async def _started(
    source: FakeSource, groups: list[ProxyGroup] = GROUPS
) -> tuple[ResourceCache, SnapshotBuilder]:
    """A builder over `source` with `groups` watched, loaded."""
    cache = ResourceCache()
    builder = SnapshotBuilder(source, cache)
    for group in groups:
        cache.watch(group, lambda _: None)
    await builder.load()
    return cache, builder


async def _rebuilt_from_scratch(
    source: FakeSource, groups: list[ProxyGroup] = GROUPS
) -> ResourceCache:
    """What a fresh builder makes of the mesh after every change in `source`'s log."""
    fresh_cache, _ = await _started(FakeSource(source.mesh.with_changes(source.log)), groups)
    return fresh_cache


async def test_endpoint_changes_match_a_full_rebuild() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    before = {g: cache.snapshot(g) for g in GROUPS}

    source.log += [
        Change(7, "endpoints", "o3", _endpoint("orders", 4, "v2", "a")),  # added
        Change(8, "endpoints", "o1", None),  # removed
        Change(9, "endpoints", "p1", _endpoint("payments", 5, "v1")),  # moved port
    ]
    await builder.catch_up()

    fresh_cache = await _rebuilt_from_scratch(source)
    for group in GROUPS:
        updated, rebuilt = cache.snapshot(group), fresh_cache.snapshot(group)
        assert updated is not None
        assert rebuilt is not None
        assert updated.revision == 9
        assert _versions(updated) == _versions(rebuilt)
        assert updated.versions == rebuilt.versions  # incremental digests agree with full ones
        old = before[group]
        assert old is not None
        for type_url in ("type.googleapis.com/envoy.config.cluster.v3.Cluster",):
            assert updated.of(type_url) is old.of(type_url)  # untouched types: same objects


async def test_a_new_group_after_endpoint_changes_sees_them() -> None:
    source = FakeSource(_mesh())
    _, builder = await _started(source, [GROUPS[0]])
    source.log += [Change(7, "endpoints", "o3", _endpoint("orders", 4, "v2", "a"))]
    await builder.catch_up()
    late = builder.ensure(GROUPS[1])  # first stream of this group arrives afterwards

    fresh_cache = await _rebuilt_from_scratch(source, [GROUPS[1]])
    rebuilt = fresh_cache.snapshot(GROUPS[1])
    assert rebuilt is not None
    assert _versions(late) == _versions(rebuilt)


def _route(*destinations: Mapping[str, object], timeout: str | None = None) -> RouteSpec:
    spec: dict[str, object] = {"hosts": ["orders"], "destinations": list(destinations)}
    if timeout is not None:
        spec["timeout"] = timeout
    return RouteSpec.model_validate(spec)


async def _assert_matches_a_full_rebuild(
    source: FakeSource, cache: ResourceCache, groups: list[ProxyGroup] = GROUPS
) -> None:
    fresh_cache = await _rebuilt_from_scratch(source, groups)
    for group in groups:
        updated, rebuilt = cache.snapshot(group), fresh_cache.snapshot(group)
        assert updated is not None
        assert rebuilt is not None
        assert _versions(updated) == _versions(rebuilt)
        assert updated.versions == rebuilt.versions


CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


async def test_a_route_change_keeping_the_subsets_reuses_clusters_and_endpoints() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    before = {g: cache.snapshot(g) for g in GROUPS}
    v1 = {"service": "orders", "labels": {"version": "v1"}, "weight": 50}
    v2 = {"service": "orders", "labels": {"version": "v2"}, "weight": 50}
    source.log += [
        Change(7, "endpoints", "o3", _endpoint("orders", 4, "v2", "a")),  # pending, then folded
        Change(8, "routes", "orders", _route(v1, v2, timeout="3s")),
    ]
    await builder.catch_up()  # one batch: endpoints and a route: a full build
    source.log += [Change(9, "routes", "orders", _route(v2, v1))]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot, old = cache.snapshot(group), before[group]
        assert snapshot is not None
        assert old is not None
        assert snapshot.revision == 9
        assert snapshot.of(ENDPOINT) != old.of(ENDPOINT)  # the batch at 8 was built in full


async def test_route_changes_after_endpoint_changes_keep_the_shared_objects() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    source.log += [Change(7, "endpoints", "o3", _endpoint("orders", 4, "v2", "a"))]
    await builder.catch_up()  # endpoint-only
    after_endpoints = {g: cache.snapshot(g) for g in GROUPS}
    v1 = {"service": "orders", "labels": {"version": "v1"}, "weight": 10}
    v2 = {"service": "orders", "labels": {"version": "v2"}, "weight": 90}
    source.log += [Change(8, "routes", "orders", _route(v1, v2))]
    await builder.catch_up()  # route-only, same subsets
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot, old = cache.snapshot(group), after_endpoints[group]
        assert snapshot is not None
        assert old is not None
        for type_url in (CLUSTER, ENDPOINT):
            kept = [n for n in old.resources.get(type_url, {}) if n != "inbound"]
            for name in kept:
                assert snapshot.resources[type_url][name] is old.resources[type_url][name]


async def test_a_route_change_adding_a_subset_rebuilds_the_clusters() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    v3 = {"service": "orders", "labels": {"version": "v3"}}
    source.log += [Change(7, "routes", "orders", _route(v3))]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache)
    snapshot = cache.snapshot(GROUPS[0])
    assert snapshot is not None
    assert any("v3" in name for name in snapshot.resources[CLUSTER])


async def test_a_service_settings_change_rebuilds_only_its_clusters() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    before = {g: cache.snapshot(g) for g in GROUPS}
    source.log += [
        Change(7, "services", "orders", ServiceSpec(protocol="http2", connect_timeout=3)),
    ]
    await builder.catch_up()
    assert builder.mesh.revision == 7
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot, old = cache.snapshot(group), before[group]
        assert snapshot is not None
        assert old is not None
        clusters, old_clusters = snapshot.of(CLUSTER), old.of(CLUSTER)
        changed = {n for n in clusters if clusters[n] is not old_clusters.get(n)}
        # The service's cluster and its subsets' are new; another service's is the same object.
        assert {"orders", "orders|version=v1", "orders|version=v2"} <= changed
        assert "payments" not in changed
        for name, resource in snapshot.of(ENDPOINT).items():
            assert resource is old.of(ENDPOINT)[name]  # load assignments untouched


async def test_service_and_route_changes_in_one_batch_match_a_full_rebuild() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    v1 = {"service": "orders", "labels": {"version": "v1"}, "weight": 30}
    v2 = {"service": "orders", "labels": {"version": "v2"}, "weight": 70}
    source.log += [
        Change(7, "services", "payments", ServiceSpec(connect_timeout=5)),
        Change(8, "routes", "orders", _route(v1, v2, timeout="2s")),
        Change(9, "services", "orders", ServiceSpec(protocol="grpc")),
    ]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache)


def _last_build(caplog: pytest.LogCaptureFixture) -> str:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("built ")][-1]


async def test_adding_and_removing_services_keeps_every_other_resource(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="meshplane.xds.builder")
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    before = {g: cache.snapshot(g) for g in GROUPS}
    source.log += [Change(7, "endpoints", "b1", _endpoint("billing", 7, "v1", "a"))]
    await builder.catch_up()  # an endpoint of a service not defined yet
    source.log += [Change(8, "services", "billing", ServiceSpec(protocol="grpc"))]
    await builder.catch_up()
    assert _last_build(caplog).endswith("(listeners and routes, clusters of 1 added services)")
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot, old = cache.snapshot(group), before[group]
        assert snapshot is not None
        assert old is not None
        assert "billing" in snapshot.of(CLUSTER)
        assert len(snapshot.of(ENDPOINT)["billing"].message.endpoints) == 1  # type: ignore[union-attr]
        for type_url in (CLUSTER, ENDPOINT):
            for name in ("orders", "payments"):
                assert snapshot.of(type_url)[name] is old.of(type_url)[name]

    source.log += [Change(9, "services", "payments", None)]
    await builder.catch_up()
    assert _last_build(caplog).endswith("(listeners and routes, clusters of 1 removed services)")
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot = cache.snapshot(group)
        assert snapshot is not None
        assert "payments" not in snapshot.of(CLUSTER)
        assert "payments" not in snapshot.of(ENDPOINT)


async def test_a_service_turning_invalid_then_fixed_matches_a_full_rebuild() -> None:
    """A spec from the change log that no longer validates takes its service, endpoints and
    routes out of every snapshot; writing it valid brings them all back."""
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    source.log += [Change(7, "services", "orders", None, invalid="connect_timeout: bad")]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot = cache.snapshot(group)
        assert snapshot is not None
        assert snapshot.revision == 7
        assert not [n for n in snapshot.of(CLUSTER) if n.startswith("orders")]
        assert not [n for n in snapshot.of(ENDPOINT) if n.startswith("orders")]
        assert "payments" in snapshot.of(CLUSTER)
    assert set(builder.mesh.left_out) == {
        ("endpoints", "o1"),
        ("endpoints", "o2"),
        ("routes", "orders"),
    }

    source.log += [Change(8, "services", "orders", ServiceSpec(protocol="http2"))]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache)
    for group in GROUPS:
        snapshot = cache.snapshot(group)
        assert snapshot is not None
        assert {"orders", "orders|version=v1", "orders|version=v2"} <= set(snapshot.of(CLUSTER))
        assert "orders" in snapshot.of(ENDPOINT)
    assert not builder.mesh.left_out


async def test_routes_without_labels_are_told_apart_from_routes_that_drop_their_subsets() -> None:
    source = FakeSource(_mesh())
    cache, builder = await _started(source)
    plain = _route({"service": "payments"})
    source.log += [Change(7, "routes", "to-payments", plain.model_copy(update={"hosts": ["p"]}))]
    await builder.catch_up()  # no label anywhere in the change: subsets known to stay
    await _assert_matches_a_full_rebuild(source, cache)
    source.log += [Change(8, "routes", "orders", _route({"service": "orders"}))]
    await builder.catch_up()  # the labelled route loses its labels: its subsets go
    await _assert_matches_a_full_rebuild(source, cache)
    snapshot = cache.snapshot(GROUPS[0])
    assert snapshot is not None
    assert not any("v1" in name or "v2" in name for name in snapshot.resources[CLUSTER])


def _gateway_route(gateways: list[str], service: str = "orders") -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "gateways": gateways,
            "match": {"prefix": f"/{service}/"},
            "destinations": [{"service": service}],
        }
    )


_GATEWAYS = [
    *GROUPS,
    ProxyGroup(Role.GATEWAY, gateway="edge"),
    ProxyGroup(Role.GATEWAY, gateway="admin"),
]


async def _gateway_mesh() -> tuple[FakeSource, ResourceCache, SnapshotBuilder]:
    source = FakeSource(_mesh())
    source.log += [
        Change(7, "gateways", "edge", GatewaySpec(port=8080)),
        Change(7, "gateways", "admin", GatewaySpec(port=8081)),
        Change(7, "routes", "edge-orders", _gateway_route(["edge"])),
        Change(7, "routes", "admin-orders", _gateway_route(["admin"])),
    ]
    cache, builder = await _started(source, _GATEWAYS)
    return source, cache, builder


async def test_a_gateway_route_change_builds_only_that_gateways_group() -> None:
    source, cache, builder = await _gateway_mesh()
    before = {g: cache.snapshot(g) for g in _GATEWAYS}
    source.log += [Change(8, "routes", "edge-payments", _gateway_route(["edge"], "payments"))]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache, _GATEWAYS)
    edge = _GATEWAYS[2]
    for group in _GATEWAYS:
        snapshot, old = cache.snapshot(group), before[group]
        assert snapshot is not None
        assert old is not None
        assert snapshot.revision == 8
        # The other groups are served the very mappings they had: no stream has work.
        assert (snapshot.resources is old.resources) is (group != edge)
    served = cache.snapshot(edge)
    assert served is not None
    assert "edge-payments" in str(served.of(ROUTE)["gateway:edge"].message)


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param(["admin"], id="to-another-gateway"),
        pytest.param(["edge", "admin"], id="to-both"),
        pytest.param(None, id="to-the-sidecars"),
    ],
)
async def test_a_gateway_route_moving_elsewhere_rebuilds_where_it_goes(
    moved: list[str] | None,
) -> None:
    source, cache, builder = await _gateway_mesh()
    spec = (
        RouteSpec.model_validate({"hosts": ["payments"], "destinations": [{"service": "orders"}]})
        if moved is None
        else _gateway_route(moved)
    )
    source.log += [Change(8, "routes", "edge-orders", spec)]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache, _GATEWAYS)
    source.log += [Change(9, "routes", "edge-orders", None)]
    await builder.catch_up()
    await _assert_matches_a_full_rebuild(source, cache, _GATEWAYS)
