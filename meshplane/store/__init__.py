"""The mesh's resources in SQL (SQLite or PostgreSQL), a global revision, and a change feed.

Writes go through `Store`; each commit bumps one revision, appends to a change log and then
publishes the revision on the `ChangeFeed`, which the xDS side waits on before reading
`changes_since` (or `load_mesh` when the log no longer reaches back).
"""

from meshplane.store.engine import create_engine, migrate, normalise_url
from meshplane.store.feed import ChangeFeed
from meshplane.store.repo import IfMatch, Source, StoredResource, canonical
from meshplane.store.store import Store, open_store

__all__ = [
    "ChangeFeed",
    "IfMatch",
    "Source",
    "Store",
    "StoredResource",
    "canonical",
    "create_engine",
    "migrate",
    "normalise_url",
    "open_store",
]
