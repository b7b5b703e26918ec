"""Where the xDS side meets the store: the builder's mesh source, auto-registration writes and
node tokens.

The xDS package only knows the narrow protocols in xds/store_port.py; these adapters implement
them over a Store, so neither package imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from meshplane.errors import NotFound, PreconditionFailed
from meshplane.model import Change, EndpointSpec, Mesh, ServiceSpec
from meshplane.store import ApiToken, Store, TokenRepo, hash_token

__all__ = ["StoreMeshSource", "StoreNodeTokens", "StoreRegistrar"]


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
