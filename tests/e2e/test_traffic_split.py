"""Weighted splits and sticky sessions through a real Envoy."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Mesh
from tests.e2e.edge import EDGE, gateway, service
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.traffic import answered_by, client, hits, wait_until_served

pytestmark = pytest.mark.e2e


def _split(v1: int, v2: int) -> dict[str, Any]:
    return {
        "gateways": ["edge"],
        "match": {"prefix": "/shop"},
        "destinations": [
            {"service": "shop", "labels": {"version": "v1"}, "weight": v1},
            {"service": "shop", "labels": {"version": "v2"}, "weight": v2},
        ],
    }


def _within(count: int, n: int, share: float, sigmas: float = 5.0) -> bool:
    """Is `count` of `n` a plausible binomial draw at `share` (within `sigmas` deviations)?"""
    spread = sigmas * math.sqrt(n * share * (1 - share))
    return abs(count - n * share) <= spread


async def _route_weights(envoy: EnvoyProcess) -> list[int]:
    dump = await envoy.config_dump("dynamic_route_configs")
    (config,) = dump["configs"]
    (route,) = config["route_config"]["virtual_hosts"][0]["routes"]
    return [c["weight"] for c in route["route"]["weighted_clusters"]["clusters"]]


async def test_ninety_ten_split_over_a_thousand_requests_then_reweighted_live(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    await service(
        mesh,
        "shop",
        [backends("v1"), backends("v2")],
        endpoints=[{"labels": {"version": "v1"}}, {"labels": {"version": "v2"}}],
    )
    bootstrap, url = await gateway(mesh)
    await mesh.put("routes", "shop", _split(90, 10))
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(url + "/shop", lambda r: r.status_code == 200)
        pid = envoy.pid
        counts = await hits(url + "/shop", 1000)  # one keep-alive connection
        assert set(counts) == {"v1", "v2"}, counts
        assert _within(counts["v2"], 1000, 0.10), counts

        await mesh.put("routes", "shop", _split(10, 90))
        await envoy.wait_for(lambda: _is(envoy, [10, 90]), timeout=10)
        counts = await hits(url + "/shop", 300)
        assert _within(counts["v2"], 300, 0.90), counts
        assert envoy.pid == pid
    await mesh.validate_served(EDGE)


async def _is(envoy: EnvoyProcess, weights: list[int]) -> bool:
    return await _route_weights(envoy) == weights


async def test_sticky_sessions_keep_each_user_on_one_endpoint(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    members = [backends(f"s{i}") for i in range(3)]
    await service(mesh, "cart", members, spec={"lb_policy": "ring_hash"})
    bootstrap, url = await gateway(mesh)
    await mesh.put(
        "routes",
        "cart",
        {
            "gateways": ["edge"],
            "sticky": {"header": "x-user"},
            "destinations": [{"service": "cart"}],
        },
    )
    async with EnvoyProcess(bootstrap):
        await wait_until_served(url + "/", lambda r: r.status_code == 200)
        owners: dict[str, Counter[str]] = {}
        async with client() as http:
            for user in (f"user-{i}" for i in range(24)):
                owners[user] = Counter()
                for _ in range(5):
                    response = await http.get(url + "/", headers={"x-user": user})
                    owners[user][answered_by(response)] += 1
        assert all(len(seen) == 1 for seen in owners.values()), owners
        used = {backend for seen in owners.values() for backend in seen}
        assert len(used) >= 2, owners  # different users land on different endpoints
