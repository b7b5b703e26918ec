"""Every route needs a token unless allowlisted; each role gets exactly what its table says;
revoked and expired tokens are refused; a bootstrap token fetches only its scope's bootstraps;
every write names who made it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest

from meshplane.api import create_app
from meshplane.metrics import Metrics
from meshplane.settings import Settings
from meshplane.store import Role, Store, TokenRepo
from tests.support.tokens import ADMIN_TOKEN, bearer, node_token, store_token

from .fakes import FakeStatus

# The allowlist: answered without a token.
OPEN = {
    "GET /",
    "GET /ui",
    "GET /ui/",
    "GET /ui/{name}",
    "GET /api/v1/server",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/oauth2-redirect",
    "GET /redoc",
}
ANY = "any"  # any live token
READ = "read"  # viewer and up
WRITE = "write"  # editor and up
ADMIN = "admin"
BOOT = "bootstrap"  # admin, editor, and a bootstrap token for its scope
# Which role may do what (anything not OPEN must be here; a new route fails until it is).
NEEDS = {
    "GET /api/v1/{plural}": READ,
    "GET /api/v1/{plural}/{name}": READ,
    "PUT /api/v1/{plural}/{name}": WRITE,
    "DELETE /api/v1/{plural}/{name}": WRITE,
    "GET /api/v1/proxies": READ,
    "GET /api/v1/proxies/{node_id}/config": READ,
    "POST /api/v1/explain": READ,
    "GET /api/v1/bootstrap": BOOT,
    "GET /api/v1/certificates": READ,
    "POST /api/v1/certificates/rotate": WRITE,
    "GET /api/v1/ca": READ,
    "POST /api/v1/ca/rotate": ADMIN,
    "POST /api/v1/ca/finish": ADMIN,
    "POST /api/v1/ca/abort": ADMIN,
    "GET /api/v1/tokens": ADMIN,
    "GET /api/v1/tokens/me": ANY,
    "POST /api/v1/tokens": ADMIN,
    "DELETE /api/v1/tokens/{name}": ADMIN,
    "DELETE /api/v1/tokens": ADMIN,
    "POST /api/v1/apply": WRITE,
    "GET /api/v1/changes": READ,
    "GET /api/v1/revisions/{revision}": READ,
    "GET /api/v1/diff": READ,
    "POST /api/v1/rollback": WRITE,
    "GET /api/v1/replicas": READ,
}
ALLOWED = {
    "admin": {ANY, READ, WRITE, ADMIN, BOOT},
    "editor": {ANY, READ, WRITE, BOOT},
    "viewer": {ANY, READ},
    "bootstrap": {ANY, BOOT},  # the route; its scope is checked per identity (test below)
}
PLURAL_PREFIXES = (
    "/api/v1/apply",
    "/api/v1/changes",
    "/api/v1/revisions",
    "/api/v1/diff",
    "/api/v1/rollback",
    "/api/v1/proxies",
    "/api/v1/replicas",
    "/api/v1/bootstrap",
    "/api/v1/certificates",
    "/api/v1/ca",
    "/api/v1/tokens",
    "/api/v1/explain",
    "/api/v1/server",
)


def _template(path: str) -> str:
    """A kind's CRUD path, written once for every kind."""
    if path.startswith("/api/v1/") and not path.startswith(PLURAL_PREFIXES):
        rest = path.removeprefix("/api/v1/").split("/", 1)
        return "/api/v1/{plural}" + ("/" + rest[1] if len(rest) > 1 else "")
    return path


def _routes(api: httpx.AsyncClient) -> list[tuple[str, str, str]]:
    """(method, concrete path, label) for every operation of the app itself: its OpenAPI
    document (every API route is in it) and the routes it keeps out of it."""
    app = api._transport.app  # type: ignore[attr-defined]
    operations = {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    }
    operations |= {("GET", path) for path in ("/openapi.json", "/docs", "/ui/", "/ui/{name}")}
    return [
        (
            method,
            path.replace("{name}", "x").replace("{node_id}", "x").replace("{revision}", "0"),
            f"{method} {_template(path)}",
        )
        for method, path in sorted(operations)
    ]


async def _token(store: Store, name: str, role: Role, scope: Sequence[str] = ()) -> str:
    return await TokenRepo(store.database).create(
        name,
        role,
        expires_at=None,
        created_by="test",
        now=datetime.now(UTC),
        scope=scope,
    )


