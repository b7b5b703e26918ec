"""Every value the API accepts reads back, on SQLite and PostgreSQL (issue: a 201 that bricked
the database by storing a duration as "1e-07s", after which every read of the mesh was a 500)."""

from typing import Any

import httpx
import pytest


async def put(api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any]):
    return await api.put(f"/api/v1/{plural}/{name}", json={"spec": spec})


async def mesh(api: httpx.AsyncClient) -> None:
    assert (await put(api, "services", "b", {})).status_code == 201
    assert (await put(api, "gateways", "edge", {"port": 80})).status_code == 201


def route(**policies: Any) -> dict[str, Any]:
    return {"gateways": ["edge"], "destinations": [{"service": "b"}], **policies}


@pytest.mark.parametrize(
    ("plural", "spec", "loc"),
    [
        ("services", {"connect_timeout": "0.0000001s"}, ["connect_timeout"]),
        ("services", {"connect_timeout": 0.0000001}, ["connect_timeout"]),
        ("routes", route(timeout="0.0000001s"), ["timeout"]),
        ("routes", route(rate_limit={"requests": 5, "per": "1.0000001s"}), ["rate_limit", "per"]),
        ("services", {"connect_timeout": "99999999999s"}, ["connect_timeout"]),
        ("services", {"connect_timeout": 1e300}, ["connect_timeout"]),
    ],
)
async def test_a_duration_the_model_cannot_keep_is_422_and_nothing_is_stored(
    api: httpx.AsyncClient, plural, spec, loc
):
    await mesh(api)
    answer = await put(api, plural, "x", spec)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][:2] == ["body", "spec"]
    assert answer.json()["detail"][0]["loc"][2:][: len(loc)] == loc
    assert (await api.get(f"/api/v1/{plural}/x")).status_code == 404
    assert (await api.get(f"/api/v1/{plural}")).status_code == 200


@pytest.mark.parametrize(
    ("plural", "spec", "field", "stored"),
    [
        ("services", {"connect_timeout": "1500ms"}, ["connect_timeout"], "1.5s"),
        ("services", {"connect_timeout": 0.001}, ["connect_timeout"], "1ms"),
        ("routes", route(timeout="8760h"), ["timeout"], "31536000s"),
        ("routes", route(rate_limit={"requests": 5, "per": "1.25m"}), ["rate_limit", "per"], "75s"),
    ],
)
async def test_an_accepted_duration_reads_back_everywhere(
    api: httpx.AsyncClient, plural, spec, field, stored
):
    await mesh(api)
    answer = await put(api, plural, "x", spec)
    assert answer.status_code == 201, answer.text
    listed = await api.get(f"/api/v1/{plural}")
    assert listed.status_code == 200
    value = next(item for item in listed.json()["items"] if item["name"] == "x")["spec"]
    for part in field:
        value = value[part]
    assert value == stored
    # Writing back what was read changes nothing: the stored form is the canonical one.
    again = await put(api, plural, "x", answer.json()["spec"])
    assert again.status_code == 200
    assert again.json()["version"] == answer.json()["version"]
    if plural == "routes":
        explained = await api.post("/api/v1/explain", json={"gateway": "edge", "host": "b"})
        assert explained.status_code == 200, explained.text


async def test_a_second_mesh_settings_resource_is_422_naming_the_path(api: httpx.AsyncClient):
    answer = await put(api, "meshes", "other", {})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["path", "name"]
    assert "named 'default'" in answer.json()["detail"][0]["msg"]
