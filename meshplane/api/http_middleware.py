"""The base of the API's own ASGI middleware: act on HTTP requests, pass everything else on.

Plain ASGI rather than Starlette's BaseHTTPMiddleware (`@app.middleware("http")`), which runs
every request through an extra task and memory stream: that costs more than the checks and
counts these middlewares make.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HttpMiddleware"]


class HttpMiddleware:
    """ASGI middleware whose `http` sees each HTTP request; lifespan and WebSocket messages go
    straight to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request, calling `self._app` to let it through."""
        raise NotImplementedError
