"""Refuse a request body over a size limit with 413, before it is read whole.

A body is read into memory whole by the handlers (JSON), so without a bound one 200 MB request
grows the process by several times that, and Python keeps the memory afterwards. The limit is
checked twice, both before the handler holds the body: against `Content-Length` when the client
sends one (nothing is read), and while the body streams in (chunked uploads and a
`Content-Length` that lies), in which case reading stops at the limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "too_large"]

_STATUS = 413


def too_large(limit: int) -> str:
    """The sentence a 413 answers with."""
    return f"the request body is larger than {limit} bytes (MESHPLANE_MAX_BODY_BYTES)"


class BodyLimit:
    """ASGI middleware: bodies over `limit_for(path)` bytes are a 413 `{"detail": ...}`."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self._app = app
        self._limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        await self._app(scope, _counting(receive, limit), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    """Wrap `receive` so that the body chunk that passes `limit` raises a 413 instead.

    FastAPI reads the body inside its request handling, where an HTTPException becomes the
    answer through the app's exception handlers, so the 413 has the one error shape.
    """
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(_STATUS, too_large(limit))
        return message

    return receive_within_limit


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large(limit)}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": _STATUS, "headers": headers})
    await send({"type": "http.response.body", "body": body})
