"""GET /metrics (Prometheus text format) and the middleware that counts API requests."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from meshplane.metrics import Metrics

__all__ = ["install_metrics", "router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=True, response_class=Response)
async def metrics(request: Request) -> Response:
    """Control-plane metrics in Prometheus' text format (404 when metrics are off)."""
    registry: Metrics | None = request.app.state.metrics
    if registry is None:
        return Response("metrics are not enabled\n", status_code=404, media_type="text/plain")
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Count every request by method, route template (not raw path: bounded labels) and status."""

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.api_requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.api_seconds.labels(request.method, template).observe(time.perf_counter() - started)
        return response
