"""The xDS side: translation, the resource cache, ADS streams (SotW and delta) and the server.

Only the cache and the streams hold state; translation is pure (see translate/).
"""

from meshplane.xds.builder import SnapshotBuilder, TranslateHook
from meshplane.xds.cache import ResourceCache
from meshplane.xds.registry import ProxyRegistry
from meshplane.xds.resources import CachedResource, Snapshot
from meshplane.xds.server import AdsServer, start_xds_server
from meshplane.xds.status import NackRecord, ProxyStatus, StatusSource, TypeStatus

__all__ = [
    "AdsServer",
    "CachedResource",
    "NackRecord",
    "ProxyRegistry",
    "ProxyStatus",
    "ResourceCache",
    "Snapshot",
    "SnapshotBuilder",
    "StatusSource",
    "TranslateHook",
    "TypeStatus",
    "start_xds_server",
]
