"""A real Envoy gateway follows the routes written through the API, without restarting."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshplane.model import ProxyGroup, Role
from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, hits, wait_until_served

pytestmark = pytest.mark.e2e


async def _gateway(mesh: Mesh, delta: bool) -> tuple[dict[str, object], str]:
    port = free_port()
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    bootstrap = await mesh.bootstrap(
        role="gateway", gateway="edge", delta=delta, admin_port=free_port()
    )
    return bootstrap, f"http://127.0.0.1:{port}"


async def _service(
    mesh: Mesh, name: str, *members: HttpBackend, labels: list[dict[str, str]] | None = None
) -> None:
    await mesh.put("services", name, {"protocol": "http"})
    for i, backend in enumerate(members):
        spec = {"service": name, "address": "127.0.0.1", "port": backend.port}
        if labels:
            spec["labels"] = labels[i]
        await mesh.put("endpoints", f"{name}-{i}", spec)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_gateway_route_reaches_both_endpoints(
    mesh: Mesh, backends: Callable[[str], HttpBackend], delta: bool
) -> None:
    one, two = backends("web-1"), backends("web-2")
    await _service(mesh, "web", one, two)
    bootstrap, url = await _gateway(mesh, delta)
    await mesh.put("routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    async with EnvoyProcess(bootstrap):
        await wait_until_served(url + "/", lambda r: r.status_code == 200)
        counts = await hits(url + "/", 40)
        assert set(counts) == {"web-1", "web-2"}
        assert counts["web-1"] >= 10
        assert counts["web-2"] >= 10
    await mesh.validate_served(ProxyGroup(Role.GATEWAY, gateway="edge"))


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_route_changes_apply_without_restart(
    mesh: Mesh, backends: Callable[[str], HttpBackend], delta: bool
) -> None:
    blue, green = backends("blue"), backends("green")
    await _service(mesh, "blue", blue)
    await _service(mesh, "green", green)
    await _service(mesh, "shop", blue, green, labels=[{"version": "v1"}, {"version": "v2"}])
    bootstrap, url = await _gateway(mesh, delta)
    await mesh.put(
        "routes",
        "main",
        {"gateways": ["edge"], "match": {"prefix": "/a"}, "destinations": [{"service": "blue"}]},
    )
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/a", lambda r: answered_by(r) == "blue")
        pid = envoy.pid

        # a new prefix
        await mesh.put(
            "routes",
            "main",
            {
                "gateways": ["edge"],
                "match": {"prefix": "/b"},
                "destinations": [{"service": "blue"}],
            },
        )
        await wait_until_served(url + "/b", lambda r: answered_by(r) == "blue")
        await wait_until_served(url + "/a", lambda r: r.status_code == 404)

        # a new destination
        await mesh.put(
            "routes",
            "main",
            {
                "gateways": ["edge"],
                "match": {"prefix": "/b"},
                "destinations": [{"service": "green"}],
            },
        )
        await wait_until_served(url + "/b", lambda r: answered_by(r) == "green")

        # weights 100/0 -> 0/100 across label subsets of one service
        split = {"gateways": ["edge"], "match": {"prefix": "/"}}
        await mesh.put(
            "routes",
            "main",
            {
                **split,
                "destinations": [
                    {"service": "shop", "labels": {"version": "v1"}, "weight": 100},
                    {"service": "shop", "labels": {"version": "v2"}, "weight": 0},
                ],
            },
        )
        await wait_until_served(url + "/shop", lambda r: answered_by(r) == "blue")
        assert await hits(url + "/shop", 20) == {"blue": 20}
        await mesh.put(
            "routes",
            "main",
            {
                **split,
                "destinations": [
                    {"service": "shop", "labels": {"version": "v1"}, "weight": 0},
                    {"service": "shop", "labels": {"version": "v2"}, "weight": 100},
                ],
            },
        )
        await wait_until_served(url + "/shop", lambda r: answered_by(r) == "green")
        assert await hits(url + "/shop", 20) == {"green": 20}
        assert envoy.pid == pid
        assert envoy.running()
    await mesh.validate_served(ProxyGroup(Role.GATEWAY, gateway="edge"))


async def test_deleted_route_is_404_and_empty_service_is_503(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    await _service(mesh, "web", web)
    await mesh.put("services", "empty", {})
    bootstrap, url = await _gateway(mesh, False)
    await mesh.put(
        "routes",
        "web",
        {"gateways": ["edge"], "match": {"prefix": "/web"}, "destinations": [{"service": "web"}]},
    )
    await mesh.put(
        "routes",
        "empty",
        {
            "gateways": ["edge"],
            "match": {"prefix": "/empty"},
            "destinations": [{"service": "empty"}],
        },
    )
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/web", lambda r: answered_by(r) == "web")
        await wait_until_served(url + "/empty", lambda r: r.status_code == 503)
        await mesh.delete("routes", "web")
        await wait_until_served(url + "/web", lambda r: r.status_code == 404)
        assert envoy.running()
    await mesh.validate_served(ProxyGroup(Role.GATEWAY, gateway="edge"))
