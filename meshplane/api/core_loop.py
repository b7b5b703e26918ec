"""The control plane's own event loop, as the API reaches it.

`meshplane serve` runs the API on a thread and event loop of its own (http_server.ApiThread), so
that work on the control plane's loop, such as pushing thousands of clusters to each xDS stream
after a full rebuild, never holds up an API answer. What lives on that loop (the table of
connected proxies, the certificate authority) is touched only from there: routes reach it through
`CoreLoop`, which runs their call on that loop and awaits the answer. The database is not among
it: the store is safe to use from either loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["CoreLoop"]

T = TypeVar("T")


class CoreLoop:
    """Runs work on the control plane's loop; None (an API on that loop itself, as in tests
    that serve the app directly) runs it in place."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Await `work()` on the control plane's loop."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await work()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_run(work), loop))

    async def call(self, work: Callable[[], T]) -> T:
        """Call `work()` on the control plane's loop."""

        async def now() -> T:
            return work()

        return await self.run(now)


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
