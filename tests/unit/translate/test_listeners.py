"""LDS: the gateway listener and a sidecar's inbound and outbound listeners."""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from meshplane.xds.type_urls import LISTENER
from tests.unit.translate.meshes import EXAMPLES, grouped

HCM = hcm_pb2.HttpConnectionManager


def listeners(example: str, group_index: int = 0):
    case = EXAMPLES[example]
    return {
        listener.name: listener
        for listener in grouped(case.mesh, case.groups[group_index])[LISTENER]
    }


def only_filter(listener: Any) -> Any:
    (chain,) = listener.filter_chains
    (network_filter,) = chain.filters
    return network_filter


def manager(listener) -> hcm_pb2.HttpConnectionManager:
    network_filter = only_filter(listener)
    assert network_filter.name == "envoy.filters.network.http_connection_manager"
    result = HCM()
    assert network_filter.typed_config.Unpack(result)
    return result


def address(listener) -> tuple[str, int]:
    socket = listener.address.socket_address
    return socket.address, socket.port_value


def test_gateway_listener_fetches_its_routes_by_rds():
    found = listeners("gateway-hosts", 1)
    assert list(found) == ["gateway:internal"]
    listener = found["gateway:internal"]
    assert address(listener) == ("127.0.0.1", 9000)
    hcm = manager(listener)
    assert hcm.stat_prefix == "gateway_internal"
    assert hcm.codec_type == HCM.CodecType.AUTO
    assert hcm.strip_any_host_port is True
    assert hcm.rds.route_config_name == "gateway:internal"
    assert hcm.rds.config_source.WhichOneof("config_source_specifier") == "ads"
    assert hcm.rds.config_source.resource_api_version == config_source_pb2.ApiVersion.V3
    assert [f.name for f in hcm.http_filters] == [
        "envoy.filters.http.fault",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]


def test_gateway_listens_on_all_addresses_by_default():
    assert address(listeners("weighted")["gateway:edge"]) == ("0.0.0.0", 8080)


def test_missing_gateway_gets_no_listener():
    assert listeners("gateway-hosts", 2) == {}


def test_sidecar_outbound_is_loopback_only_and_uses_shared_routes():
    found = listeners("sidecar")
    assert list(found) == ["inbound", "outbound"]
    outbound = found["outbound"]
    assert address(outbound) == ("127.0.0.1", 15001)
    hcm = manager(outbound)
    assert hcm.stat_prefix == "outbound"
    assert hcm.rds.route_config_name == "outbound"


def test_sidecar_inbound_forwards_everything_to_the_app_without_a_timeout():
    inbound = listeners("sidecar")["inbound"]
    assert address(inbound) == ("0.0.0.0", 15006)
    hcm = manager(inbound)
    assert hcm.WhichOneof("route_specifier") == "route_config"
    (vhost,) = hcm.route_config.virtual_hosts
    assert list(vhost.domains) == ["*"]
    (route,) = vhost.routes
    assert route.match.prefix == "/"
    assert route.route.cluster == "inbound|8080"
    assert route.route.HasField("timeout")
    assert route.route.timeout.ToNanoseconds() == 0


def test_sidecar_of_an_undefined_service_still_gets_http_listeners():
    found = listeners("sidecar", 1)  # service "ghost" is not in the mesh
    assert address(found["inbound"]) == ("0.0.0.0", 16006)
    assert address(found["outbound"]) == ("127.0.0.1", 16001)
    assert manager(found["inbound"]).route_config.virtual_hosts[0].routes[0].route.cluster == (
        "inbound|9090"
    )


def test_tcp_service_inbound_is_a_tcp_proxy():
    inbound = listeners("protocols", 1)["inbound"]  # pg is tcp
    network_filter = only_filter(inbound)
    assert network_filter.name == "envoy.filters.network.tcp_proxy"
    proxy = tcp_proxy_pb2.TcpProxy()
    assert network_filter.typed_config.Unpack(proxy)
    assert (proxy.stat_prefix, proxy.cluster) == ("inbound", "inbound|8080")
