"""The uvicorn server that runs the REST API inside the control plane's event loop.

Two departures from `uvicorn.Server`, both because the API shares its process and loop with the
xDS server:
- no signal handling of its own: the control plane stops all its parts together;
- housekeeping once a second instead of ten times. uvicorn wakes the loop every 100 ms to refresh
  its Date header (which it changes once a second anyway) and to poll `should_exit`. An idle
  control plane then spent most of its CPU on those wake-ups; here `should_exit` is an event, so
  a stop is still seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

__all__ = ["ApiServer"]

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
