"""Where the xDS side meets the store: the builder's mesh source and auto-registration writes.

The xDS package only knows the narrow protocols in xds/store_port.py; these adapters implement
them over a Store, so neither package imports the other.
"""

from __future__ import annotations

from meshplane.errors import NotFound, PreconditionFailed
from meshplane.model import Change, EndpointSpec, Mesh, ServiceSpec
from meshplane.store import Store

__all__ = ["StoreMeshSource", "StoreRegistrar"]


class StoreMeshSource:
    """The builder's view of the store: full loads, the change log, and the feed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def load_mesh(self) -> Mesh:
        return await self._store.load_mesh()

    async def changes_since(self, revision: int) -> list[Change] | None:
        return await self._store.changes_since(revision)

    async def wait_beyond(self, revision: int) -> int:
        return await self._store.feed.wait_beyond(revision)


class StoreRegistrar:
    """Auto-registration writes: never overwrites or deletes what the API manages."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        try:
            existing = await self._store.get("endpoints", name)
        except NotFound:
            existing = None
        if existing is not None and existing.source != "auto":
            return False
        try:
            await self._store.get("services", spec.service)
        except NotFound:
            await self._store.put("services", spec.service, service, source="auto")
        await self._store.put("endpoints", name, spec, source="auto")
        return True

    async def deregister(self, name: str) -> None:
        try:
            existing = await self._store.get("endpoints", name)
            if existing.source == "auto":
                await self._store.delete(
                    "endpoints", name, if_match=existing.version, source="auto"
                )
        except (NotFound, PreconditionFailed):
            pass  # gone already, or taken over through the API meanwhile
