"""Generated bootstraps: accepted by real Envoy, and read back as the same proxy identity."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2

# Registers the typed_config messages the bootstrap names, so protobuf can parse it as Envoy does.
from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401
    downstream_connections_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format

from meshplane.model import NodeOptions, Proxy, ProxyGroup, Role, proxy_from_node
from meshplane.xds.bootstrap import render_bootstrap, render_yaml
from tests.support.envoy import validate_configs

GATEWAY = NodeOptions(
    role=Role.GATEWAY, node_id="edge-1", xds_host="127.0.0.1", xds_port=18000, gateway="edge"
)
SIDECAR = NodeOptions(
    role=Role.SIDECAR,
    node_id="reviews-1",
    xds_host="meshplane.internal",
    xds_port=18000,
    admin_port=9902,
    service="reviews",
    inbound_port=15006,
    app_port=8080,
    outbound_port=15001,
    address="10.0.0.7",
)


def replace(options: NodeOptions, **changes: Any) -> NodeOptions:
    """`options` with `changes`, checked as any new options are."""
    return NodeOptions.model_validate({**options.model_dump(), **changes})


VARIANTS = {
    "gateway-sotw": GATEWAY,
    "gateway-delta": replace(GATEWAY, delta=True),
    "sidecar-sotw": SIDECAR,
    "sidecar-delta": replace(SIDECAR, delta=True),
}


def test_every_variant_passes_envoy_validation():
    bootstraps = [render_bootstrap(options) for options in VARIANTS.values()]
    replicas = [("127.0.0.1", 18000), ("10.0.0.2", 18000), ("meshplane-2.internal", 18001)]
    bootstraps.append(render_bootstrap(GATEWAY, replicas=replicas))
    validate_configs(bootstraps)


def test_every_replica_is_an_xds_endpoint_this_one_first():
    replicas = [("10.0.0.2", 18000), ("127.0.0.1", 18000), ("10.0.0.3", 18001)]
    (cluster,) = render_bootstrap(GATEWAY, replicas=replicas)["static_resources"]["clusters"]
    (endpoints,) = cluster["load_assignment"]["endpoints"]
    addresses = [e["endpoint"]["address"]["socket_address"] for e in endpoints["lb_endpoints"]]
    assert [(a["address"], a["port_value"]) for a in addresses] == [
        ("127.0.0.1", 18000),  # this replica's (the options'), listed once
        ("10.0.0.2", 18000),
        ("10.0.0.3", 18001),
    ]
    assert cluster["type"] == "STATIC"
    named = render_bootstrap(GATEWAY, replicas=[("meshplane-2.internal", 18000)])
    assert named["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"


def test_yaml_is_the_same_bootstrap_in_envoy_field_order():
    text = render_yaml(SIDECAR)
    assert yaml.safe_load(text) == render_bootstrap(SIDECAR)
    assert text.startswith("node:\n")
    assert "&id" not in text  # no anchors: every sub-dict is its own object


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_same_message_after_protobuf_parsing(name):
    """Envoy parses the bootstrap into protobuf; unknown or misspelled fields would fail here."""
    bootstrap = render_bootstrap(VARIANTS[name])
    parsed = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    assert parsed.node.id == VARIANTS[name].node_id


def node_round_trip(options: NodeOptions) -> Proxy:
    """What the xDS server sees: node metadata parsed by protobuf (numbers become floats)."""
    bootstrap = render_bootstrap(options)
    parsed = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    metadata: dict[str, Any] = json_format.MessageToDict(parsed.node.metadata)
    assert options.node_id is not None
    assert proxy_from_node(options.node_id, bootstrap["node"]["metadata"]) == proxy_from_node(
        parsed.node.id, metadata
    )
    return proxy_from_node(parsed.node.id, metadata)


def test_gateway_node_round_trips_through_proxy_from_node():
    proxy = node_round_trip(GATEWAY)
    group = ProxyGroup(Role.GATEWAY, gateway="edge", admin_port=GATEWAY.admin_port)
    assert proxy == Proxy("edge-1", group)
    bootstrap = render_bootstrap(GATEWAY)
    assert bootstrap["node"]["cluster"] == "edge"


def test_sidecar_node_round_trips_through_proxy_from_node():
    proxy = node_round_trip(SIDECAR)
    group = ProxyGroup(
        Role.SIDECAR,
        service="reviews",
        inbound_port=15006,
        app_port=8080,
        outbound_port=15001,
        admin_port=SIDECAR.admin_port,
    )
    assert proxy == Proxy("reviews-1", group, address="10.0.0.7")
    assert render_bootstrap(SIDECAR)["node"]["cluster"] == "reviews"


def test_sidecar_address_left_to_the_control_plane():
    proxy = node_round_trip(replace(SIDECAR, address=None))
    assert proxy.address is None  # the xDS server uses the connection's peer address


def test_ads_settings():
    sotw = render_bootstrap(GATEWAY)["dynamic_resources"]
    ads = sotw["ads_config"]
    assert ads["api_type"] == "GRPC"
    assert ads["transport_api_version"] == "V3"
    assert ads["set_node_on_first_message_only"] is True
    (service,) = ads["grpc_services"]
    assert service["envoy_grpc"] == {
        "cluster_name": "meshplane-xds",
        "retry_policy": {"retry_back_off": {"base_interval": "0.25s", "max_interval": "5s"}},
    }
    for key in ("cds_config", "lds_config"):
        assert sotw[key] == {"ads": {}, "resource_api_version": "V3"}
    delta = render_bootstrap(VARIANTS["gateway-delta"])["dynamic_resources"]["ads_config"]
    assert delta["api_type"] == "DELTA_GRPC"


def test_xds_cluster_is_static_for_an_ip_and_dns_for_a_name():
    (by_ip,) = render_bootstrap(GATEWAY)["static_resources"]["clusters"]
    (by_name,) = render_bootstrap(SIDECAR)["static_resources"]["clusters"]
    assert (by_ip["name"], by_ip["type"]) == ("meshplane-xds", "STATIC")
    assert (by_name["name"], by_name["type"]) == ("meshplane-xds", "STRICT_DNS")
    socket = by_name["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert socket == {"socket_address": {"address": "meshplane.internal", "port_value": 18000}}
    options = by_ip["typed_extension_protocol_options"]
    (http,) = options.values()
    assert "http2_protocol_options" in http["explicit_http_config"]
    assert "tcp_keepalive" in by_ip["upstream_connection_options"]


def test_admin_listens_on_loopback_only():
    admin = render_bootstrap(SIDECAR)["admin"]
    assert admin == {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9902}}}


def test_downstream_connection_limit_is_set():
    (monitor,) = render_bootstrap(GATEWAY)["overload_manager"]["resource_monitors"]
    assert monitor["name"] == "envoy.resource_monitors.global_downstream_max_connections"
    assert monitor["typed_config"]["max_active_downstream_connections"] > 0


@pytest.mark.parametrize(
    ("base", "changes", "message"),
    [
        (GATEWAY, {"gateway": None}, "needs gateway"),
        (GATEWAY, {"gateway": "Edge_1"}, "not a meshplane name"),
        (GATEWAY, {"service": "reviews"}, "no sidecar options"),
        (GATEWAY, {"inbound_port": 15006}, "no sidecar options"),
        (SIDECAR, {"service": None}, "needs service"),
        (SIDECAR, {"inbound_port": None}, "needs inbound_port"),
        (SIDECAR, {"app_port": None}, "needs app_port"),
        (SIDECAR, {"outbound_port": None}, "needs outbound_port"),
        (SIDECAR, {"gateway": "edge"}, "no gateway"),
        (SIDECAR, {"outbound_port": 15006}, "must differ"),
        (SIDECAR, {"admin_port": 8080}, "must differ"),
        (SIDECAR, {"app_port": 0}, "app_port must be a port"),
        (SIDECAR, {"inbound_port": 70000}, "inbound_port must be a port"),
        (SIDECAR, {"address": "reviews.local"}, "not an IPv4 or IPv6"),
        (GATEWAY, {"xds_port": 0}, "xds_port must be a port"),
        (GATEWAY, {"admin_port": 65536}, "admin_port must be a port"),
        (GATEWAY, {"xds_host": ""}, "xds_host"),
        (GATEWAY, {"node_id": ""}, "node_id"),
        (GATEWAY, {"role": "router"}, "role must be"),
    ],
)
def test_inconsistent_options_are_value_errors(base, changes, message):
    with pytest.raises(ValueError, match=message):
        render_bootstrap(replace(base, **changes))
    with pytest.raises(ValueError, match=message):
        render_yaml(replace(base, **changes))


def test_zone_sets_the_node_locality_and_round_trips_into_the_group():
    for options in (GATEWAY, SIDECAR):
        zoned = replace(options, zone="eu-west-1a")
        bootstrap = render_bootstrap(zoned)
        assert bootstrap["node"]["locality"] == {"zone": "eu-west-1a"}
        assert node_round_trip(zoned).group.zone == "eu-west-1a"
        assert node_round_trip(options).group.zone is None
    validate_configs([render_bootstrap(replace(SIDECAR, zone="a"))])
    with pytest.raises(ValueError, match="not a zone name"):
        render_bootstrap(replace(GATEWAY, zone="Zone A"))
