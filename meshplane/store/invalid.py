"""Stored resources whose spec no longer validates: how they are read, reported and refused.

A row may stop validating after it was written: it comes from an older version, was edited by
hand, or a bug let it in. Such a row must not stop the control plane, so every read parses
through `parse_stored`, which answers the reason instead of raising. The Store remembers the
invalid resources it has seen (`InvalidResources`): found by a full load, found again when a
read or the change log meets one, forgotten when that name is written valid or deleted. The
Mesh keeps them, and whatever refers to them, out of the translation (see `model.mesh`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from meshplane.errors import Conflict
from meshplane.model import KINDS, Key, Spec

__all__ = [
    "InvalidResource",
    "InvalidResources",
    "StoredInvalid",
    "invalid_reference",
    "parse_stored",
]

log = logging.getLogger(__name__)

_REASON_CHARS = 200
_ERRORS_SHOWN = 2


@dataclass(frozen=True, slots=True)
class InvalidResource:
    """A stored resource that no longer validates: `version` wrote it, `reason` says why."""

    kind: str  # the plural, as stored
    name: str
    version: int
    reason: str

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    @property
    def label(self) -> str:
        return _label(self.kind, self.name)


class StoredInvalid(Conflict):
    """A read or a write needs a stored resource whose spec no longer validates (HTTP 409)."""

    def __init__(self, resource: InvalidResource) -> None:
        super().__init__(
            f"{resource.label} is stored (version {resource.version}) but its spec no longer "
            f"validates: {resource.reason}; PUT a valid spec over it or DELETE it"
        )
        self.resource = resource


def invalid_reference(kind: str, name: str, reason: str) -> str:
    """Why a write may not refer to (kind, name), stored with a spec that no longer validates."""
    return (
        f"{_label(kind, name)} is stored but its spec no longer validates ({reason}); "
        "PUT a valid spec over it first"
    )


def _label(kind: str, name: str) -> str:
    known = KINDS.get(kind)
    return f"{known.singular if known else kind} {name!r}"


def parse_stored(kind: str, data: object) -> Spec | str:
    """The spec of a stored row, or the reason it does not validate (short, no whole input)."""
    found = KINDS.get(kind)
    if found is None:
        return f"unknown kind {kind[:40]!r}"
    try:
        return found.parse(data)
    except ValidationError as exc:
        return _reason(exc)


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{_field(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors]
    more = len(parts) - _ERRORS_SHOWN
    reason = "; ".join(parts[:_ERRORS_SHOWN]) + (f" (and {more} more)" if more > 0 else "")
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 3] + "..."


def _field(loc: tuple[int | str, ...]) -> str:
    """A pydantic loc as a spec field path: ("a", 0, "b") -> "a[0].b"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


class InvalidResources:
    """The invalid resources this process knows of, by key; logs each when first found.

    Reads race with writes (a read may return a row a commit has since replaced), so each name
    written valid or deleted remembers the revision that did it, and a sighting of an older
    version is ignored. The API's loop and the control plane's both use it (api/core_loop.py):
    a lock keeps each method whole.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._known: dict[Key, InvalidResource] = {}
        self._cleared: dict[Key, int] = {}  # key -> revision that wrote it valid or deleted it
        self.loaded = False  # a full load has run, so every stored one is known

    def __bool__(self) -> bool:
        return bool(self._known)

    def by_key(self) -> dict[Key, InvalidResource]:
        """A copy, safe to hand to a database thread."""
        with self._lock:
            return dict(self._known)

    def all(self) -> list[InvalidResource]:
        with self._lock:
            return sorted(self._known.values(), key=lambda r: r.key)

    def found(self, resources: Iterable[InvalidResource]) -> None:
        """A read met these (each at the version that wrote it)."""
        with self._lock:
            self._found(resources)

    def _found(self, resources: Iterable[InvalidResource]) -> None:
        for resource in resources:
            if resource.version < self._cleared.get(resource.key, 0):
                continue  # a read from before the write that fixed it
            if self._known.get(resource.key) != resource:
                log.warning(
                    "stored resource does not validate, left out of the translation "
                    "kind=%s name=%s version=%d reason=%s",
                    resource.kind,
                    resource.name,
                    resource.version,
                    resource.reason,
                )
            self._known[resource.key] = resource

    def reloaded(self, revision: int, resources: Iterable[InvalidResource]) -> None:
        """A full load at `revision` found exactly these: forget any other it saw valid."""
        fresh = {r.key: r for r in resources}
        with self._lock:
            for key, known in list(self._known.items()):
                if key not in fresh and known.version <= revision:
                    del self._known[key]
            self._found(fresh.values())
            self.loaded = True

    def cleared(self, key: Key, revision: int) -> None:
        """`key` was written valid, or deleted, at `revision`."""
        with self._lock:
            was = self._known.pop(key, None)
            if was is not None or key in self._cleared:
                self._cleared[key] = revision
        if was is not None:
            log.info("stored resource fixed kind=%s name=%s revision=%d", *key, revision)
