"""A stored spec that no longer validates, through the API: reported by GET /server, listed apart,
a 409 saying why when read, fixed by PUT (with If-Match) or DELETE; every other call answers."""

from __future__ import annotations

from typing import Any

import httpx

from meshplane.store import Store
from tests.support.stored import BAD_VALUE, UNKNOWN_FIELD, spoil

V1 = "/api/v1"


async def _put(api: httpx.AsyncClient, plural: str, name: str, spec: Any, **headers: str):
    response = await api.put(f"{V1}/{plural}/{name}", json={"spec": spec}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


async def _mesh(api: httpx.AsyncClient) -> None:
    await _put(api, "services", "web", {})
    await _put(api, "services", "api", {})
    await _put(api, "gateways", "edge", {"port": 8000})
    await _put(api, "endpoints", "web-1", {"service": "web", "address": "10.0.0.1", "port": 80})
    await _put(api, "routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    await _put(
        api,
        "routes",
        "api",
        {"gateways": ["edge"], "match": {"prefix": "/api"}, "destinations": [{"service": "api"}]},
    )


async def test_server_reports_it_with_what_it_keeps_out(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    version = spoil(store.database.engine, "services", "web", UNKNOWN_FIELD)
    info = (await api.get(f"{V1}/server")).json()  # the first asks for a full load
    assert info["invalid_resources"] == [
        {
            "kind": "service",
            "name": "web",
            "version": version,
            "reason": "no_such_field: Extra inputs are not permitted",
            "left_out": ["endpoint/web-1", "route/web"],
        }
    ]
    # A hand edit made while running shows once a read meets it (or the next full load).
    spoil(store.database.engine, "gateways", "edge", {"port": "none"})
    assert (await api.get(f"{V1}/gateways/edge")).status_code == 409
    reported = (await api.get(f"{V1}/server")).json()["invalid_resources"]
    assert [(r["kind"], r["name"]) for r in reported] == [("gateway", "edge"), ("service", "web")]
    assert reported[0]["left_out"] == ["route/api", "route/web"]


async def test_lists_keep_the_schema_and_name_it_apart(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    version = spoil(store.database.engine, "services", "web", BAD_VALUE)
    body = (await api.get(f"{V1}/services")).json()
    assert [item["name"] for item in body["items"]] == ["api"]
    [invalid] = body["invalid"]
    assert invalid["name"] == "web"
    assert invalid["version"] == version
    assert invalid["reason"].startswith("protocol: Input should be 'http'")
    assert "invalid" not in (await api.get(f"{V1}/gateways")).json()
    # The route to it validates itself: listed (it is not sent to proxies; GET /server says so).
    routes = (await api.get(f"{V1}/routes")).json()
    assert [item["name"] for item in routes["items"]] == ["api", "web"]


async def test_get_of_it_is_a_409_saying_why_and_how_to_fix(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    version = spoil(store.database.engine, "services", "web", BAD_VALUE)
    response = await api.get(f"{V1}/services/web")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(f"service 'web' is stored (version {version}) but its spec no longer")
    assert "protocol: Input should be 'http'" in detail
    assert detail.endswith("PUT a valid spec over it or DELETE it")
    assert set(response.json()) == {"detail"}


async def test_put_fixes_it_with_if_match(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    version = spoil(store.database.engine, "services", "web", BAD_VALUE)
    stale = await api.put(
        f"{V1}/services/web", json={"spec": {}}, headers={"If-Match": f'"{version - 1}"'}
    )
    assert stale.status_code == 412
    fixed = await _put(
        api, "services", "web", {"protocol": "http2"}, **{"If-Match": f'"{version}"'}
    )
    assert fixed.status_code == 200
    got = await api.get(f"{V1}/services/web")
    assert got.status_code == 200
    assert got.headers["ETag"] == fixed.headers["ETag"]
    assert got.json()["spec"]["protocol"] == "http2"
    assert (await api.get(f"{V1}/server")).json()["invalid_resources"] == []
    assert "invalid" not in (await api.get(f"{V1}/services")).json()


async def test_delete_removes_it(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    spoil(store.database.engine, "routes", "web", UNKNOWN_FIELD)
    assert len((await api.get(f"{V1}/server")).json()["invalid_resources"]) == 1
    assert (await api.delete(f"{V1}/routes/web")).status_code == 204
    assert (await api.get(f"{V1}/routes/web")).status_code == 404
    assert (await api.get(f"{V1}/server")).json()["invalid_resources"] == []


async def test_other_calls_keep_answering(api: httpx.AsyncClient, store: Store):
    await _mesh(api)
    spoil(store.database.engine, "services", "web", BAD_VALUE)
    # A write referring to it: a 422 naming the field; any other write goes through.
    refused = await api.put(
        f"{V1}/routes/more",
        json={
            "spec": {
                "gateways": ["edge"],
                "match": {"prefix": "/more"},
                "destinations": [{"service": "web"}],
            }
        },
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "spec", "destinations", 0, "service"]
    assert "service 'web' is stored but its spec no longer validates" in error["msg"]
    await _put(
        api,
        "routes",
        "more",
        {"gateways": ["edge"], "match": {"prefix": "/more"}, "destinations": [{"service": "api"}]},
    )
    await _put(api, "services", "api", {"protocol": "http2"})
    # Explain reads the mesh as proxies get it: the route to web is not there.
    explained = await api.post(
        f"{V1}/explain", json={"gateway": "edge", "host": "x", "path": "/api/1"}
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["route"] == "api"
    to_web = await api.post(f"{V1}/explain", json={"gateway": "edge", "host": "x", "path": "/"})
    assert to_web.status_code == 200, to_web.text
    assert to_web.json()["route"] is None


async def test_openapi_declares_the_409_and_the_new_fields(api: httpx.AsyncClient):
    document = (await api.get("/openapi.json")).json()
    get_service = document["paths"][f"{V1}/services/{{name}}"]["get"]
    assert get_service["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    schemas = document["components"]["schemas"]
    assert "invalid_resources" in schemas["ServerInfo"]["properties"]
    assert "invalid" in schemas["ServiceList"]["properties"]
    assert set(schemas["InvalidResourceOut"]["required"]) >= {"kind", "name", "version", "reason"}
