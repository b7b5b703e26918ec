"""The narrow view of the store that the xDS side needs (a Protocol, so tests can fake it), and
how the xDS side waits out the store being unreachable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from meshplane.errors import Unavailable
from meshplane.model import Change, EndpointSpec, Mesh, ServiceSpec

__all__ = ["EdgeKeySource", "EndpointRegistrar", "MeshSource", "when_reachable"]

T = TypeVar("T")

# Seconds between attempts while the store is unreachable: doubling up to the cap, so a long
# outage costs a connection attempt every few seconds and recovery is noticed within as many.
_RETRY_FIRST_SECONDS = 0.1
_RETRY_MAX_SECONDS = 2.0


async def when_reachable(
    call: Callable[[], Awaitable[T]],
    *,
    wanted: Callable[[], bool] = lambda: True,
    stop: asyncio.Event | None = None,
) -> T | None:
    """`call()`, tried again (backing off) while the store raises Unavailable, for as long as
    `wanted()` holds and `stop` is not set; None if it gave up.

    Logs nothing: the store reports each outage once. A failed attempt must have changed
    nothing, so that trying again is safe.
    """
    stop = stop or asyncio.Event()
    delay = _RETRY_FIRST_SECONDS
    while True:
        try:
            return await call()
        except Unavailable:
            if not wanted() or stop.is_set():
                return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, _RETRY_MAX_SECONDS)


class MeshSource(Protocol):
    """Where the builder reads the mesh and learns of new commits."""

    async def load_mesh(self) -> Mesh: ...

    async def changes_since(self, revision: int) -> list[Change] | None: ...

    async def wait_beyond(self, revision: int) -> int: ...


class EdgeKeySource(Protocol):
    """Where the builder reads the private keys of the edge certificates its gateways present."""

    async def __call__(self, fingerprints: Iterable[str]) -> dict[str, bytes]: ...


class EndpointRegistrar(Protocol):
    """What sidecar auto-registration writes through."""

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        """Create or refresh an auto endpoint (and its service if missing); False if an
        API-managed endpoint of that name exists (left alone)."""
        ...

    async def deregister(self, name: str) -> None:
        """Delete the endpoint if it is still auto-registered."""
        ...
