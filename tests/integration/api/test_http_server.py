"""ApiServer: uvicorn with one housekeeping wake-up a second and an immediate stop."""

from __future__ import annotations

import asyncio
import time

import httpx
import uvicorn

from meshplane.api.http_server import ApiServer
from tests.support.api_server import start


async def _app(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


class _CountingServer(ApiServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


async def test_serves_with_a_date_ticks_once_a_second_and_stops_at_once() -> None:
    server = _CountingServer(uvicorn.Config(_app, log_config=None, lifespan="off"))
    sock, task = await start(server)
    port = sock.getsockname()[1]
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "ok"
        assert response.headers["date"].endswith(" GMT")

        ticks = server.ticks
        await asyncio.sleep(1.5)
        assert server.ticks - ticks <= 2  # uvicorn's own loop would have ticked 15 times

        started = time.monotonic()
        server.should_exit = True
        async with asyncio.timeout(5):
            await task
        assert time.monotonic() - started < 0.9  # the stop does not wait for the next tick (1 s)
    finally:
        task.cancel()
        sock.close()
