"""A real TCP echo backend on 127.0.0.1 that says who answered, and a client for it.

Each chunk it reads comes back prefixed with its name and "|" (`b"v1|hello"`), so a test through
Envoy's tcp_proxy can tell which backend (subset) a connection reached. TCP_NODELAY on both
sides, per DESIGN.md "Measurement hygiene".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable

__all__ = ["EchoBackend", "echo_once", "wait_echoed"]

_POLL_INTERVAL = 0.05


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.backend.connections += 1
        while data := sock.recv(65536):
            sock.sendall(self.server.backend.name.encode() + b"|" + data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, backend: EchoBackend) -> None:
        self.backend = backend
        super().__init__(("127.0.0.1", 0), _Handler)


class EchoBackend:
    """An echo server named `name`; `connections` counts the connections it accepted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections = 0
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,))

    @property
    def address(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> EchoBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


async def echo_once(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> bytes:
    """Send `payload` on a new connection to 127.0.0.1:`port` and return what comes back: the
    echo (`b"<backend>|<payload>"`), or what arrived before the peer closed (b"" for a
    connection closed without an answer). Raises OSError when the connection is refused."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(payload)
        await writer.drain()
        received = b""
        async with asyncio.timeout(timeout):
            while not received.endswith(b"|" + payload):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
        return received
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def wait_echoed(
    port: int, predicate: Callable[[bytes], bool], timeout: float = 15.0
) -> bytes:
    """Poll `port` with `echo_once` until an answer satisfies `predicate` and return it.
    Refused or reset connections count as "not yet"; TimeoutError names the last answer."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            answer = await echo_once(port, timeout=max(0.5, deadline - time.monotonic()))
        except (OSError, TimeoutError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if predicate(answer):
                return answer
            last = repr(answer)
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"port {port} not answered as expected in {timeout:g}s; last: {last}"
            )
        await asyncio.sleep(_POLL_INTERVAL)
