"""The HTTP connection manager and listener shell every meshplane HTTP listener shares."""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from meshplane.xds.translate.proto_values import ads_config_source, packed, socket_address

__all__ = [
    "HCM_FILTER",
    "TCP_PROXY_FILTER",
    "http_connection_manager",
    "listener",
    "one_route_configuration",
]

HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
_ROUTER_FILTER = "envoy.filters.http.router"


def http_connection_manager(
    stat_prefix: str,
    *,
    rds: str | None = None,
    route_config: route_pb2.RouteConfiguration | None = None,
    filters: Sequence[hcm_pb2.HttpFilter] = (),
) -> hcm_pb2.HttpConnectionManager:
    """Build an HCM routing by RDS configuration `rds` (over ADS) or by an inline `route_config`.

    `filters` run before the router, in the order given (e.g. RBAC, then fault injection, then
    rate limiting). Host ports are stripped so `Host: reviews:9080` matches the virtual host
    `reviews`.
    """
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.CodecType.AUTO,
        strip_any_host_port=True,
        http_filters=[
            *filters,
            hcm_pb2.HttpFilter(name=_ROUTER_FILTER, typed_config=packed(router_pb2.Router())),
        ],
    )
    if rds is not None:
        manager.rds.CopyFrom(hcm_pb2.Rds(route_config_name=rds, config_source=ads_config_source()))
    elif route_config is not None:
        manager.route_config.CopyFrom(route_config)
    else:
        raise ValueError("an HTTP connection manager needs rds or route_config")
    return manager


def one_route_configuration(
    name: str,
    match: route_components_pb2.RouteMatch,
    action: route_components_pb2.RouteAction | route_components_pb2.RedirectAction,
) -> route_pb2.RouteConfiguration:
    """A route configuration of one route, forwarding or redirecting, on one virtual host for
    every domain; the three named `name` (a listener of a single purpose: the inbound side, the
    stats endpoint, a gateway that only redirects to HTTPS)."""
    if isinstance(action, route_components_pb2.RedirectAction):
        route = route_components_pb2.Route(name=name, match=match, redirect=action)
    else:
        route = route_components_pb2.Route(name=name, match=match, route=action)
    return route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=name,
                domains=["*"],
                routes=[route],
            )
        ],
    )


def listener(
    name: str,
    address: str,
    port: int,
    filter_name: str,
    config: Message,
    before: Sequence[listener_components_pb2.Filter] = (),
) -> listener_pb2.Listener:
    """Build listener `name` on address:port with one filter chain holding one network filter,
    after the network filters `before` (authorization of a tcp service, say)."""
    last = listener_components_pb2.Filter(name=filter_name, typed_config=packed(config))
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address, port),
        filter_chains=[listener_components_pb2.FilterChain(filters=[*before, last])],
    )
