"""Retries, timeouts, circuit breakers, outlier detection and health checks through real Envoy,
against backends told to fail, to be slow, or stopped."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.e2e.edge import (
    EDGE,
    answered_only_by,
    failing_health_check,
    gateway,
    request,
    send_all,
    service,
)
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.traffic import answered_by, client, hits, wait_until_served

pytestmark = pytest.mark.e2e


def _route(prefix: str, service: str, **policies: Any) -> dict[str, Any]:
    return {
        "gateways": ["edge"],
        "match": {"prefix": prefix},
        "destinations": [{"service": service}],
        **policies,
    }


async def test_retries_timeouts_and_circuit_breaking(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    flaky, slow, guarded = backends("flaky"), backends("slow"), backends("guarded")
    await service(mesh, "flaky", [flaky])
    await service(mesh, "slow", [slow])
    limits = {"max_connections": 1, "max_pending_requests": 1, "max_requests": 1}
    await service(mesh, "guarded", [guarded], spec={"circuit_breaker": limits})
    bootstrap, url = await gateway(mesh)
    retries = {"attempts": 2, "retry_on": ["5xx"], "backoff": {"base_interval": "5ms"}}
    await mesh.put("routes", "retried", _route("/retried", "flaky", retries=retries))
    await mesh.put("routes", "once", _route("/once", "flaky"))
    await mesh.put("routes", "slow", _route("/slow", "slow", timeout="200ms"))
    await mesh.put("routes", "guarded", _route("/guarded", "guarded"))
    async with EnvoyProcess(bootstrap):
        for path in ("/retried", "/once", "/slow", "/guarded"):
            await wait_until_served(url + path, lambda r: r.status_code == 200)

        # Retries turn the backend's first failure into a success; without them it shows.
        flaky.reset()
        flaky.fail_next(1, 503)
        response = await request(url + "/retried")
        assert (response.status_code, answered_by(response)) == (200, "flaky")
        assert flaky.requests == 2
        flaky.fail_next(1, 503)
        assert (await request(url + "/once")).status_code == 503

        # A route timeout answers 504 in time, not when the backend finally answers.
        slow.delay_seconds = 2.0
        started = time.monotonic()
        response = await request(url + "/slow")
        elapsed = time.monotonic() - started
        assert response.status_code == 504
        assert 0.18 <= elapsed < 1.0, elapsed

        # One request in flight and one queued: the rest overflow with 503 at once.
        guarded.delay_seconds = 0.5
        started = time.monotonic()
        answers = await send_all(url + "/guarded", 6)
        overflowed = [r for r in answers if r.headers.get("x-envoy-overloaded") == "true"]
        assert len(overflowed) >= 3, [r.status_code for r in answers]
        assert all(r.status_code == 503 for r in overflowed)
        assert any(r.status_code == 200 for r in answers)
        assert time.monotonic() - started < 2.5
    await mesh.validate_served(EDGE)


async def test_outlier_detection_and_health_checks_take_bad_endpoints_out(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    good, bad = backends("good"), backends("bad")
    outliers = {
        "consecutive_5xx": 3,
        "interval": "1s",
        "base_ejection_time": "30s",
        "max_ejection_percent": 50,
    }
    await service(mesh, "pool", [good, bad], spec={"outlier_detection": outliers})
    alive, doomed = backends("alive"), backends("doomed")
    check = {"path": "/healthz", "interval": "100ms", "timeout": "500ms", "unhealthy_threshold": 2}
    await service(mesh, "checked", [alive, doomed], spec={"health_check": check})
    bootstrap, url = await gateway(mesh)
    await mesh.put("routes", "pool", _route("/pool", "pool"))
    await mesh.put("routes", "checked", _route("/checked", "checked"))
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/pool", lambda r: r.status_code == 200)
        assert set(await hits(url + "/pool", 10)) == {"good", "bad"}

        # The failing endpoint is ejected after 3 errors in a row; traffic moves to the good one.
        bad.fail_next(1000, 500)
        seen: Counter[str] = Counter()
        async with client() as http:
            for _ in range(12):
                response = await http.get(url + "/pool")
                seen["error" if response.status_code == 500 else answered_by(response)] += 1
        assert seen["error"] >= 3, seen  # three in a row before the ejection
        await answered_only_by(url + "/pool", {"good"})
        assert await hits(url + "/pool", 20) == {"good": 20}
        stats = await envoy.stats()
        assert stats["cluster.pool.outlier_detection.ejections_enforced_consecutive_5xx"] >= 1

        # Health checks find the stopped endpoint before any request does.
        await wait_until_served(url + "/checked", lambda r: answered_by(r) == "doomed")
        port = doomed.port
        doomed.stop()
        await envoy.wait_for(lambda: failing_health_check(envoy, "checked", port), timeout=10)
        await answered_only_by(url + "/checked", {"alive"})
        assert await hits(url + "/checked", 20) == {"alive": 20}
    await mesh.validate_served(EDGE)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_a_service_settings_change_applies_at_once(
    mesh: Mesh, backends: Callable[[str], HttpBackend], delta: bool
) -> None:
    """Envoy warms an updated EDS cluster anew and waits for its load assignment, which did not
    change; unless it is sent again, the update waits for the initial fetch timeout (15 s)."""
    web = backends("web")
    await service(mesh, "web", [web])
    bootstrap, url = await gateway(mesh, delta=delta)
    await mesh.put("routes", "web", _route("/", "web"))
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/", lambda r: answered_by(r) == "web")
        updates = (await envoy.stats())["cluster_manager.cds.update_success"]
        started = time.monotonic()
        await mesh.put("services", "web", {"connect_timeout": "3s"})

        async def applied() -> bool:
            stats = await envoy.stats()
            return (
                stats["cluster_manager.cds.update_success"] > updates
                and stats["cluster_manager.warming_clusters"] == 0
            )

        await envoy.wait_for(applied, timeout=5.0)
        assert time.monotonic() - started < 5.0
        clusters = await envoy.config_dump("dynamic_active_clusters")
        (active,) = [c for c in clusters["configs"] if c["cluster"]["name"] == "web"]
        assert active["cluster"]["connect_timeout"] == "3s"
        assert answered_by(await request(url + "/")) == "web"
