"""An ASGI app served over real HTTP by meshplane's ApiServer, for tests that need a socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from meshplane.api.http_server import ApiServer

__all__ = ["served", "start"]


async def start(server: uvicorn.Server) -> tuple[socket.socket, asyncio.Task[None]]:
    """Start `server` on a loopback socket of its own and wait until it serves; the caller
    stops it (should_exit, then awaits the task) and closes the socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
    except BaseException:
        task.cancel()
        sock.close()
        raise
    return sock, task


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """Serve `app` on a loopback port of its own until the block ends; yields the port."""
    server = ApiServer(uvicorn.Config(app, log_config=None, lifespan="off"))
    sock, task = await start(server)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()
