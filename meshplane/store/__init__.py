"""The mesh's resources in SQL (SQLite or PostgreSQL), a global revision, and a change feed.

Writes go through `Store`; each commit bumps one revision, appends to a change log and then
publishes the revision (and the change) on the `ChangeFeed`, which the xDS side waits on before
reading `changes_since` (or `load_mesh` when the log no longer reaches back). Transactions run
whole on database threads (`Database`), never on the event loop. A stored resource whose spec
no longer validates never breaks a read: it is reported (`Store.invalid_resources`), refused
by name (`StoredInvalid`, a 409), and kept out of the Mesh until written valid or deleted.
On PostgreSQL every replica's feed also hears the others' commits (replica_feed.py), and one
replica leads the singleton jobs (leader.py); a SQLite file serves one server (server_lock.py).
"""

from meshplane.store.batch import Document
from meshplane.store.database import Database, open_database
from meshplane.store.edge_keys import KeySealer
from meshplane.store.engine import create_engine, migrate, normalise_url
from meshplane.store.feed import ChangeFeed
from meshplane.store.history import HistoryEntry
from meshplane.store.holders import EndpointHolders
from meshplane.store.identity import CaAuthorityRow, CaChanges, CaLeafRow, IdentityRepo
from meshplane.store.invalid import InvalidResource, StoredInvalid
from meshplane.store.leader import Leadership, LeadershipSource, SoleLeader
from meshplane.store.proxy_views import ReplicaProxies, follow_proxies
from meshplane.store.replica_feed import RevisionListener, follow_revisions
from meshplane.store.replicas import (
    Replica,
    ReplicaRepo,
    follow_identity,
    keep_alive,
    new_replica_id,
)
from meshplane.store.repo import IfMatch, Source, StoredResource, canonical
from meshplane.store.revisions import (
    DEFAULT_HISTORY_REVISIONS,
    PRUNE_EVERY,
    Difference,
    StateAt,
)
from meshplane.store.server_lock import DatabaseInUse, one_server
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
    "DEFAULT_HISTORY_REVISIONS",
    "NODE_ROLE",
    "PRUNE_EVERY",
    "ROLES",
    "ApiToken",
    "Applied",
    "CaAuthorityRow",
    "CaChanges",
    "CaLeafRow",
    "ChangeFeed",
    "Database",
    "DatabaseInUse",
    "Difference",
    "Document",
    "EndpointHolders",
    "HistoryEntry",
    "IdentityRepo",
    "IfMatch",
    "InvalidReport",
    "InvalidResource",
    "KeySealer",
    "Leadership",
    "LeadershipSource",
    "Replica",
    "ReplicaProxies",
    "ReplicaRepo",
    "RevisionListener",
    "Role",
    "SoleLeader",
    "Source",
    "StateAt",
    "Store",
    "StoredInvalid",
    "StoredResource",
    "TokenRepo",
    "canonical",
    "create_engine",
    "follow_identity",
    "follow_proxies",
    "follow_revisions",
    "hash_token",
    "keep_alive",
    "migrate",
    "new_replica_id",
    "normalise_url",
    "one_server",
    "open_database",
    "open_store",
]
