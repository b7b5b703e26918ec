"""The snapshot builder through a database outage: it keeps running, logs no traceback, and
catches up by itself once the database answers again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from meshplane.model import ServiceSpec
from meshplane.store import open_store
from meshplane.store_bridge import StoreMeshSource
from meshplane.xds import ResourceCache, SnapshotBuilder
from tests.support.postgres_cluster import private_cluster

pytestmark = pytest.mark.postgres


async def test_the_builder_waits_out_an_outage_and_catches_up(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    with private_cluster() as cluster:
        store = await open_store(cluster.url)
        other = await open_store(cluster.url)  # another replica: its commits are not in our feed
        builder = SnapshotBuilder(StoreMeshSource(store), ResourceCache())
        await builder.load()
        task = asyncio.create_task(builder.run())
        try:
            await other.put("services", "orders", ServiceSpec())
            await cluster.stop()
            # What a replica's notification would do: the builder must read the change log.
            store.feed.publish(1)
            async with asyncio.timeout(10):
                while "database unreachable since" not in caplog.text:
                    await asyncio.sleep(0.02)
            assert not task.done()
            assert builder.mesh.revision == 0

            await cluster.start()
            async with asyncio.timeout(10):
                while builder.mesh.revision < 1:
                    await asyncio.sleep(0.02)
            assert "orders" in builder.mesh.services
            assert not task.done()
            assert all(r.exc_info is None for r in caplog.records)
            unreachable = [r for r in caplog.records if "unreachable since" in r.message]
            assert len(unreachable) == 1
        finally:
            task.cancel()
            await other.close()
            await store.close()
