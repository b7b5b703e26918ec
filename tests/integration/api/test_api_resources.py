"""CRUD over every kind, and how the API reports what it refuses."""

from typing import Any

import httpx
import pytest

from meshplane.model import KINDS
from tests.support.certificates import make_ca, make_server_certificate

_EDGE_CA = make_ca("edge ca")
_ONE, _TWO = (make_server_certificate(_EDGE_CA, [h]) for h in ("a.example.com", "b.example.com"))

# A valid spec per kind, and a changed one; references resolve against SETUP.
SPECS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "services": ({"protocol": "http"}, {"protocol": "grpc", "connect_timeout": "250ms"}),
    "endpoints": (
        {"service": "b", "address": "10.0.0.1", "port": 8080},
        {"service": "b", "address": "10.0.0.2", "port": 8080, "labels": {"version": "v2"}},
    ),
    "tls-certificates": (
        {"certificate": _ONE.cert_pem, "private_key": _ONE.key_pem},
        {"certificate": _TWO.cert_pem, "private_key": _TWO.key_pem},
    ),
    "gateways": ({"port": 8000}, {"port": 8001, "hosts": ["example.com"]}),
    "routes": (
        {"gateways": ["edge"], "destinations": [{"service": "b"}]},
        {"hosts": ["b"], "destinations": [{"service": "b", "weight": 2}], "timeout": "2s"},
    ),
    "authorization-policies": (
        {"target": "b"},
        {"target": "b", "action": "deny", "callers": [{"gateway": "edge"}], "paths": ["/admin"]},
    ),
    "meshes": ({}, {"mtls": "permissive"}),
}
SETUP = [("services", "b", {}), ("gateways", "edge", {"port": 80})]


async def put(api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any], **headers: str):
    return await api.put(f"/api/v1/{plural}/{name}", json={"spec": spec}, headers=headers)


async def test_every_kind_is_covered():
    assert set(SPECS) == set(KINDS)


@pytest.mark.parametrize("plural", list(KINDS))
async def test_crud(api: httpx.AsyncClient, plural: str):
    for kind, name, spec in SETUP:
        assert (await put(api, kind, name, spec)).status_code == 201
    first, second = SPECS[plural]
    x1 = KINDS[plural].only_name or "x1"
    singular = KINDS[plural].singular

    created = await put(api, plural, x1, first)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == singular
    assert body["name"] == x1
    assert body["source"] == "api"
    assert created.headers["ETag"] == f'"{body["version"]}"'
    # The spec comes back canonical: defaults filled in, nulls left out.
    assert body["spec"] == KINDS[plural].parse(first).model_dump(mode="json", exclude_none=True)

    got = await api.get(f"/api/v1/{plural}/{x1}")
    assert got.status_code == 200
    assert got.json() == body
    assert got.headers["ETag"] == created.headers["ETag"]

    replaced = await put(api, plural, x1, second)
    assert replaced.status_code == 200
    assert replaced.json()["version"] == body["version"] + 1
    assert replaced.json()["created_at"] == body["created_at"]

    unchanged = await put(api, plural, x1, second)
    assert unchanged.status_code == 200
    assert unchanged.json() == replaced.json()

    listed = await api.get(f"/api/v1/{plural}")
    assert [item["name"] for item in listed.json()["items"]] == (
        ["b", x1] if plural == "services" else ["edge", x1] if plural == "gateways" else [x1]
    )

    deleted = await api.delete(f"/api/v1/{plural}/{x1}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    missing = await api.get(f"/api/v1/{plural}/{x1}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"{singular} '{x1}' not found"}
    assert (await api.delete(f"/api/v1/{plural}/{x1}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"spec": {"protocol": "ftp"}}, ["body", "spec", "protocol"], "literal_error"),
        ({"spec": {"protcol": "http"}}, ["body", "spec", "protcol"], "extra_forbidden"),
        ({"spec": {}, "name": "b"}, ["body", "name"], "extra_forbidden"),
        ({}, ["body", "spec"], "missing"),
        ({"spec": {"connect_timeout": "soon"}}, ["body", "spec", "connect_timeout"], "value_error"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(api: httpx.AsyncClient, body, loc, type_):
    response = await api.put("/api/v1/services/b", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, type_)]


@pytest.mark.parametrize("name", ["Bad_Name", "-b", "b" * 64, "a..b_"])
async def test_bad_names_are_422_naming_the_path_parameter(api: httpx.AsyncClient, name: str):
    response = await put(api, "services", name, {})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "name"]


async def test_reference_to_unknown_service_is_422_naming_the_field(api: httpx.AsyncClient):
    await put(api, "services", "b", {})
    spec = {"hosts": ["b"], "destinations": [{"service": "b"}, {"service": "nope"}]}
    response = await put(api, "routes", "r1", spec)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "spec", "destinations", 1, "service"],
                "msg": "service 'nope' does not exist",
                "type": "invalid_reference",
            }
        ]
    }
    assert (await api.get("/api/v1/routes/r1")).status_code == 404


