"""Map meshplane's errors to HTTP, in one place.

NotFound 404, Conflict 409, PreconditionFailed 412, Unauthenticated 401, Unavailable 503:
`{"detail": message}`. A 503 carries `Retry-After` (seconds). Which operations can give which
answer is documented in OpenAPI by `api/openapi.py`, derived from each route's dependencies.
InvalidMesh and InvalidRequest 422 are shaped like FastAPI's own validation errors, with `loc`
naming the field (InvalidMesh: inside the body's spec; for a batch's document, inside that
document's spec, with `ctx` naming its index, kind and name), so a client handles every 422 alike.
A validation error never echoes the request back: `input` is kept only as a short excerpt of a
scalar, and `msg` is cut short (a 20 MB body must not come back as a 20 MB answer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

from meshplane.errors import (
    EXCERPT_CHARS,
    Conflict,
    InvalidMesh,
    InvalidRequest,
    MeshplaneError,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
    Unavailable,
    excerpt,
)

__all__ = ["field_loc", "install_error_handlers", "validation_errors"]

# How long a client should wait before trying again after a 503 (the database unreachable).
_RETRY_AFTER_SECONDS = 5

_STATUS: dict[type[MeshplaneError], int] = {
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    Unauthenticated: 401,
    Unavailable: 503,
}
_HEADERS: dict[type[MeshplaneError], dict[str, str]] = {
    Unauthenticated: {"WWW-Authenticate": "Bearer"},
    Unavailable: {"Retry-After": str(_RETRY_AFTER_SECONDS)},
}
_MSG = 300
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(field: str | None) -> list[str | int]:
    """Split a spec field path into FastAPI's loc parts: "a[0].b" -> ["a", 0, "b"]."""
    if not field:
        return []
    return [name if name else int(index) for name, index in _PART.findall(field)]


async def _plain(request: Request, exc: Exception) -> Response:
    status = next(code for cls, code in _STATUS.items() if isinstance(exc, cls))
    headers = next((h for cls, h in _HEADERS.items() if isinstance(exc, cls)), None)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _invalid_mesh(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidMesh)
    error: dict[str, Any] = {
        "loc": ["body", "spec", *field_loc(exc.field)],
        "msg": str(exc),
        "type": "invalid_reference" if exc.field else "invalid_mesh",
    }
    if (document := exc.document) is not None:  # one of a batch's documents
        error["loc"] = ["body", "documents", document.index, *error["loc"][1:]]
        error["ctx"] = {"index": str(document.index), "kind": document.kind, "name": document.name}
    return JSONResponse({"detail": [error]}, status_code=422)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    error = {"loc": list(exc.loc), "msg": str(exc), "type": "invalid_request"}
    return JSONResponse({"detail": [error]}, status_code=422)


def _compact(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as the API answers it: loc, msg, type, its context (each value a
    short text) and a scalar input's excerpt."""
    out: dict[str, Any] = {
        "loc": [excerpt(p) if isinstance(p, str) else p for p in error["loc"]],
        "msg": excerpt(str(error["msg"]), _MSG),
        "type": error["type"],
    }
    context = error.get("ctx")
    if isinstance(context, dict) and context:
        out["ctx"] = {str(k): excerpt(str(v), _MSG) for k, v in context.items()}
    value = error.get("input")
    if isinstance(value, str):
        out["input"] = excerpt(value)
    elif isinstance(value, bool | int | float) and len(repr(value)) <= EXCERPT_CHARS:
        out["input"] = value
    return out


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors, compacted, in the order pydantic found them."""
    return [_compact(error) for error in errors]


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    for cls in _STATUS:
        app.add_exception_handler(cls, _plain)
    app.add_exception_handler(InvalidMesh, _invalid_mesh)
    app.add_exception_handler(InvalidRequest, _invalid_request)
    app.add_exception_handler(RequestValidationError, _request_validation)
