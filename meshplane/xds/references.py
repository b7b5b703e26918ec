"""Which clusters a route configuration or listener sends traffic to.

The xDS server holds back a route or listener until every cluster it names is warm on the proxy
(make before break): pushing it earlier makes Envoy answer 503 "no cluster" for a moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.message import Message

__all__ = ["referenced_clusters", "route_clusters"]


def referenced_clusters(message: Message) -> frozenset[str]:
    """Return the cluster names `message` routes or proxies to.

    Covers a RouteConfiguration (route `cluster`, `weighted_clusters`, mirror policies) and a
    Listener (TCP proxy clusters, and the clusters of an HCM's inline route configuration; an
    HCM fetching its routes by RDS names no cluster itself). Any other message names none.
    """
    if isinstance(message, route_pb2.RouteConfiguration):
        return frozenset(_route_configuration_clusters(message))
    if isinstance(message, listener_pb2.Listener):
        return frozenset(_listener_clusters(message))
    return frozenset()


def route_clusters(route: Any) -> frozenset[str]:
    """The clusters one Route of a route configuration sends traffic to (route_configs keeps
    them with each translated route, so a configuration's are a union, not a walk)."""
    if route.WhichOneof("action") != "route":
        return frozenset()
    return frozenset(_route_action_clusters(route.route))


def _route_configuration_clusters(config: Any) -> Iterator[str]:
    for virtual_host in config.virtual_hosts:
        for route in virtual_host.routes:
            if route.WhichOneof("action") == "route":
                yield from _route_action_clusters(route.route)


def _route_action_clusters(action: Any) -> Iterator[str]:
    specifier = action.WhichOneof("cluster_specifier")
    if specifier == "cluster":
        yield action.cluster
    elif specifier == "weighted_clusters":
        yield from (weighted.name for weighted in action.weighted_clusters.clusters)
    yield from (mirror.cluster for mirror in action.request_mirror_policies if mirror.cluster)


def _listener_clusters(listener: Any) -> Iterator[str]:
    chains: Iterable[Any] = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains = [*chains, listener.default_filter_chain]
    for chain in chains:
        for network_filter in chain.filters:
            if network_filter.WhichOneof("config_type") == "typed_config":
                yield from _filter_clusters(network_filter.typed_config)


def _filter_clusters(config: Any) -> Iterator[str]:
    if config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
        manager = hcm_pb2.HttpConnectionManager()
        config.Unpack(manager)
        if manager.WhichOneof("route_specifier") == "route_config":
            yield from _route_configuration_clusters(manager.route_config)
    elif config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
        proxy = tcp_proxy_pb2.TcpProxy()
        config.Unpack(proxy)
        if proxy.WhichOneof("cluster_specifier") == "cluster":
            yield proxy.cluster
        else:
            yield from (weighted.name for weighted in proxy.weighted_clusters.clusters)
