"""The xDS side: translation, the snapshot builder, the resource cache, ADS streams, the server.

Data flows one way through it: the builder follows the store's change feed (through the narrow
protocols of store_port.py), translates the mesh (translate/, pure) and publishes one snapshot
per proxy group to the cache; each ADS stream watches its group's snapshot and runs one protocol
state machine (sotw.py or delta.py over stream_state.py) that says what to send; the server
(server.py) only wires streams to the cache and to the registry of connected proxies
(registry.py and the modules it composes). Only the cache and the streams hold state.
"""

from meshplane.xds.bootstrap import XDS_CLUSTER, XdsTls, render_bootstrap, render_yaml
from meshplane.xds.builder import SnapshotBuilder, TranslateHook
from meshplane.xds.cache import ResourceCache
from meshplane.xds.envoy_check import find_envoy
from meshplane.xds.node_tokens import NodeGrant, NodeTokens, NodeTokenSource, Refused
from meshplane.xds.preview import ChangePreview, GroupPreview, ResourceChanges
from meshplane.xds.registry import ProxyRegistry
from meshplane.xds.resources import CachedResource, Snapshot, pack
from meshplane.xds.server import ADS_SERVICE, SERVER_OPTIONS, AdsServer, start_xds_server
from meshplane.xds.static_config import Resources, static_bootstrap
from meshplane.xds.status import NackRecord, ProxyStatus, StatusSource, TypeStatus
from meshplane.xds.store_port import EndpointRegistrar, MeshSource, when_reachable
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SHORT_NAMES

__all__ = [
    "ADS_SERVICE",
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "ROUTE",
    "SECRET",
    "SERVER_OPTIONS",
    "SHORT_NAMES",
    "XDS_CLUSTER",
    "AdsServer",
    "CachedResource",
    "ChangePreview",
    "EndpointRegistrar",
    "GroupPreview",
    "MeshSource",
    "NackRecord",
    "NodeGrant",
    "NodeTokenSource",
    "NodeTokens",
    "ProxyRegistry",
    "ProxyStatus",
    "Refused",
    "ResourceCache",
    "ResourceChanges",
    "Resources",
    "Snapshot",
    "SnapshotBuilder",
    "StatusSource",
    "TranslateHook",
    "TypeStatus",
    "XdsTls",
    "find_envoy",
    "pack",
    "render_bootstrap",
    "render_yaml",
    "start_xds_server",
    "static_bootstrap",
    "when_reachable",
]
