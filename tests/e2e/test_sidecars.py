"""Two sidecars: app A reaches app B through A's outbound listener and B's inbound listener."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshplane.model import ProxyGroup, Role
from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_ports
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_app_a_calls_b_through_both_sidecars(
    mesh: Mesh, backends: Callable[[str], HttpBackend], delta: bool
) -> None:
    app_a, app_b = backends("a"), backends("b")
    a_in, a_out, b_in, b_out, a_admin, b_admin = free_ports(6)
    await mesh.put("services", "a", {})
    await mesh.put("services", "b", {})
    sidecar_a = await mesh.bootstrap(
        role="sidecar",
        service="a",
        inbound_port=a_in,
        app_port=app_a.port,
        outbound_port=a_out,
        admin_port=a_admin,
        node_id="a-1",
        delta=delta,
    )
    sidecar_b = await mesh.bootstrap(
        role="sidecar",
        service="b",
        inbound_port=b_in,
        app_port=app_b.port,
        outbound_port=b_out,
        admin_port=b_admin,
        node_id="b-1",
        delta=delta,
    )
    async with EnvoyProcess(sidecar_a), EnvoyProcess(sidecar_b) as envoy_b:
        # B registered itself as an endpoint of b when its sidecar connected.
        response = await wait_until_served(
            f"http://127.0.0.1:{a_out}/hello",
            lambda r: answered_by(r) == "b",
            headers={"host": "b"},
        )
        assert response.json()["path"] == "/hello"
        stats = await envoy_b.stats()
        assert stats[f"cluster.inbound|{app_b.port}.upstream_rq_total"] >= 1  # via B's sidecar

        endpoints = (await mesh.http.get("/api/v1/endpoints")).json()["items"]
        assert {(e["spec"]["service"], e["spec"]["port"], e["source"]) for e in endpoints} == {
            ("a", a_in, "auto"),
            ("b", b_in, "auto"),
        }
    await mesh.validate_served(
        ProxyGroup(
            Role.SIDECAR, service="a", inbound_port=a_in, app_port=app_a.port, outbound_port=a_out
        )
    )
