"""GET /metrics (Prometheus text format) and the middleware that counts API requests."""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshplane.api.core_loop import CoreLoop
from meshplane.api.http_middleware import HttpMiddleware
from meshplane.api.schemas import ErrorOut
from meshplane.errors import NotFound, Unauthenticated
from meshplane.metrics import Metrics

__all__ = ["install_metrics", "router"]

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus' text exposition format",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        },
        401: {
            "model": ErrorOut,
            "description": "MESHPLANE_METRICS_TOKEN is set and the request does not carry it",
        },
        404: {"model": ErrorOut, "description": "Metrics are off"},
    },
)
async def metrics(request: Request) -> Response:
    """Control-plane metrics in Prometheus' text format (404 when metrics are off). Open unless
    the server has a metrics token (MESHPLANE_METRICS_TOKEN): then send it as a bearer token;
    it is its own credential, no API token."""
    expected = request.app.state.settings.metrics_token
    if expected is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthenticated("GET /metrics needs the metrics token as a bearer token")
    registry: Metrics | None = request.app.state.metrics
    if registry is None:
        raise NotFound("metrics are not enabled on this control plane")
    # Rendered where its gauges' owners live (the proxy table, the cache, the CA).
    core: CoreLoop = request.app.state.core
    return Response(await core.call(registry.render), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Count every request by method, route template (not raw path: bounded labels) and status."""
    app.add_middleware(_RequestMetrics, metrics=metrics)


class _RequestMetrics(HttpMiddleware):
    """ASGI middleware: count each request and its time, once the app has answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self._metrics = metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            # The router puts the matched route into the scope it was given.
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self._metrics.api_requests.labels(method, template, str(status)).inc()
            elapsed = time.perf_counter() - started
            self._metrics.api_seconds.labels(method, template).observe(elapsed)
