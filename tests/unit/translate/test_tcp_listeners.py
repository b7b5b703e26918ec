"""TCP through the mesh: a sidecar's outbound listener per tcp service with a mesh port, the
network RBAC filters of a tcp service's inbound listener, and tcp gateways' listeners."""

from __future__ import annotations

from typing import Any

from envoy.config.rbac.v3 import rbac_pb2 as rbac_config
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.model import Change, ProxyGroup, Role
from meshplane.xds.translate import skipped_ports
from meshplane.xds.type_urls import CLUSTER, LISTENER, ROUTE
from tests.support.meshes import sidecar_group
from tests.unit.translate.meshes import EXAMPLES, grouped, shared

TCP = EXAMPLES["tcp"].mesh


def _listeners(group: ProxyGroup) -> dict[str, Any]:
    return {listener.name: listener for listener in grouped(TCP, group)[LISTENER]}


def _proxy(listener: Any) -> tcp_proxy_pb2.TcpProxy:
    (chain,) = listener.filter_chains
    last = chain.filters[-1]
    assert last.name == "envoy.filters.network.tcp_proxy"
    proxy = tcp_proxy_pb2.TcpProxy()
    assert last.typed_config.Unpack(proxy)
    return proxy


def test_a_sidecar_listens_on_loopback_for_each_tcp_service_with_a_port():
    found = _listeners(sidecar_group("web", outbound=15002))
    assert set(found) == {"inbound", "outbound", "tcp:echo", "tcp:cache"}
    echo = found["tcp:echo"]
    assert echo.address.socket_address.address == "127.0.0.1"
    assert echo.address.socket_address.port_value == 7000
    assert _proxy(found["tcp:cache"]).cluster == "cache"


def test_a_sidecar_route_on_a_tcp_host_splits_connections_between_subsets():
    proxy = _proxy(_listeners(sidecar_group("web"))["tcp:echo"])
    assert proxy.stat_prefix == "outbound_tcp_echo"
    assert [(c.name, c.weight) for c in proxy.weighted_clusters.clusters] == [
        ("echo|version=v1", 90),
        ("echo|version=v2", 10),
    ]
    clusters = {c.name: c for c in shared(TCP)[CLUSTER]}
    # The subset clusters exist and speak mTLS to the callee's exact SPIFFE ID, as HTTP ones do.
    for name in ("echo|version=v1", "echo|version=v2"):
        assert clusters[name].transport_socket_matches[0].name == "meshplane-mtls"


def test_zero_weight_destinations_are_left_out_and_one_left_is_a_plain_cluster():
    route = TCP.routes["echo-split"]
    zero = route.model_copy(
        update={
            "destinations": [
                route.destinations[0].model_copy(update={"weight": 0}),
                route.destinations[1],
            ]
        }
    )

    moved = TCP.with_changes([Change(9, "routes", "echo-split", zero)])
    found = {x.name: x for x in grouped(moved, sidecar_group("web"))[LISTENER]}
    assert _proxy(found["tcp:echo"]).cluster == "echo|version=v2"


def test_a_port_the_sidecar_uses_itself_gets_no_listener_and_is_reported():
    group = sidecar_group("echo", inbound=16006, app=9090, outbound=15001)
    assert "tcp:cache" not in _listeners(group)
    assert skipped_ports(TCP, group) == [("cache", 15001)]
    assert skipped_ports(TCP, sidecar_group("web", outbound=15002)) == []
    # A port the bootstrap gives one service is taken for another service's own port.
    moved = ProxyGroup(
        Role.SIDECAR, service="web", inbound_port=15006, app_port=8080, outbound_port=15002,
        tcp_ports=(("db", 7000),),
    )  # fmt: skip
    assert skipped_ports(TCP, moved) == [("echo", 7000)]


def test_the_bootstrap_moves_a_service_port_or_gives_one():
    group = ProxyGroup(
        Role.SIDECAR, service="web", inbound_port=15006, app_port=8080, outbound_port=15002,
        tcp_ports=(("db", 7000), ("echo", 7100)),
    )  # fmt: skip
    found = _listeners(group)
    ports = {name: x.address.socket_address.port_value for name, x in found.items()}
    assert ports["tcp:echo"] == 7100
    assert ports["tcp:db"] == 7000  # db has no port of its own
    assert ports["tcp:cache"] == 15001


def test_a_tcp_service_inbound_listener_denies_then_allows_by_caller_identity():
    inbound = _listeners(sidecar_group("echo", inbound=16006, app=9090, outbound=16001))["inbound"]
    (chain,) = inbound.filter_chains
    names = [f.name for f in chain.filters]
    assert names == [
        "envoy.filters.network.rbac.deny",
        "envoy.filters.network.rbac.allow",
        "envoy.filters.network.tcp_proxy",
    ]
    rules = []
    for network_filter in chain.filters[:2]:
        config = rbac_pb2.RBAC()
        assert network_filter.typed_config.Unpack(config)
        rules.append(config.rules)
    deny, allow = rules
    assert deny.action == rbac_config.RBAC.DENY
    assert allow.action == rbac_config.RBAC.ALLOW
    principals = allow.policies["echo-allow"].principals
    assert [p.authenticated.principal_name.exact for p in principals] == [
        "spiffe://meshplane.local/service/web",
        "spiffe://meshplane.local/service/echo",
    ]
    assert allow.policies["echo-allow"].permissions[0].any
    assert chain.transport_socket.name == "envoy.transport_sockets.tls"  # mTLS first


def test_a_tcp_gateway_forwards_its_port_to_its_route_and_has_no_routes():
    resources = grouped(TCP, EXAMPLES["tcp"].groups[2])
    (listener,) = resources[LISTENER]
    assert listener.name == "gateway:db-edge"
    assert listener.address.socket_address.port_value == 5433
    assert _proxy(listener).cluster == "db"
    assert resources[ROUTE] == []


def test_a_tcp_gateway_without_a_route_does_not_listen():
    resources = grouped(TCP, EXAMPLES["tcp"].groups[3])
    assert resources[LISTENER] == []
    assert resources[ROUTE] == []


def test_tcp_hosts_get_no_http_virtual_host():
    (outbound,) = grouped(TCP, sidecar_group("web"))[ROUTE]
    assert [host.name for host in outbound.virtual_hosts] == ["web"]
