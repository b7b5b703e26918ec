"""TCP through the mesh with real Envoys, real TLS and real TCP: a tcp echo service reached from
other services' sidecars over mutual TLS, authorization by caller identity, a weighted split
between label subsets, and a tcp gateway.

All sidecars run on one host, so they cannot all listen on the service's mesh port (Envoy's
listeners reuse ports, and the kernel would spread connections among them): sidecar `a` uses
the service's `port`, the others are given their own by their bootstrap (`tcp_port`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.echo import EchoBackend, echo_once, wait_echoed
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports

pytestmark = pytest.mark.e2e

_STREAK = 12  # a split has moved once this many new connections in a row reach its subset


def _either(answer: bytes) -> bool:
    return answer in (b"v1|ping", b"v2|ping")


async def _logged(
    envoys: list[EnvoyProcess], wanted: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """The first access-log line of a tcp connection among `envoys`' output that is `wanted`."""
    async with asyncio.timeout(timeout):
        while True:
            for envoy in envoys:
                for line in envoy.access_log_lines():
                    if line.get("protocol") == "tcp" and wanted(line):
                        return line
            await asyncio.sleep(0.1)


async def _settles_on(port: int, backend: str, timeout: float = 15.0) -> None:
    """Wait until `_STREAK` connections in a row to `port` reach `backend` (before the split
    arrives, the whole service answers: either subset, by chance)."""
    wanted, streak, answers = f"{backend}|ping".encode(), 0, []
    async with asyncio.timeout(timeout):
        while streak < _STREAK:
            answers.append(await echo_once(port))
            streak = streak + 1 if answers[-1] == wanted else 0
            await asyncio.sleep(0 if streak else 0.05)
    assert answers[-_STREAK:] == [wanted] * _STREAK


async def test_tcp_service_through_sidecars_policies_splits_and_a_tcp_gateway(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    v1, v2 = EchoBackend("v1").start(), EchoBackend("v2").start()
    app_a, app_c = backends("a"), backends("c")
    (echo_port, c_echo, v1_echo, v2_echo, edge_port, edge_admin, *sidecar_ports) = free_ports(18)
    try:
        await mesh.put("services", "echo", {"protocol": "tcp", "port": echo_port})
        await mesh.put("services", "a", {})
        await mesh.put("services", "c", {})
        sidecars = [
            ("a", app_a.port, (), ()),
            ("c", app_c.port, (), (f"echo={c_echo}",)),
            ("echo", v1.port, ("version=v1",), (f"echo={v1_echo}",)),
            ("echo", v2.port, ("version=v2",), (f"echo={v2_echo}",)),
        ]
        boots = []
        for i, (service, app_port, labels, tcp_ports) in enumerate(sidecars):
            inbound, outbound, admin = sidecar_ports[3 * i : 3 * i + 3]
            boots.append(
                await mesh.bootstrap(
                    role="sidecar",
                    service=service,
                    inbound_port=inbound,
                    app_port=app_port,
                    outbound_port=outbound,
                    admin_port=admin,
                    node_id=f"{service}-{i}",
                    label=list(labels),
                    tcp_port=list(tcp_ports),
                )
            )
        v1_inbound = sidecar_ports[6]
        async with (
            EnvoyProcess(boots[0]) as envoy_a,
            EnvoyProcess(boots[1]),
            EnvoyProcess(boots[2]) as envoy_v1,
            EnvoyProcess(boots[3]) as envoy_v2,
        ):
            # a's app reaches the echo service on the service's port, through both sidecars.
            await wait_echoed(echo_port, _either)
            await wait_echoed(c_echo, _either)
            # Over mutual TLS: a's sidecar shook hands with the callee's, whose inbound
            # listener takes nothing else (plaintext gets no echo).
            assert (await envoy_a.stats())["cluster.echo.ssl.handshake"] >= 1
            assert await _plaintext_refused(v1_inbound)
            # Each connection is logged on both sides (access logs are on by default): a's
            # sidecar names the cluster it connected to, the callee's names a as the caller.
            sent = await _logged([envoy_a], lambda line: line["upstream_cluster"] == "echo")
            assert sent["protocol"] == "tcp"
            assert int(sent["bytes_sent"]) >= len(b"v1|ping")
            caller = "spiffe://meshplane.local/service/a"
            taken = await _logged([envoy_v1, envoy_v2], lambda line: line["caller"] == caller)
            assert taken["protocol"] == "tcp"
            assert int(taken["bytes_received"]) >= len(b"ping")

            # Only a may call echo: c's connections are closed before any echo.
            await mesh.put(
                "authorization-policies",
                "echo-callers",
                {"target": "echo", "callers": [{"service": "a"}]},
            )
            await wait_echoed(c_echo, lambda answer: answer == b"")
            assert _either(await echo_once(echo_port))
            denied = [await _rbac_denied(envoy) for envoy in (envoy_v1, envoy_v2)]
            assert sum(denied) >= 1

            # A weighted split between label subsets moves the connections: 100/0, then 0/100.
            for weights, backend in (((100, 0), "v1"), ((0, 100), "v2")):
                await mesh.put(
                    "routes",
                    "echo-split",
                    {
                        "hosts": ["echo"],
                        "destinations": [
                            {"service": "echo", "labels": {"version": "v1"}, "weight": weights[0]},
                            {"service": "echo", "labels": {"version": "v2"}, "weight": weights[1]},
                        ],
                    },
                )
                await _settles_on(echo_port, backend)

            # A tcp gateway forwards its port to the echo service (once its identity may call).
            await mesh.put(
                "gateways", "edge", {"protocol": "tcp", "port": edge_port, "address": "127.0.0.1"}
            )
            await mesh.put(
                "routes", "edge-echo", {"gateways": ["edge"], "destinations": [{"service": "echo"}]}
            )
            await mesh.put(
                "authorization-policies",
                "echo-callers",
                {"target": "echo", "callers": [{"service": "a"}, {"gateway": "edge"}]},
            )
            boot_edge = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=edge_admin)
            async with EnvoyProcess(boot_edge):
                await wait_echoed(edge_port, _either)
                # Another route on a tcp gateway is refused, naming both.
                refused = await mesh.http.put(
                    "/api/v1/routes/edge-two",
                    json={"spec": {"gateways": ["edge"], "destinations": [{"service": "echo"}]}},
                )
                assert refused.status_code == 409, refused.text
                assert "edge-echo" in refused.text
                assert "edge-two" in refused.text
                # Without a route the gateway does not listen: connections are refused.
                await mesh.delete("routes", "edge-echo")
                await _wait_refused(edge_port)
    finally:
        v1.stop()
        v2.stop()


async def _plaintext_refused(port: int) -> bool:
    """True when a plaintext connection to an inbound listener gets no echo back."""
    try:
        return b"|" not in await echo_once(port)
    except OSError:
        return True


async def _rbac_denied(envoy: EnvoyProcess) -> int:
    """Connections the network RBAC filters of `envoy` denied."""
    stats = await envoy.stats()
    return sum(v for k, v in stats.items() if "rbac" in k and k.endswith("denied"))


async def _wait_refused(port: int) -> None:
    """Wait until connections to 127.0.0.1:`port` are refused (its listener is gone)."""
    async with asyncio.timeout(15):
        while True:
            try:
                await echo_once(port, timeout=1)
            except ConnectionRefusedError:
                return
            except (ConnectionResetError, BrokenPipeError):
                pass  # the listener is draining: not gone yet
            await asyncio.sleep(0.05)
