"""The e2e support code works against a real Envoy: traffic, admin calls, failures, clean exit."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshplane.model import NodeOptions, Role
from meshplane.xds.bootstrap import render_bootstrap
from meshplane.xds.translate import group_resources, shared_resources
from tests.support.backends import HttpBackend
from tests.support.envoy import (
    EnvoyError,
    EnvoyProcess,
    merge_resources,
    static_bootstrap,
    validate_config,
)
from tests.support.meshes import endpoint, gateway, gateway_group, mesh, route, service
from tests.support.ports import free_port, free_ports
from tests.support.traffic import answered_by, client, hits, wait_until_served

pytestmark = pytest.mark.e2e

_HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


def _cluster(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def _static_bootstrap(listen_port: int, blue: HttpBackend, green: HttpBackend) -> dict[str, Any]:
    """A listener sending `x-color: green` or `/slow` elsewhere and everything else to blue."""
    routes = [
        {
            "name": "green",
            "match": {
                "prefix": "/",
                "headers": [{"name": "x-color", "string_match": {"exact": "green"}}],
            },
            "route": {"cluster": "green"},
        },
        {
            "name": "slow",
            "match": {"prefix": "/slow"},
            "route": {"cluster": "blue", "timeout": "0.2s"},
        },
        {"name": "blue", "match": {"prefix": "/"}, "route": {"cluster": "blue"}},
    ]
    manager = {
        "@type": _HCM_TYPE,
        "stat_prefix": "test",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "test",
                    "address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": listen_port}
                    },
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [_cluster("blue", blue.port), _cluster("green", green.port)],
        }
    }


@pytest.fixture
def backends() -> Iterator[tuple[HttpBackend, HttpBackend]]:
    with HttpBackend("blue") as blue, HttpBackend("green") as green:
        yield blue, green


async def test_requests_reach_backends_through_envoy(backends):
    blue, green = backends
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with EnvoyProcess(_static_bootstrap(port, blue, green)) as envoy:
        response = await wait_until_served(url + "/hello?x=1", lambda r: r.status_code == 200)
        body = response.json()
        assert response.headers["x-backend"] == "blue"
        assert body["backend"] == "blue"
        assert body["path"] == "/hello?x=1"
        assert body["method"] == "GET"
        assert body["host"] == f"127.0.0.1:{port}"
        assert "x-request-id" in body["headers"]  # added by Envoy, so it went through Envoy

        assert await hits(url + "/", 20) == {"blue": 20}
        assert await hits(url + "/", 5, headers={"x-color": "green"}) == {"green": 5}
        assert await hits(url + "/", 3, method="POST") == {"blue": 3}
        assert green.requests == 5
        assert blue.seen["/"] == 23

        stats = await envoy.stats()
        assert stats["cluster.green.upstream_rq_total"] == 5
        # Keep-alive end to end: Envoy reused its upstream connection to green.
        assert stats["cluster.green.upstream_cx_total"] == 1


async def test_admin_calls_and_exit_by_pid(backends):
    blue, green = backends
    port = free_port()
    async with EnvoyProcess(_static_bootstrap(port, blue, green), log_level="info") as envoy:
        pid = envoy.pid
        assert envoy.admin_url.startswith("http://127.0.0.1:")
        dump = await envoy.config_dump()
        kinds = {config["@type"].rsplit(".", 1)[-1] for config in dump["configs"]}
        assert {"ClustersConfigDump", "ListenersConfigDump"} <= kinds
        clusters = await envoy.config_dump("static_clusters")
        assert {c["cluster"]["name"] for c in clusters["configs"]} == {"blue", "green"}
        assert await envoy.has_cluster("green")
        assert not await envoy.has_cluster("red")
        assert envoy.running()
        assert "starting main dispatch loop" in envoy.log_tail(500)
    assert not envoy.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_backend_failures_and_delays_show_through_envoy(backends):
    blue, green = backends
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with EnvoyProcess(_static_bootstrap(port, blue, green)) as envoy:
        await wait_until_served(url + "/", lambda r: r.status_code == 200)
        blue.fail_next(2, status=503)
        assert await hits(url + "/", 3) == {"blue": 3}  # the 503s still carry x-backend
        blue.fail_next(1, status=500)
        async with client() as http:
            response = await http.get(url + "/")
        assert (response.status_code, answered_by(response)) == (500, "blue")

        blue.delay_seconds = 5.0
        async with client() as http:
            response = await http.get(url + "/slow")
        assert response.status_code == 504  # the route's 0.2 s timeout, not the backend
        assert answered_by(response) == "status 504"

        async def timed_out() -> bool:
            return (await envoy.stats()).get("cluster.blue.upstream_rq_timeout", 0) == 1

        await envoy.wait_for(timed_out, timeout=5)


async def test_wait_for_and_wait_until_served_give_up_at_their_deadline(backends):
    blue, green = backends
    port = free_port()
    async with EnvoyProcess(_static_bootstrap(port, blue, green)) as envoy:
        with pytest.raises(TimeoutError, match=r"within 0\.1s"):
            await envoy.wait_for(lambda: False, timeout=0.1)
    closed = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(TimeoutError, match="ConnectError"):
        await wait_until_served(closed, lambda r: True, timeout=0.1)


async def test_errors_inside_the_block_carry_envoy_log(backends):
    blue, green = backends
    with pytest.raises(RuntimeError) as caught:
        async with EnvoyProcess(_static_bootstrap(free_port(), blue, green), log_level="info"):
            raise RuntimeError("boom")
    assert any("envoy log" in note for note in caught.value.__notes__)


async def test_bad_bootstrap_fails_start_with_envoy_message():
    bootstrap = {"static_resources": {"clusters": [{"name": "x", "type": "NOT_A_TYPE"}]}}
    with pytest.raises(EnvoyError, match="NOT_A_TYPE"):
        async with EnvoyProcess(bootstrap):
            pass  # pragma: no cover - start-up fails


def test_validate_config_reports_envoy_output():
    with pytest.raises(EnvoyError, match="NOT_A_TYPE"):
        validate_config({"static_resources": {"clusters": [{"name": "x", "type": "NOT_A_TYPE"}]}})


async def test_generated_bootstrap_starts_and_waits_for_its_control_plane():
    """Without an xDS server Envoy answers admin calls but is not ready: wait_ready=False."""
    xds_port, admin_port = free_ports(2)
    options = NodeOptions(
        role=Role.GATEWAY,
        node_id="edge-1",
        xds_host="127.0.0.1",
        xds_port=xds_port,
        admin_port=admin_port,
        gateway="edge",
    )
    async with EnvoyProcess(render_bootstrap(options), wait_ready=False) as envoy:
        assert envoy.admin_url == f"http://127.0.0.1:{admin_port}"
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.get(envoy.admin_url + "/ready")).status_code == 503
        node = (await envoy.admin_get("/server_info")).json()["command_line_options"]
        assert node["concurrency"] == 1


def test_free_ports_are_distinct():
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 <= port <= 65535 for port in ports)


async def test_backend_stops_promptly_with_keep_alive_connections_open():
    backend = HttpBackend("solo").start()
    url = backend.url
    try:
        async with client() as http:
            assert (await http.get(url + "/")).headers["x-backend"] == "solo"
            before = {t.name for t in threading.enumerate()}
            started = time.monotonic()
            backend.stop()  # the client still holds its keep-alive connection
            assert time.monotonic() - started < 1.0
            assert "backend-solo" in before
            assert "backend-solo" not in {t.name for t in threading.enumerate()}
            with pytest.raises(httpx.TransportError):
                await http.get(url + "/")
    finally:
        backend.stop()


async def test_translated_gateway_config_serves_traffic_from_a_static_bootstrap(backends):
    """static_bootstrap makes translated resources runnable without a control plane."""
    blue, green = backends
    port = free_port()
    example = mesh(
        service("blue"),
        service("green"),
        endpoint("blue-1", "blue", "127.0.0.1", blue.port, labels={"v": "1"}),
        endpoint("green-1", "green", "127.0.0.1", green.port),
        gateway("edge", port, address="127.0.0.1"),
        route("default", gateways=["edge"], destinations=[{"service": "blue"}]),
        route(
            "no-debug-posts",
            gateways=["edge"],
            match={"methods": ["POST"], "headers": [{"name": "x-debug", "present": False}]},
            destinations=[{"service": "green"}],
        ),
        route(
            "subset",
            gateways=["edge"],
            match={"path": "/v1"},
            destinations=[{"service": "blue", "labels": {"v": "1"}}],
        ),
    )
    resources = merge_resources(
        shared_resources(example), group_resources(example, gateway_group("edge"))
    )
    url = f"http://127.0.0.1:{port}/"
    async with EnvoyProcess(static_bootstrap(resources)):
        assert await hits(url, 3) == {"blue": 3}
        assert await hits(url, 3, method="POST") == {"green": 3}
        assert await hits(url, 3, method="POST", headers={"x-debug": "1"}) == {"blue": 3}
        assert await hits(url + "v1", 3) == {"blue": 3}
