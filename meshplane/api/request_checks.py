"""Check every request once, in one ASGI middleware, before the app holds a byte of its body.

Three checks guard each request, each explained where its rules live:

- the browser guard (browser_guard.py): the Host (400), the Origin (403) and a write's
  Content-Type (415), from the headers alone;
- the size limit (413): a body is read into memory whole by the handlers (JSON), so without a
  bound one 200 MB request grows the process by several times that, and Python keeps the memory
  afterwards. It is checked against `Content-Length` when the client sends one (nothing is read),
  and while the body streams in (chunked uploads and a `Content-Length` that lies), in which case
  reading stops at the limit;
- JSON text (json_body.py): the body the app reads must be JSON as RFC 8259 defines it (422).

They run in that order, as one middleware: three would each wrap every request, and its
`receive`, again. A refusal from the headers is the one error shape, `{"detail": "a sentence"}`;
the body checks fail the app's own read of the body, so FastAPI answers them through the app's
exception handlers (413 as an HTTPException, 422 as a malformed body).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshplane.api.browser_guard import browser_refusal
from meshplane.api.http_middleware import HttpMiddleware
from meshplane.api.json_body import check_json_text
from meshplane.host_names import Host

__all__ = ["RequestChecks", "too_large"]

log = logging.getLogger(__name__)

_TOO_LARGE = 413


def too_large(limit: int) -> str:
    """The sentence a 413 answers with."""
    return f"the request body is larger than {limit} bytes (MESHPLANE_MAX_BODY_BYTES)"


class RequestChecks(HttpMiddleware):
    """ASGI middleware: the browser guard, then bodies over `limit_for(path)` bytes (413), then
    JSON text, as the module doc explains. `hosts` are the Hosts answered (None: any)."""

    def __init__(
        self, app: ASGIApp, *, hosts: frozenset[Host] | None, limit_for: Callable[[str], int]
    ) -> None:
        super().__init__(app)
        self._hosts = hosts
        self._limit_for = limit_for

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        limit = self._limit_for(scope["path"])
        refusal = browser_refusal(scope, headers, self._hosts)
        if refusal is None and _content_length(scope) > limit:
            refusal = _TOO_LARGE, too_large(limit)
        if refusal is None:
            await self._app(scope, _checked(receive, limit, headers.get("content-type")), send)
            return
        status, detail = refusal
        log.info("refused method=%s path=%.200s status=%d", scope["method"], scope["path"], status)
        # A body over the limit is never read, so the connection cannot carry another request.
        close = {"connection": "close"} if status == _TOO_LARGE else None
        await JSONResponse({"detail": detail}, status, headers=close)(scope, receive, send)


def _content_length(scope: Scope) -> int:
    """The declared body size; 0 when none is declared (the streamed count still applies)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


def _checked(receive: Receive, limit: int, content_type: str | None) -> Receive:
    """Wrap `receive`: the body chunk that passes `limit` raises a 413 HTTPException, and a
    whole body that is not JSON text raises json.JSONDecodeError (see json_body.py).

    FastAPI reads the body inside its request handling, where both become the answer through
    the app's exception handlers, so each has the API's error shape.
    """
    received = 0
    chunks: list[bytes] = []

    async def checked() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise HTTPException(_TOO_LARGE, too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                body = b"".join(chunks)
                chunks.clear()
                check_json_text(body, content_type)
        return message

    return checked
