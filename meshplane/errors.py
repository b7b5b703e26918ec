"""The errors meshplane raises on purpose, and how each edge maps them.

    MeshplaneError                 root; never raised itself
    ├── NotFound                   HTTP 404   a named resource does not exist
    ├── Conflict                   HTTP 409   the write would break a reference or an invariant
    ├── PreconditionFailed         HTTP 412   If-Match carried a stale version; nothing changed
    ├── InvalidMesh                HTTP 422   rejected before commit (unknown reference, bad field)
    ├── InvalidRequest             HTTP 422   a request field the API cannot use (loc names it)
    ├── Unauthenticated            gRPC UNAUTHENTICATED / HTTP 401
    └── Unavailable                HTTP 503   the database is unreachable; try again later

The store turns driver errors into these; the API maps them to HTTP statuses in one handler; the
xDS server maps them to gRPC status codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

__all__ = [
    "Conflict",
    "DocumentRef",
    "InvalidMesh",
    "InvalidRequest",
    "MeshplaneError",
    "NotFound",
    "PreconditionFailed",
    "Unauthenticated",
    "Unavailable",
    "excerpt",
]


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """Which document of a batch an error is about: its index (from 0), kind (plural), name."""

    index: int
    kind: str
    name: str


class MeshplaneError(Exception):
    """Root of all meshplane errors. `document` says which document of a batch it is about."""

    document: DocumentRef | None = None

    def about(self, document: DocumentRef) -> Self:
        """This error, said of `document` of a batch: the message starts by naming it."""
        self.document = document
        self.args = (f"document {document.index} ({document.kind}/{document.name}): {self}",)
        return self


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


class Unavailable(MeshplaneError):
    """The database cannot be reached (down, restarting, refusing connections). Transient: the
    same call may succeed later.

    A write stays whole: its transaction committed entirely or not at all (only a connection
    lost during COMMIT itself leaves which one unknown until the database answers again). The
    message never carries the driver's text, which may name hosts or credentials.
    """


EXCERPT_CHARS = 80


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of `text` for an error message: answers never echo more of the input. Always
    encodable as UTF-8 (a lone surrogate, which JSON can carry, is escaped)."""
    short = text if len(text) <= limit else text[:limit] + "..."
    return short.encode("utf-8", "backslashreplace").decode("utf-8")
