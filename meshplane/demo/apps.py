"""The demo's application: a tiny HTTP service that says who and which version answered.

Keep-alive and TCP_NODELAY, like every backend we measure through Envoy (see DESIGN.md).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["DemoApp"]


class DemoApp:
    """`service` version `version` on 127.0.0.1:port (0 picks one); a thread serves it."""

    def __init__(self, service: str, version: str, port: int = 0) -> None:
        self.service = service
        self.version = version
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                body = json.dumps(
                    {"service": app.service, "version": app.version, "path": self.path}
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> DemoApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
