"""Telemetry the mesh configures on real Envoys: traces across sidecars, JSON access logs,
and a Prometheus scrape port per sidecar."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.identity_mesh import sidecars
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port, free_ports

pytestmark = pytest.mark.e2e


class ZipkinCollector:
    """Accepts Zipkin v2 JSON spans on /api/v2/spans, like Jaeger's or Zipkin's collector."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                collector.spans.extend(json.loads(self._body() or b"[]"))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def _body(self) -> bytes:
                if "chunked" not in self.headers.get("transfer-encoding", ""):
                    return self.rfile.read(int(self.headers.get("content-length", 0)))
                body = b""
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def zipkin() -> Iterator[ZipkinCollector]:
    collector = ZipkinCollector()
    collector.thread.start()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


async def test_traces_logs_and_stats(tmp_path: Path, zipkin: ZipkinCollector) -> None:
    stats_a, stats_b = free_ports(2)
    async with sidecars(tmp_path) as mesh:
        telemetry = {
            "tracing": {"provider": "zipkin", "collector": zipkin.address, "sampling": 100},
            "services": {"a": {"prometheus_port": stats_a}, "b": {"prometheus_port": stats_b}},
        }
        await mesh.mesh.put("meshes", "default", {"telemetry": telemetry})
        gateway_port = free_port()
        await mesh.mesh.put("gateways", "edge", {"port": gateway_port, "address": "127.0.0.1"})
        await mesh.mesh.put(
            "routes", "to-b", {"gateways": ["edge"], "destinations": [{"service": "b"}]}
        )
        boot = await mesh.mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())

        async with httpx.AsyncClient(trust_env=False, timeout=5) as http, EnvoyProcess(boot):
            # Scrape ports come up with the new config; then traffic is traced.
            async with asyncio.timeout(15):
                while True:
                    try:
                        scrape = await http.get(f"http://127.0.0.1:{stats_b}/stats/prometheus")
                        if scrape.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
            assert "envoy_cluster_upstream_rq" in scrape.text
            not_stats = await http.get(f"http://127.0.0.1:{stats_b}/clusters")
            assert not_stats.status_code == 404  # only the stats, not the whole admin API

            async with asyncio.timeout(20):
                while True:
                    for _ in range(10):  # Envoy flushes spans in batches of 5
                        await http.get(mesh.a_to_b, headers={"host": "b"})
                        await http.get(f"http://127.0.0.1:{gateway_port}/")
                    by_trace: dict[str, set[str]] = {}
                    for span in zipkin.spans:
                        service = span.get("localEndpoint", {}).get("serviceName", "")
                        by_trace.setdefault(span["traceId"], set()).add(service)
                    # One trace id across each call's hops: sidecar a -> sidecar b, and
                    # gateway -> sidecar b.
                    traces = by_trace.values()
                    if any({"a", "b"} <= s for s in traces) and any(
                        {"edge", "b"} <= s for s in traces
                    ):
                        break
                    await asyncio.sleep(0.2)

        # Envoy flushes access logs about once a second: wait for the traced lines.
        callers: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(10):
            while len(callers) < 2:
                lines = mesh.envoy_b.access_log_lines()
                callers = {line["caller"]: line for line in lines if line.get("trace_id")}
                await asyncio.sleep(0.1)
        from_a = callers["spiffe://meshplane.local/service/a"]
        assert from_a["status"] == 200
        assert from_a["path"] == "/"
        assert "spiffe://meshplane.local/gateway/edge" in callers
