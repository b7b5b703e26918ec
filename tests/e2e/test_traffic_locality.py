"""Locality-aware routing: a gateway in zone a uses zone a's endpoints and fails over to zone b."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshplane.model import ProxyGroup, Role
from tests.e2e.conftest import Mesh
from tests.e2e.edge import answered_only_by, failing_health_check, gateway, service
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.traffic import hits, wait_until_served

pytestmark = pytest.mark.e2e


async def test_local_zone_first_then_failover_when_it_is_unhealthy(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    near_1, near_2, far = backends("near-1"), backends("near-2"), backends("far")
    check = {"path": "/healthz", "interval": "100ms", "unhealthy_threshold": 1}
    await service(
        mesh,
        "geo",
        [near_1, near_2, far],
        spec={"health_check": check},
        endpoints=[{"zone": "a"}, {"zone": "a"}, {"zone": "b"}],
    )
    bootstrap, url = await gateway(mesh, zone="a")
    await mesh.put("routes", "geo", {"gateways": ["edge"], "destinations": [{"service": "geo"}]})
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/", lambda r: r.status_code == 200)
        assert set(await hits(url + "/", 40)) == {"near-1", "near-2"}  # zone b is on standby

        ports = (near_1.port, near_2.port)
        near_1.stop()
        near_2.stop()
        await envoy.wait_for(lambda: failing_health_check(envoy, "geo", *ports), timeout=10)
        await answered_only_by(url + "/", {"far"})
        assert await hits(url + "/", 20) == {"far": 20}
    await mesh.validate_served(ProxyGroup(Role.GATEWAY, gateway="edge", zone="a"))
