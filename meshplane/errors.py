"""The errors meshplane raises on purpose, and how each edge maps them.

    MeshplaneError                 root; never raised itself
    ├── NotFound                   HTTP 404   a named resource does not exist
    ├── Conflict                   HTTP 409   the write would break a reference or an invariant
    ├── PreconditionFailed         HTTP 412   If-Match carried a stale version; nothing changed
    ├── InvalidMesh                HTTP 422   rejected before commit (unknown reference, bad field)
    ├── InvalidRequest             HTTP 422   a request field the API cannot use (loc names it)
    └── Unauthenticated            gRPC UNAUTHENTICATED / HTTP 401

The store turns driver errors into these; the API maps them to HTTP statuses in one handler; the
xDS server maps them to gRPC status codes.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "InvalidMesh",
    "InvalidRequest",
    "MeshplaneError",
    "NotFound",
    "PreconditionFailed",
    "Unauthenticated",
    "excerpt",
]


class MeshplaneError(Exception):
    """Root of all meshplane errors."""


class NotFound(MeshplaneError):
    """A named resource does not exist."""


class Conflict(MeshplaneError):
    """The write would leave a dangling reference or break an invariant."""


class PreconditionFailed(MeshplaneError):
    """The caller's If-Match version is not the stored one."""


class InvalidMesh(MeshplaneError):
    """The spec is well-formed but refers to something that does not exist (or similar).

    `field` is the dotted path of the offending field inside the spec, when known.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidRequest(MeshplaneError):
    """A request's field is well-formed but cannot be used (a root without a CA flag, ...).

    `loc` is the field's place in the request, as FastAPI's validation errors name it, e.g.
    ("body", "certificate"); the answer is a 422 shaped like every other 422.
    """

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class Unauthenticated(MeshplaneError):
    """A caller could not prove who it is."""


EXCERPT_CHARS = 80


def excerpt(text: str) -> str:
    """The start of `text` for an error message: answers never echo more of the input."""
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