async def test_deleting_a_referenced_service_is_409_listing_referrers(api: httpx.AsyncClient):
    await put(api, "services", "b", {})
    await put(api, "routes", "r1", {"hosts": ["b"], "destinations": [{"service": "b"}]})
    await put(api, "endpoints", "e1", {"service": "b", "address": "10.0.0.1", "port": 80})
    response = await api.delete("/api/v1/services/b")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "service 'b' is still referenced by endpoints/e1, routes/r1"
    }
    assert (await api.get("/api/v1/services/b")).status_code == 200


async def test_stale_if_match_is_412_and_changes_nothing(api: httpx.AsyncClient):
    await put(api, "services", "b", {})
    current = await put(api, "services", "b", {"protocol": "grpc"})
    etag = current.headers["ETag"]
    assert etag == '"2"'
    revision = (await api.get("/api/v1/server")).json()["revision"]

    stale = await put(api, "services", "b", {"protocol": "tcp"}, **{"If-Match": '"1"'})
    assert stale.status_code == 412
    assert "version 2, not 1" in stale.json()["detail"]
    assert (await api.delete("/api/v1/services/b", headers={"If-Match": "1"})).status_code == 412

    after = await api.get("/api/v1/services/b")
    assert after.json() == current.json()
    assert (await api.get("/api/v1/server")).json()["revision"] == revision


@pytest.mark.parametrize("if_match", ['"1"', "1", "*", ' "1" '])
async def test_if_match_accepts_quoted_bare_and_star(api: httpx.AsyncClient, if_match: str):
    await put(api, "services", "b", {})
    response = await put(api, "services", "b", {"protocol": "tcp"}, **{"If-Match": if_match})
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'


async def test_if_match_star_on_a_missing_resource_is_412(api: httpx.AsyncClient):
    response = await put(api, "services", "b", {}, **{"If-Match": "*"})
    assert response.status_code == 412
    assert (await api.get("/api/v1/services/b")).status_code == 404


@pytest.mark.parametrize("if_match", ['W/"1"', "abc", '"1", "2"'])
async def test_unreadable_if_match_is_422_naming_the_header(api: httpx.AsyncClient, if_match):
    await put(api, "services", "b", {})
    response = await put(api, "services", "b", {"protocol": "tcp"}, **{"If-Match": if_match})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "If-Match"]


async def test_openapi_lists_every_path_and_docs_answer(api: httpx.AsyncClient):
    document = (await api.get("/openapi.json")).json()
    expected = {"/api/v1/proxies", "/api/v1/proxies/{node_id}/config", "/api/v1/bootstrap"}
    expected |= {"/api/v1/server", "/api/v1/certificates", "/api/v1/certificates/rotate"}
    expected |= {"/api/v1/ca", "/api/v1/ca/rotate", "/api/v1/ca/finish", "/api/v1/ca/abort"}
    expected |= {"/api/v1/tokens", "/api/v1/tokens/me", "/api/v1/tokens/{name}"}
    expected |= {"/api/v1/apply", "/api/v1/changes", "/api/v1/replicas", "/api/v1/rollback"}
    expected |= {"/api/v1/revisions/{revision}", "/api/v1/diff"}
    expected |= {"/api/v1/explain", "/metrics", "/healthz", "/readyz"}
    for plural in KINDS:
        expected |= {f"/api/v1/{plural}", f"/api/v1/{plural}/{{name}}"}
    assert set(document["paths"]) == expected
    # Each kind has its own typed body.
    put_body = document["paths"]["/api/v1/routes/{name}"]["put"]["requestBody"]
    assert put_body["content"]["application/json"]["schema"]["$ref"].endswith("/RoutePut")
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_openapi_declares_503_where_the_database_is_needed(api: httpx.AsyncClient):
    paths = (await api.get("/openapi.json")).json()["paths"]
    needs = [("/api/v1/services/{name}", "put"), ("/api/v1/services", "get")]
    needs += [("/api/v1/explain", "post"), ("/api/v1/ca/rotate", "post"), ("/readyz", "get")]
    for path, method in needs:
        unavailable = paths[path][method]["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
        assert "Retry-After" in unavailable["headers"]
    for path in ("/healthz", "/api/v1/server", "/api/v1/proxies"):
        assert "503" not in paths[path]["get"]["responses"]
    assert "within 2 s" in paths["/readyz"]["get"]["description"]


async def test_health_checks_answer_at_the_root(api: httpx.AsyncClient):
    assert (await api.get("/healthz")).json() == {"status": "alive"}
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    info = (await api.get("/api/v1/server")).json()
    assert info["database"] == "reachable"
