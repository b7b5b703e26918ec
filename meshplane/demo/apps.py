"""The demo's application: says who answered and the chain of calls behind the answer.

`frontend` calls `orders`, which calls `payments`, each through its own sidecar's outbound
port with `Host: <service>`; the response carries every hop's service and version and the
identity its caller proved over mTLS (from the sidecar's x-forwarded-client-cert header).
Keep-alive and TCP_NODELAY, like every backend we measure through Envoy (see DESIGN.md).
Run one with `python -m meshplane.demo.apps --service orders --version v1 --port 8201 ...`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DemoApp", "main"]

_URI = re.compile(r"URI=([^;,]+)")
# Forwarded on the downstream call, so one trace (and request id) spans the whole chain.
_PROPAGATED = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "traceparent",
    "tracestate",
)


class DemoApp:
    """`service` version `version` on host:port; calls `calls` through 127.0.0.1:`outbound`."""

    def __init__(
        self,
        service: str,
        version: str,
        port: int = 0,
        *,
        calls: str | None = None,
        outbound: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.service = service
        self.version = version
        self.calls = calls
        self.outbound = outbound
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                status, body = app.answer(
                    self.path,
                    self.headers.get("x-forwarded-client-cert"),
                    {h: v for h in _PROPAGATED if (v := self.headers.get(h)) is not None},
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(
        self, path: str, client_cert: str | None, propagate: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        caller = _URI.search(client_cert or "")
        me = {
            "service": self.service,
            "version": self.version,
            "caller": caller.group(1) if caller else None,
        }
        if self.calls is None or self.outbound is None:
            return 200, {"chain": [me]}
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.outbound, timeout=5)
            connection.request("GET", path, headers={**(propagate or {}), "host": self.calls})
            response = connection.getresponse()
            downstream = json.loads(response.read() or b"{}")
            connection.close()
        except (OSError, ValueError) as exc:
            return 502, {"chain": [me], "error": f"calling {self.calls}: {exc}"}
        if response.status != 200:
            return response.status, {"chain": [me], "error": f"{self.calls}: {downstream}"}
        return 200, {"chain": [me, *downstream.get("chain", [])]}

    def start(self) -> DemoApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self._server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="A meshplane demo service.")
    parser.add_argument("--service", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--calls", help="service to call on each request")
    parser.add_argument("--outbound", type=int, help="this instance's sidecar outbound port")
    args = parser.parse_args()
    app = DemoApp(
        args.service,
        args.version,
        args.port,
        calls=args.calls,
        outbound=args.outbound,
        host=args.host,
    )
    app.serve_forever()


if __name__ == "__main__":
    main()
