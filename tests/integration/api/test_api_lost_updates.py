"""Concurrent read-modify-write through the API with If-Match loses no update, on SQLite and
PostgreSQL: each writer reads a version, writes with If-Match, and on 412 reads again."""

from __future__ import annotations

import asyncio

import httpx

WRITERS = 10
INCREMENTS = 10


async def _increment(api: httpx.AsyncClient) -> int:
    """Add one to the service's max_requests; return how many 412s it took."""
    conflicts = 0
    while True:
        got = await api.get("/api/v1/services/counter")
        spec = got.json()["spec"]
        spec["circuit_breaker"]["max_requests"] += 1
        put = await api.put(
            "/api/v1/services/counter",
            json={"spec": spec},
            headers={"If-Match": got.headers["ETag"]},
        )
        if put.status_code == 200:
            return conflicts
        assert put.status_code == 412, put.text
        conflicts += 1


async def test_concurrent_writers_with_if_match_lose_no_update(api: httpx.AsyncClient):
    start = {"spec": {"circuit_breaker": {"max_requests": 1}}}
    assert (await api.put("/api/v1/services/counter", json=start)).status_code == 201

    async def writer() -> int:
        return sum([await _increment(api) for _ in range(INCREMENTS)])

    async with asyncio.timeout(120):
        conflicts = await asyncio.gather(*(writer() for _ in range(WRITERS)))

    final = (await api.get("/api/v1/services/counter")).json()
    assert final["spec"]["circuit_breaker"]["max_requests"] == 1 + WRITERS * INCREMENTS
    assert sum(conflicts) > 0  # the writers did race: If-Match is what kept every update
