"""An in-process ADS server over a real SQLite store, for protocol tests with a real gRPC client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshplane.store import Store, open_store
from meshplane.store_bridge import StoreMeshSource, StoreRegistrar
from meshplane.xds import AdsServer, ProxyRegistry, ResourceCache, SnapshotBuilder
from meshplane.xds.server import start_xds_server


@dataclass
class XdsPlane:
    store: Store
    registry: ProxyRegistry
    builder: SnapshotBuilder
    port: int


@pytest.fixture
async def xds(tmp_path: Path) -> AsyncIterator[XdsPlane]:
    store = await open_store(f"sqlite:///{tmp_path / 'mesh.db'}")
    cache = ResourceCache()
    builder = SnapshotBuilder(StoreMeshSource(store), cache)
    await builder.load()
    registry = ProxyRegistry(StoreRegistrar(store, "test-replica"), grace_seconds=0.2)
    server, port = await start_xds_server(AdsServer(builder, cache, registry), "127.0.0.1", 0)
    task = asyncio.create_task(builder.run())
    try:
        yield XdsPlane(store, registry, builder, port)
    finally:
        task.cancel()
        await server.stop(0)
        await registry.aclose()
        await store.close()
