"""A whole control plane in-process (SQLite, API and xDS on free ports) for real-Envoy tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from meshplane.model import ProxyGroup
from meshplane.serve import ControlPlane
from meshplane.settings import Settings
from meshplane.xds import TranslateHook
from meshplane.xds.translate import group_resources, shared_resources
from meshplane.xds.type_urls import CLUSTER
from tests.support.backends import HttpBackend
from tests.support.envoy import merge_resources, validate_resources
from tests.support.tokens import ADMIN_TOKEN, bearer


class Mesh:
    """The REST API of a running control plane, as a test talks to it."""

    def __init__(self, plane: ControlPlane | None, http: httpx.AsyncClient) -> None:
        self.plane = plane
        self.http = http

    async def put(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.put(f"/api/v1/{kind}/{name}", json={"spec": spec})
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    async def delete(self, kind: str, name: str) -> None:
        response = await self.http.delete(f"/api/v1/{kind}/{name}")
        assert response.status_code == 204, response.text

    async def gateway_to(self, service: str, backend_port: int, gateway_port: int) -> None:
        """`service` with one endpoint at 127.0.0.1:`backend_port`, served on gateway `edge` at
        127.0.0.1:`gateway_port` by route `service`: the smallest mesh traffic can cross."""
        await self.put("services", service, {})
        await self.put(
            "endpoints",
            f"{service}-1",
            {"service": service, "address": "127.0.0.1", "port": backend_port},
        )
        await self.put("gateways", "edge", {"port": gateway_port, "address": "127.0.0.1"})
        await self.put(
            "routes", service, {"gateways": ["edge"], "destinations": [{"service": service}]}
        )

    async def bootstrap(self, **params: Any) -> dict[str, Any]:
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        response = await self.http.get("/api/v1/bootstrap", params={**params, "format": "json"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def proxies(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/proxies")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def validate_served(self, *groups: ProxyGroup) -> None:
        """Pass what the mesh translates to for `groups` through `envoy --mode validate`."""
        assert self.plane is not None
        assert self.plane.store is not None
        mesh = await self.plane.store.load_mesh()
        validate_resources(
            merge_resources(shared_resources(mesh), *(group_resources(mesh, g) for g in groups))
        )


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'mesh.db'}",
        "api_port": 0,
        "xds_port": 0,
        "xds_host": "127.0.0.1",
        "endpoint_grace_seconds": 0.5,
        "secret_key_file": tmp_path / "meshplane.key",
        "admin_token": ADMIN_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(autouse=True)
def cli_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands these tests run (`meshplane proxy`, ...) sign in as the admin."""
    monkeypatch.setenv("MESHPLANE_TOKEN", ADMIN_TOKEN)


@contextlib.asynccontextmanager
async def running_mesh(
    settings: Settings, *, hook: TranslateHook | None = None
) -> AsyncIterator[Mesh]:
    """A control plane started from `settings` (with a translate `hook`, for tests that poison
    or hold a build), and its API as a test talks to it, signed in as the admin."""
    async with (
        ControlPlane(settings, hook=hook) as plane,
        httpx.AsyncClient(
            base_url=plane.api_url, trust_env=False, timeout=10, headers=bearer()
        ) as http,
    ):
        yield Mesh(plane, http)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(make_settings(tmp_path)) as running:
        yield running


@pytest.fixture
def backends() -> Iterator[Callable[[str], HttpBackend]]:
    """Start named HTTP backends on demand; all are stopped after the test."""
    started: list[HttpBackend] = []

    def start(name: str) -> HttpBackend:
        backend = HttpBackend(name).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


class Poison:
    """Test hook: while armed, cluster `web` gets a negative connect timeout (Envoy rejects it)."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self, group: ProxyGroup | None, resources: dict[str, list[Message]]) -> None:
        if not self.armed or group is not None:
            return
        for cluster in resources.get(CLUSTER, []):
            if cluster.name == "web":  # type: ignore[attr-defined]
                cluster.connect_timeout.seconds = -1  # type: ignore[attr-defined]


@pytest.fixture
async def poisoned(tmp_path: Path) -> AsyncIterator[tuple[Mesh, Poison]]:
    poison = Poison()
    async with running_mesh(make_settings(tmp_path), hook=poison) as running:
        yield running, poison
