"""Concurrent writers queue for the write lock; none fails (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from meshplane.model import EndpointSpec, ServiceSpec
from meshplane.store import Store


async def test_concurrent_writes_all_succeed(store: Store) -> None:
    await store.put("services", "web", ServiceSpec())
    start = await store.revision()

    async def write(i: int) -> None:
        await store.put(
            "endpoints", f"web-{i}", EndpointSpec(service="web", address="10.0.0.1", port=1000 + i)
        )

    await asyncio.gather(*(write(i) for i in range(40)))
    assert len(await store.list("endpoints")) == 40
    assert await store.revision() == start + 40
