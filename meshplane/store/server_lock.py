"""One `meshplane serve` per SQLite file.

Replicas share a mesh through PostgreSQL (replica_feed.py): their change feeds hear each other's
commits. On SQLite there is no such channel, so a second server on the same file would never
learn of the first one's writes and serve stale configuration without a word. It is refused
instead: each server holds an exclusive lock on a file beside the database for as long as it
runs (the operating system drops it when the process dies, however it dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from meshplane.store.engine import normalise_url

__all__ = ["DatabaseInUse", "one_server"]

_SUFFIX = ".serve-lock"


class DatabaseInUse(Exception):
    """Another server holds the SQLite file."""


@contextlib.contextmanager
def one_server(url: str) -> Iterator[None]:
    """Hold the SQLite database at `url` for this server until the block ends; DatabaseInUse
    if another server holds it. PostgreSQL (any number of replicas) and in-memory databases
    take no lock."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    path = Path(str(parsed.database)).with_name(Path(str(parsed.database)).name + _SUFFIX)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(
                f"another meshplane serve is using {parsed.database}; SQLite serves one "
                "server: stop it, or run several replicas on PostgreSQL"
            ) from None
        yield
    finally:
        os.close(descriptor)
