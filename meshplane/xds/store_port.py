"""The narrow view of the store that the xDS side needs (a Protocol, so tests can fake it)."""

from __future__ import annotations

from typing import Protocol

from meshplane.model import Change, EndpointSpec, Mesh, ServiceSpec

__all__ = ["EndpointRegistrar", "MeshSource"]


class MeshSource(Protocol):
    """Where the builder reads the mesh and learns of new commits."""

    async def load_mesh(self) -> Mesh: ...

    async def changes_since(self, revision: int) -> list[Change] | None: ...

    async def wait_beyond(self, revision: int) -> int: ...


class EndpointRegistrar(Protocol):
    """What sidecar auto-registration writes through."""

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        """Create or refresh an auto endpoint (and its service if missing); False if an
        API-managed endpoint of that name exists (left alone)."""
        ...

    async def deregister(self, name: str) -> None:
        """Delete the endpoint if it is still auto-registered."""
        ...
