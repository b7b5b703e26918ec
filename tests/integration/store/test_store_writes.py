"""Store writes on SQLite and PostgreSQL: revisions, versions, If-Match, references."""

import asyncio

import pytest

from meshplane.errors import Conflict, InvalidMesh, NotFound, PreconditionFailed
from meshplane.model import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec
from meshplane.store import Store

SVC = ServiceSpec()
EP = EndpointSpec(service="b", address="10.0.0.1", port=8080)


def route_to(*services: str, gateways: tuple[str, ...] = ()) -> RouteSpec:
    return RouteSpec.model_validate(
        {
            "hosts": ["b"],
            "gateways": list(gateways),
            "destinations": [{"service": s} for s in services],
        }
    )


async def test_put_creates_then_updates_and_bumps_revision_once_per_write(store: Store):
    assert await store.revision() == 0
    created, was_created = await store.put("services", "b", SVC)
    assert was_created
    assert (created.kind, created.name, created.version, created.source) == (
        "services",
        "b",
        1,
        "api",
    )
    assert created.created_at == created.updated_at
    updated, was_created = await store.put("services", "b", ServiceSpec(protocol="http2"))
    assert not was_created
    assert updated.version == 2
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert await store.revision() == 2
    got = await store.get("services", "b")
    assert got == updated
    assert got.created_at.tzinfo is not None


async def test_identical_put_is_a_no_op(store: Store):
    first, _ = await store.put("services", "b", ServiceSpec(connect_timeout=1))
    # Written differently, same canonical spec: defaults and "1s" == 1.
    again, created = await store.put(
        "services", "b", ServiceSpec.model_validate({"connect_timeout": "1s", "protocol": "http"})
    )
    assert not created
    assert again == first
    assert await store.revision() == 1
    assert await store.changes_since(0) is not None
    assert len(await store.changes_since(0) or []) == 1


async def test_each_resource_keeps_the_revision_that_wrote_it(store: Store):
    await store.put("services", "a", SVC)
    await store.put("services", "b", SVC)
    await store.put("endpoints", "b-1", EP)
    assert [(r.name, r.version) for r in await store.list("services")] == [("a", 1), ("b", 2)]
    assert (await store.get("endpoints", "b-1")).version == 3
    assert await store.list("routes") == []


async def test_get_and_delete_of_missing_resource_are_not_found(store: Store):
    with pytest.raises(NotFound, match="service 'nope'"):
        await store.get("services", "nope")
    with pytest.raises(NotFound):
        await store.delete("services", "nope")
    with pytest.raises(NotFound, match="unknown kind"):
        await store.list("widgets")
    assert await store.revision() == 0


async def test_stale_if_match_changes_nothing(store: Store):
    await store.put("services", "b", SVC)
    await store.put("services", "b", ServiceSpec(protocol="grpc"))
    with pytest.raises(PreconditionFailed, match="version 2, not 1"):
        await store.put("services", "b", ServiceSpec(protocol="tcp"), if_match=1)
    with pytest.raises(PreconditionFailed):
        await store.delete("services", "b", if_match=1)
    with pytest.raises(PreconditionFailed, match="does not exist"):
        await store.put("services", "new", SVC, if_match=1)
    with pytest.raises(PreconditionFailed):
        await store.put("services", "new", SVC, if_match="*")
    stored = await store.get("services", "b")
    assert (stored.version, stored.spec) == (2, ServiceSpec(protocol="grpc"))
    assert await store.revision() == 2
    # A stale If-Match fails even when the spec is unchanged.
    with pytest.raises(PreconditionFailed):
        await store.put("services", "b", ServiceSpec(protocol="grpc"), if_match=1)


async def test_matching_if_match_writes(store: Store):
    await store.put("services", "b", SVC)
    updated, _ = await store.put("services", "b", ServiceSpec(protocol="grpc"), if_match=1)
    assert updated.version == 2
    updated, _ = await store.put("services", "b", ServiceSpec(protocol="tcp"), if_match="*")
    assert updated.version == 3
    await store.delete("services", "b", if_match=3)
    assert await store.list("services") == []


async def test_reference_to_missing_resource_is_invalid_and_names_the_field(store: Store):
    await store.put("services", "a", SVC)
    with pytest.raises(InvalidMesh, match="service 'nope' does not exist") as caught:
        await store.put("routes", "r1", route_to("a", "nope"))
    assert caught.value.field == "destinations[1].service"
    with pytest.raises(InvalidMesh) as caught:
        await store.put("routes", "r1", route_to("a", gateways=("edge",)))
    assert caught.value.field == "gateways[0]"
    with pytest.raises(InvalidMesh) as caught:
        await store.put("endpoints", "b-1", EP)
    assert caught.value.field == "service"
    assert await store.revision() == 1
    assert await store.list("routes") == []


async def test_deleting_a_referenced_resource_conflicts_and_lists_referrers(store: Store):
    await store.put("services", "b", SVC)
    await store.put("gateways", "edge", GatewaySpec(port=8000))
    await store.put("routes", "r1", route_to("b", "b", gateways=("edge",)))
    await store.put("endpoints", "e1", EP)
    with pytest.raises(Conflict) as caught:
        await store.delete("services", "b")
    assert str(caught.value) == "service 'b' is still referenced by endpoints/e1, routes/r1"
    with pytest.raises(Conflict, match="gateway 'edge' is still referenced by routes/r1"):
        await store.delete("gateways", "edge")
    assert await store.revision() == 4
    # Once the referrers stop pointing at it, it can go.
    await store.put("services", "c", SVC)
    await store.put("routes", "r1", route_to("c"))
    await store.delete("endpoints", "e1")
    await store.delete("gateways", "edge")
    await store.delete("services", "b")
    assert [s.name for s in await store.list("services")] == ["c"]


async def test_auto_registered_endpoint_becomes_api_owned_when_the_api_writes_it(store: Store):
    await store.put("services", "b", SVC)
    auto, _ = await store.put("endpoints", "b-1", EP, source="auto")
    assert auto.source == "auto"
    # Same spec, but the operator now owns it: that is a write.
    owned, _ = await store.put("endpoints", "b-1", EP)
    assert (owned.source, owned.version) == ("api", 3)
    # An auto write never takes it back.
    again, _ = await store.put("endpoints", "b-1", EP, source="auto")
    assert (again.source, again.version) == ("api", 3)


async def test_concurrent_writers_get_distinct_contiguous_revisions(store: Store):
    await asyncio.gather(*(store.put("services", f"s{i}", SVC) for i in range(12)))
    versions = sorted(r.version for r in await store.list("services"))
    assert versions == list(range(1, 13))
    assert await store.revision() == 12
    assert [c.revision for c in await store.changes_since(0) or []] == versions


async def test_wrong_spec_class_is_a_programming_error(store: Store):
    with pytest.raises(TypeError):
        await store.put("routes", "r", SVC)
    assert await store.revision() == 0
