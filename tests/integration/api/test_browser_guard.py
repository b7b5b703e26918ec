"""A web page cannot turn a browser against the API: a cross-origin form POST, a write that is not
JSON and a foreign Host header (DNS rebinding) are refused on every operation, walked from the
app itself so that a new route cannot escape, and change nothing. Same-origin requests (the
dashboard) and requests without Origin (the CLI, curl) work as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.routing import BaseRoute, Route

from meshplane.api import create_app
from meshplane.api.browser_guard import WRITES, answered_hosts
from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.demo.topology import API_PORT, COMPOSE_XDS_HOST
from meshplane.settings import Settings
from meshplane.store import Store
from meshplane.store.identity import IdentityRepo
from tests.support.tokens import bearer, store_token

from .fakes import FakeStatus

API = "http://localhost:8080"  # the API's own origin, as a browser on its host reaches it
ATTACKER = "http://attacker.example"
SIDECAR: dict[str, str | int] = {
    "role": "sidecar",
    "service": "orders",
    "inbound_port": 15001,
    "app_port": 8080,
    "outbound_port": 15002,
}
FORMS = [
    ("application/x-www-form-urlencoded", b"overlap_seconds=0"),
    (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n',
    ),
    ("text/plain", b'{"spec": {}}'),  # what a form with enctype=text/plain sends, JSON or not
    ("application/x-www-form-urlencoded", b""),  # a form without fields
]


def _app(store: Store, authority: CertificateAuthority | None = None, **settings: Any) -> FastAPI:
    return create_app(
        store=store,
        status=FakeStatus(),
        settings=Settings(advertise_address="10.1.2.3", **settings),
        authority=authority,
    )


def _operations(app: FastAPI, methods: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """Every (method, path) the app routes, path parameters filled in."""
    every = sorted(
        (method, re.sub(r"\{[^}]+\}", "orders", path))
        for path, route_methods in _routes(app.routes)
        for method in route_methods
    )
    assert ("POST", "/api/v1/ca/finish") in every, every  # the walk reaches included routers
    return [(method, path) for method, path in every if methods is None or method in methods]


def _routes(routes: list[BaseRoute]) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, inside included routers too (FastAPI wraps them)."""
    for route in routes:
        if isinstance(route, Route | APIRoute):
            yield route.path, set(route.methods or ())
        elif candidates := getattr(route, "effective_candidates", None):
            for context in candidates():
                yield context.path, set(context.original_route.methods or ())
        else:
            raise AssertionError(f"a route this test cannot walk: {route!r}")


def _refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"}
    assert words in response.json()["detail"]


@pytest.fixture(autouse=True)
async def _admin_token(store: Store) -> None:
    """The clients below sign in as an admin: the guard must refuse before authentication."""
    await store_token(store)


@pytest.fixture
async def authority(store: Store) -> CertificateAuthority:
    ca = CertificateAuthority(
        IdentityRepo(store.database),
        SecretBox(b"k" * 32),
        CaConfig(trust_domain="mesh.test", overlap=dt.timedelta(seconds=3600)),
    )
    await ca.start()
    return ca


