"""The uvicorn server that runs the REST API inside the control plane's process, on a thread and
event loop of its own (`ApiThread`; see api/core_loop.py for what it reaches on the control
plane's loop).

Two departures from `uvicorn.Server`, both because the API shares its process with the xDS
server:
- no signal handling of its own: the control plane stops all its parts together;
- housekeeping once a second instead of ten times. uvicorn wakes the loop every 100 ms to refresh
  its Date header (which it changes once a second anyway) and to poll `should_exit`. An idle
  control plane then spent most of its CPU on those wake-ups; here `should_exit` is an event, so
  a stop is still seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import uvicorn

__all__ = ["ApiServer", "ApiThread"]

_TICK_SECONDS = 1.0
_TICKS_PER_SECOND = 10  # what uvicorn's on_tick counts in: its "once a second" is every 10th


class ApiServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + _TICKS_PER_SECOND) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_TICK_SECONDS):
                    await self._exit.wait()


class ApiThread:
    """`server` on a thread and event loop of its own. The control plane's loop pushes xDS
    responses of thousands of resources to each stream after a full rebuild: on one loop, an
    API request waited for all of them. Apart, the two share only the interpreter lock, which
    changes hands every `SWITCH_INTERVAL_S` (serve.py)."""

    def __init__(self, server: ApiServer, sockets: list[socket.socket]) -> None:
        self.server = server
        self._sockets = sockets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="meshplane-api", daemon=True)
        self._finished: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Start serving; `wait` (on the calling loop) returns when the server stops."""
        self._finished = asyncio.get_running_loop().create_future()
        self._thread.start()

    async def wait(self) -> None:
        """Return when the server stopped; raise what stopped it, if anything did."""
        assert self._finished is not None
        await asyncio.shield(self._finished)

    def stop(self) -> None:
        """Ask the server to stop (from any thread); `wait` tells when it did."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed: it stopped
                loop.call_soon_threadsafe(setattr, self.server, "should_exit", True)

    def _main(self) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to `wait`, on the other loop
            error = exc
        finished = self._finished
        assert finished is not None
        with contextlib.suppress(RuntimeError):  # the control plane's loop closed first
            finished.get_loop().call_soon_threadsafe(_settle, finished, error)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.server.serve(sockets=self._sockets)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
