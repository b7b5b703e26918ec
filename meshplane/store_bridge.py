"""Where the xDS side meets the store: the builder's mesh source, auto-registration writes and
node tokens.

The xDS package only knows the narrow protocols in xds/store_port.py; these adapters implement
them over a Store, so neither package imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from meshplane.errors import Conflict, NotFound, PreconditionFailed
from meshplane.model import Change, EndpointSpec, Mesh, ServiceSpec
from meshplane.store import ApiToken, EndpointHolders, Store, TokenRepo, hash_token

__all__ = ["StoreMeshSource", "StoreNodeTokens", "StoreRegistrar"]

log = logging.getLogger(__name__)


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
    """Auto-registration writes: never overwrites or deletes what the API manages, and removes
    an endpoint only while this replica (`replica_id`) holds its sidecar (store/holders.py)."""

    def __init__(self, store: Store, replica_id: str) -> None:
        self._store = store
        self._holders = EndpointHolders(store.database)
        self._replica_id = replica_id

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        try:
            existing = await self._store.get("endpoints", name)
        except NotFound:
            existing = None
        if existing is not None and existing.source != "auto":
            return False
        # Held before written: a replica the sidecar left no longer removes it from now on.
        await self._holders.hold(name, self._replica_id, datetime.now(UTC))
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
                    "endpoints",
                    name,
                    if_match=existing.version,
                    source="auto",
                    held_by=self._replica_id,
                )
        except (NotFound, PreconditionFailed):
            pass  # gone already, taken over through the API, or its sidecar moved

    async def remove_orphans(self, grace: float) -> None:
        """The leader's job: remove the endpoints whose replica died more than `grace` seconds
        ago and whose sidecar came back through no other replica since."""
        for name, replica in await self._holders.orphans(datetime.now(UTC), grace):
            try:
                existing = await self._store.get("endpoints", name)
                if existing.source == "auto":
                    await self._store.delete(
                        "endpoints", name, if_match=existing.version, source="auto", held_by=replica
                    )
                    log.info("removed the endpoint of a dead replica's sidecar name=%s", name)
                else:
                    await self._holders.forget(name, replica)
            except NotFound:
                await self._holders.forget(name, replica)
            except (PreconditionFailed, Conflict):
                pass  # held again meanwhile, or referred to: looked at again next time


class StoreNodeTokens:
    """Node tokens for the xDS side: looked up by their hash; revocations by time."""

    def __init__(self, tokens: TokenRepo) -> None:
        self._tokens = tokens

    def token_hash(self, token: str) -> str:
        return hash_token(token)

    async def node_token(self, token_hash: str) -> ApiToken | None:
        return await self._tokens.node_token(token_hash)

    async def issued_since(self, since: datetime | None) -> Sequence[ApiToken]:
        return await self._tokens.issued_since(since, now=datetime.now(UTC))

    async def revoked_since(self, since: datetime) -> Sequence[str]:
        return await self._tokens.revoked_since(since)