async def test_every_route_needs_a_token_and_each_role_gets_its_table(
    api: httpx.AsyncClient, store: Store
):
    tokens = {
        "admin": None,
        "editor": await _token(store, "ed", "editor"),
        "viewer": await _token(store, "vi", "viewer"),
        "bootstrap": await _token(store, "bo", "bootstrap", scope=["service/orders"]),
    }
    node = await node_token(store, "service/orders")  # an xDS credential, never an API one
    for method, path, label in _routes(api):
        bare = await api.request(method, path, headers={"Authorization": ""})
        if label in OPEN:
            assert bare.status_code not in (401, 403), label
            continue
        assert label in NEEDS, f"{label} is in neither the allowlist nor the role table"
        assert bare.status_code == 401, label
        assert bare.headers["WWW-Authenticate"] == "Bearer"
        wrong = await api.request(method, path, headers=bearer("not-a-token-at-all"))
        assert wrong.status_code == 401, label
        assert (await api.request(method, path, headers=bearer(node))).status_code == 401, label
        for role, token in tokens.items():
            if token is None:
                continue  # the admin: every other test of the API
            answer = await api.request(method, path, headers=bearer(token))
            if NEEDS[label] in ALLOWED[role]:
                assert answer.status_code not in (401, 403), (role, label, answer.text)
            else:
                assert answer.status_code == 403, (role, label, answer.text)
                assert isinstance(answer.json()["detail"], str)


async def test_a_revoked_token_is_401_on_its_next_call(api: httpx.AsyncClient):
    created = await api.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert (await api.get("/api/v1/services", headers=bearer(token))).status_code == 200
    listed = (await api.get("/api/v1/tokens")).json()["items"]
    assert {t["name"] for t in listed} == {"admin", "ci"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert token not in (await api.get("/api/v1/tokens")).text
    assert (await api.delete("/api/v1/tokens/ci")).status_code == 204
    assert (await api.get("/api/v1/services", headers=bearer(token))).status_code == 401
    assert (await api.delete("/api/v1/tokens/ci")).status_code == 404


async def test_an_expired_token_is_401(api: httpx.AsyncClient):
    created = await api.post(
        "/api/v1/tokens", json={"name": "brief", "role": "viewer", "ttl_seconds": 0.5}
    )
    token = created.json()["token"]
    assert (await api.get("/api/v1/services", headers=bearer(token))).status_code == 200
    async with asyncio.timeout(10):
        while (await api.get("/api/v1/services", headers=bearer(token))).status_code == 200:
            await asyncio.sleep(0.1)
    assert (await api.get("/api/v1/services", headers=bearer(token))).status_code == 401


async def test_a_bootstrap_token_fetches_only_its_scope(api: httpx.AsyncClient):
    created = await api.post(
        "/api/v1/tokens",
        json={"name": "pipeline", "role": "bootstrap", "scope": ["service/orders"]},
    )
    assert created.status_code == 201, created.text
    token = bearer(created.json()["token"])
    query: dict[str, str | int] = {
        "role": "sidecar",
        "inbound_port": 15006,
        "outbound_port": 15001,
        "app_port": 8080,
    }
    orders = await api.get(
        "/api/v1/bootstrap", params={**query, "service": "orders"}, headers=token
    )
    assert orders.status_code == 200, orders.text
    payments = await api.get(
        "/api/v1/bootstrap", params={**query, "service": "payments"}, headers=token
    )
    assert payments.status_code == 403
    assert (await api.get("/api/v1/services", headers=token)).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "role": "bootstrap"},
        {"name": "x", "role": "viewer", "scope": ["service/a"]},
        {"name": "x", "role": "root"},
        {"name": "x", "role": "bootstrap", "scope": ["orders"]},
        {"name": "auto", "role": "viewer"},
    ],
)
async def test_a_bad_token_request_is_a_422(api: httpx.AsyncClient, body: dict[str, object]):
    assert (await api.post("/api/v1/tokens", json=body)).status_code == 422


async def test_every_write_names_its_token(api: httpx.AsyncClient, store: Store):
    editor = bearer(await _token(store, "deployer", "editor"))
    put = await api.put("/api/v1/services/a", json={"spec": {}}, headers=editor)
    assert put.json()["updated_by"] == "deployer"
    other = await api.put("/api/v1/services/b", json={"spec": {}})
    assert other.json()["updated_by"] == "admin"
    assert (await api.get("/api/v1/services/a")).json()["updated_by"] == "deployer"


async def test_metrics_take_their_own_token_when_one_is_set(store: Store):
    secret = "metrics-token-0123456789"
    app = create_app(
        store=store,
        status=FakeStatus(),
        settings=Settings(metrics_token=secret),
        metrics=Metrics(),
    )
    await store_token(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=bearer(ADMIN_TOKEN))).status_code == 401
        assert (await http.get("/metrics", headers=bearer(secret))).status_code == 200
        # ... and it is no API token.
        assert (await http.get("/api/v1/services", headers=bearer(secret))).status_code == 401


async def test_openapi_declares_the_bearer_scheme_on_every_protected_operation(
    api: httpx.AsyncClient,
):
    document = (await api.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["ApiToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")  # /docs: Authorize
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            label = f"{method.upper()} {_template(path)}"
            if label in OPEN:
                assert "security" not in operation, label
            else:
                assert operation["security"] == [{"ApiToken": []}], label
                assert {"401"} <= set(operation["responses"]), label
