"""The mesh's resources in SQL (SQLite or PostgreSQL), a global revision, and a change feed.

Writes go through `Store`; each commit bumps one revision, appends to a change log and then
publishes the revision (and the change) on the `ChangeFeed`, which the xDS side waits on before
reading `changes_since` (or `load_mesh` when the log no longer reaches back). Transactions run
whole on database threads (`Database`), never on the event loop. A stored resource whose spec
no longer validates never breaks a read: it is reported (`Store.invalid_resources`), refused
by name (`StoredInvalid`, a 409), and kept out of the Mesh until written valid or deleted.
"""

from meshplane.store.batch import Document
from meshplane.store.database import Database, open_database
from meshplane.store.engine import create_engine, migrate, normalise_url
from meshplane.store.feed import ChangeFeed
from meshplane.store.history import HistoryEntry
from meshplane.store.identity import CaAuthorityRow, CaLeafRow, IdentityRepo
from meshplane.store.invalid import InvalidResource, StoredInvalid
from meshplane.store.repo import IfMatch, Source, StoredResource, canonical
from meshplane.store.store import Applied, InvalidReport, Store, open_store
from meshplane.store.tokens import (
    API_ROLES,
    NODE_ROLE,
    ROLES,
    ApiToken,
    Role,
    TokenRepo,
    hash_token,
)

__all__ = [
    "API_ROLES",
    "NODE_ROLE",
    "ROLES",
    "ApiToken",
    "Applied",
    "CaAuthorityRow",
    "CaLeafRow",
    "ChangeFeed",
    "Database",
    "Document",
    "HistoryEntry",
    "IdentityRepo",
    "IfMatch",
    "InvalidReport",
    "InvalidResource",
    "Role",
    "Source",
    "Store",
    "StoredInvalid",
    "StoredResource",
    "TokenRepo",
    "canonical",
    "create_engine",
    "hash_token",
    "migrate",
    "normalise_url",
    "open_database",
    "open_store",
]
