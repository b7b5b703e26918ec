"""Declare on every operation the error answers it can give, each in its one documented shape.

FastAPI documents what a route states itself (its success model, its `responses=`) and a 422 for
a route with parameters. The answers a route gives because of what it depends on are derived
here, from the route, so no route repeats them: the browser guard refuses a foreign Host or Origin
and a write that is not JSON (400, 403, 415), a body can be too large (413), and each dependency
in `deps.ANSWERS` adds its own (503 from the store or a missing CA, 412 from If-Match).
Answers particular to one route (404, 409) stay declared on that route.

Every error answer is `ErrorOut` ({"detail": "a sentence"}) except 422, which is FastAPI's
HTTPValidationError ({"detail": [{"loc", "msg", "type"}]}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from meshplane.api import browser_guard
from meshplane.api.deps import ANSWERS
from meshplane.api.schemas import ErrorOut

__all__ = ["ERROR_SCHEMA", "VALIDATION_SCHEMA", "include_routers"]

ERROR_SCHEMA = "#/components/schemas/ErrorOut"
VALIDATION_SCHEMA = "#/components/schemas/HTTPValidationError"
_TOO_LARGE = "The body is larger than this server accepts; nothing changed."


def include_routers(app: FastAPI, routers: Iterable[tuple[APIRouter, str]]) -> None:
    """Include each (router, prefix) in `app`, and make `app.openapi()` declare the error
    answers derived from their routes."""
    derived: dict[tuple[str, str], dict[int, str]] = {}
    for router, prefix in routers:
        app.include_router(router, prefix=prefix)
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods or ():
                    derived[(prefix + route.path_format, method.lower())] = _answers(route, method)
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        document = plain()
        _declare(document, derived)  # idempotent, and cheap enough for a rarely read document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _declare(document: dict[str, Any], derived: dict[tuple[str, str], dict[int, str]]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    for (path, method), answers in derived.items():
        responses = document["paths"][path][method]["responses"]
        for status, description in sorted(answers.items()):
            responses.setdefault(str(status), _error(status, description))


def _answers(route: APIRoute, method: str) -> dict[int, str]:
    """The error answers `route` can give to `method` through the browser guard, its body and
    its dependencies."""
    answers = {status: [text] for status, text in browser_guard.answers(method).items()}
    if route.body_field is not None:
        answers.setdefault(413, []).append(_TOO_LARGE)
    for call in _calls(route.dependant):
        for status, description in ANSWERS.get(call, {}).items():
            if description not in answers.setdefault(status, []):
                answers[status].append(description)
    return {status: " Or: ".join(texts) for status, texts in answers.items()}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _error(status: int, description: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
    }
    if status == 503:
        answer["headers"] = {"Retry-After": _RETRY_AFTER}
    return answer


_RETRY_AFTER = {
    "description": "With a 503 for an unreachable database: seconds to wait before trying again.",
    "schema": {"type": "integer"},
}
