"""Real HTTP/1.1 backends on 127.0.0.1 that say who answered, for traffic through Envoy.

Per DESIGN.md "Measurement hygiene" they keep connections alive and set TCP_NODELAY: without both,
delayed ACKs add ~40 ms to every response and swamp any latency a test measures.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["HttpBackend"]

_SHUTDOWN_POLL = 0.02  # seconds; how quickly stop() returns
_JOIN_TIMEOUT = 5.0


class _Server(ThreadingHTTPServer):
    """Tracks open connections so stop() can close keep-alive sockets Envoy still holds."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, backend: HttpBackend) -> None:
        self.backend = backend
        self.connections: set[socket.socket] = set()
        self.handler_threads: set[threading.Thread] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.handler_threads.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.connections.discard(request)
                self.handler_threads.discard(threading.current_thread())

    def close_connections(self) -> None:
        with self.lock:
            connections = list(self.connections)
            threads = list(self.handler_threads)
        for connection in connections:
            with contextlib.suppress(OSError):  # the peer closed it first
                connection.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        backend = self.server.backend
        status = backend._record(self.path)
        if backend.delay_seconds > 0:
            backend._stopping.wait(backend.delay_seconds)
        body = json.dumps(
            {
                "backend": backend.name,
                "path": self.path,
                "host": self.headers.get("host"),
                "method": self.command,
                "headers": {key.lower(): value for key, value in self.headers.items()},
            }
        ).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-backend", backend.name)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest captures output, and a line per request is noise."""


class HttpBackend:
    """An HTTP/1.1 server answering every request with JSON describing it and `x-backend: NAME`.

    Use as a context manager (sync; fine inside async tests: starting and stopping are quick).
    `requests` counts requests answered; `fail_next(n, status)` makes the next n answers fail;
    `delay_seconds` delays each answer (the delay ends early when the backend stops).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.delay_seconds = 0.0
        self.seen: Counter[str] = Counter()  # requests by path
        self._lock = threading.Lock()
        self._requests = 0
        self._failures: list[int] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"backend {self.name} is not started")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next `n` requests with `status` instead of 200."""
        with self._lock:
            self._failures.extend([status] * n)

    def reset(self) -> None:
        """Forget counts and pending failures."""
        with self._lock:
            self._requests = 0
            self._failures.clear()
            self.seen.clear()

    def start(self) -> HttpBackend:
        if self._server is not None:
            raise RuntimeError(f"backend {self.name} is already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL},
            name=f"backend-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and join the threads (bounded)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(_JOIN_TIMEOUT)
        self._server = self._thread = None

    def __enter__(self) -> HttpBackend:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, path: str) -> int:
        """Count one request and return the status to answer it with."""
        with self._lock:
            self._requests += 1
            self.seen[path] += 1
            return self._failures.pop(0) if self._failures else 200