@pytest.fixture
async def api(store: Store, authority: CertificateAuthority) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a service stored and a root rotation in its overlap: what an attack could
    end early or delete."""
    transport = httpx.ASGITransport(app=_app(store, authority))
    async with httpx.AsyncClient(transport=transport, base_url=API, headers=bearer()) as client:
        stored = await client.put("/api/v1/services/orders", json={"spec": {"protocol": "http"}})
        assert stored.status_code in (200, 201), stored.text
        assert (await client.post("/api/v1/ca/rotate", json={})).status_code == 202
        async with asyncio.timeout(10):
            while (await client.get("/api/v1/ca")).json()["phase"] != "overlap":
                await asyncio.sleep(0.01)
        yield client


async def _state(api: httpx.AsyncClient) -> tuple[Any, ...]:
    revision = (await api.get("/api/v1/server")).json()["revision"]
    services = (await api.get("/api/v1/services")).json()
    ca = (await api.get("/api/v1/ca")).json()
    leaves = (await api.get("/api/v1/certificates")).json()
    return revision, services, ca, leaves


async def test_a_cross_origin_form_post_is_refused_on_every_write_and_changes_nothing(
    api: httpx.AsyncClient, store: Store, authority: CertificateAuthority
) -> None:
    before = await _state(api)
    for method, path in _operations(_app(store, authority), WRITES):
        for content_type, body in FORMS:
            headers = {"origin": ATTACKER, "content-type": content_type}
            response = await api.request(method, path, content=body, headers=headers)
            _refused(response, 403, "'http://attacker.example'")
    assert await _state(api) == before


async def test_a_form_post_without_origin_is_refused_on_every_write_and_changes_nothing(
    api: httpx.AsyncClient, store: Store, authority: CertificateAuthority
) -> None:
    # A browser that strips Origin (an old one, a privacy extension) still sends a form type.
    before = await _state(api)
    for method, path in _operations(_app(store, authority), WRITES):
        for content_type, body in FORMS:
            response = await api.request(
                method, path, content=body, headers={"content-type": content_type}
            )
            _refused(response, 415, f"a {method} takes Content-Type application/json, not")
    assert await _state(api) == before


async def test_a_script_post_without_a_body_from_another_origin_is_refused(
    api: httpx.AsyncClient,
) -> None:
    # fetch(url, {method: "POST", mode: "no-cors"}) sends no Content-Type, but an Origin.
    response = await api.post("/api/v1/ca/finish", headers={"origin": ATTACKER})
    _refused(response, 403, "other origins")
    assert (await api.get("/api/v1/ca")).json()["phase"] == "overlap"


async def test_a_foreign_host_is_refused_on_every_operation_and_on_bootstrap(
    api: httpx.AsyncClient, store: Store, authority: CertificateAuthority
) -> None:
    # A rebound name is the page's own origin to the browser: Origin and Host agree.
    rebound = {"host": "rebound.example:8080", "origin": "http://rebound.example:8080"}
    before = await _state(api)
    for method, path in _operations(_app(store, authority)):
        for headers in (rebound, {"host": "rebound.example"}):
            json: dict[str, Any] | None = {"spec": {}} if method in WRITES else None
            response = await api.request(method, path, json=json, headers=headers)
            if method == "HEAD":  # an answer without a body
                assert response.status_code == 400, (method, path)
                continue
            _refused(response, 400, "does not answer to the host 'rebound.example")
    bootstrap = await api.get("/api/v1/bootstrap", params=SIDECAR, headers=rebound)
    _refused(bootstrap, 400, "MESHPLANE_ALLOWED_HOSTS")
    assert "token" not in bootstrap.text
    assert await _state(api) == before


async def test_same_origin_and_no_origin_work(api: httpx.AsyncClient) -> None:
    same = {"origin": API}
    put = await api.put(
        "/api/v1/services/payments", json={"spec": {"protocol": "http"}}, headers=same
    )
    assert put.status_code == 201, put.text
    assert (await api.get("/api/v1/services/payments", headers=same)).status_code == 200
    assert (await api.delete("/api/v1/services/payments", headers=same)).status_code == 204
    assert (await api.post("/api/v1/ca/finish", headers=same)).status_code == 200
    assert (await api.get("/api/v1/bootstrap", params=SIDECAR)).status_code == 200
    # A JSON type with parameters, or a JSON subtype, is JSON.
    typed = {"content-type": "application/json; charset=utf-8"}
    assert (await api.put("/api/v1/services/a", content=b'{"spec": {}}', headers=typed)).is_success


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8081",  # another port is another origin
        "https://localhost:8080",  # and another scheme
        "http://127.0.0.1:8080",  # another name of the same host is another origin too
        "null",  # a sandboxed frame, a file:// page
        "localhost:8080",
    ],
)
async def test_an_origin_other_than_the_apis_own_is_refused(
    api: httpx.AsyncClient, origin: str
) -> None:
    _refused(await api.get("/api/v1/services", headers={"origin": origin}), 403, "other origins")


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("localhost.:8080", True),
        ("127.0.0.1", True),
        ("[::1]:8080", True),
        ("10.1.2.3:8080", True),  # the advertised address
        ("127.0.0.2:8080", False),
        ("localhost.attacker.example", False),
        ("::1", False),  # not a Host header: an IPv6 address goes in brackets
        ("", False),
    ],
)
async def test_the_hosts_answered_by_default(store: Store, host: str, answered: bool) -> None:
    transport = httpx.ASGITransport(app=_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=API, headers=bearer()) as client:
        response = await client.get("/api/v1/server", headers={"host": host})
    assert response.status_code == (200 if answered else 400), response.text


def test_compose_reaches_the_control_plane_by_its_service_name_and_from_the_host() -> None:
    # docker-compose.yml: --api-host 0.0.0.0 --advertise-address meshplane, no allowed hosts.
    hosts = answered_hosts(Settings(api_host="0.0.0.0", advertise_address=COMPOSE_XDS_HOST))
    assert hosts is not None
    assert {(COMPOSE_XDS_HOST, None), ("127.0.0.1", None), ("localhost", None)} <= hosts
    assert ("0.0.0.0", None) not in hosts  # a wildcard listen address names no host
    hosts = answered_hosts(Settings(api_host="::", advertise_address="::1"))
    assert hosts == frozenset({("localhost", None), ("127.0.0.1", None), ("[::1]", None)})
    assert str(API_PORT) in API  # the published port the tests' origin stands for


async def test_allowed_hosts_from_the_environment(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPLANE_ALLOWED_HOSTS", " mesh.example , api.example:8443,[fd00::1]")
    settings = Settings()
    assert settings.allowed_hosts == ("mesh.example", "api.example:8443", "[fd00::1]")
    app = create_app(store=store, status=FakeStatus(), settings=settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), headers=bearer()
    ) as client:
        for url, answered in [
            ("http://mesh.example/api/v1/server", True),
            ("http://mesh.example:9000/api/v1/server", True),  # a name without port: any port
            ("https://api.example:8443/api/v1/server", True),
            ("http://api.example:8080/api/v1/server", False),  # a name with a port: that one
            ("http://[fd00::1]:8080/api/v1/server", True),
            ("http://localhost:8080/api/v1/server", False),  # set, the list replaces the default
        ]:
            assert (await client.get(url)).status_code == (200 if answered else 400), url


async def test_a_star_answers_to_any_host_and_origins_are_still_checked(store: Store) -> None:
    transport = httpx.ASGITransport(app=_app(store, allowed_hosts="*"))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://any.example", headers=bearer()
    ) as client:
        assert (await client.get("/api/v1/server")).status_code == 200
        response = await client.get("/api/v1/server", headers={"origin": ATTACKER})
        _refused(response, 403, "other origins")


@pytest.mark.parametrize("entry", ["http://mesh.example/", "mesh.example:port", "a b"])
def test_an_allowed_host_that_is_no_host_is_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValidationError, match="allowed_hosts") as caught:
        Settings(allowed_hosts=f"localhost,{entry}")
    assert "is not a host or host:port" in str(caught.value)


def test_openapi_declares_the_guards_answers_on_every_operation(store: Store) -> None:
    paths = _app(store).openapi()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            expected = {"400", "403"} | ({"415"} if method.upper() in WRITES else set())
            assert expected <= set(operation["responses"]), (method, path)
            for status in expected:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}
