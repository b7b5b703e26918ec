"""Map meshplane's errors to HTTP, in one place.

NotFound 404, Conflict 409, PreconditionFailed 412, Unauthenticated 401: `{"detail": message}`.
InvalidMesh and InvalidRequest 422 are shaped like FastAPI's own validation errors, with `loc`
naming the field (InvalidMesh: inside the body's spec), so a client handles every 422 alike.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from meshplane.errors import (
    Conflict,
    InvalidMesh,
    InvalidRequest,
    MeshplaneError,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
)

__all__ = ["field_loc", "install_error_handlers"]

_STATUS: dict[type[MeshplaneError], int] = {
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    Unauthenticated: 401,
}
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(field: str | None) -> list[str | int]:
    """Split a spec field path into FastAPI's loc parts: "a[0].b" -> ["a", 0, "b"]."""
    if not field:
        return []
    return [name if name else int(index) for name, index in _PART.findall(field)]


async def _plain(request: Request, exc: Exception) -> Response:
    status = next(code for cls, code in _STATUS.items() if isinstance(exc, cls))
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _invalid_mesh(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidMesh)
    error = {
        "loc": ["body", "spec", *field_loc(exc.field)],
        "msg": str(exc),
        "type": "invalid_reference" if exc.field else "invalid_mesh",
    }
    return JSONResponse({"detail": [error]}, status_code=422)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequest)
    error = {"loc": list(exc.loc), "msg": str(exc), "type": "invalid_request"}
    return JSONResponse({"detail": [error]}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    for cls in _STATUS:
        app.add_exception_handler(cls, _plain)
    app.add_exception_handler(InvalidMesh, _invalid_mesh)
    app.add_exception_handler(InvalidRequest, _invalid_request)
