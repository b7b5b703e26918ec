"""An https gateway's listener and secrets, and the redirect of an http gateway, as translated."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from meshplane.model import IdentityState
from meshplane.xds.translate import group_config
from meshplane.xds.type_urls import LISTENER, ROUTE, SECRET
from tests.support.meshes import gateway_group
from tests.unit.translate.meshes import _EDGE, EXAMPLES

_MESH = EXAMPLES["https-gateways"].mesh
_KEYS = IdentityState(
    "meshplane.local",
    edge_keys={
        _MESH.tls_certificates[name].info.fingerprint: _EDGE[host].key_pem.encode()
        for name, host in (("a", "a.example.com"), ("b", "b.example.com"))
    },
)


def _config(group: str) -> dict[str, list[Any]]:
    """The group's resources, typed loosely: the tests read their fields."""
    return dict(group_config(_MESH, gateway_group(group), _KEYS))


def _tls(listener: Any) -> tls_pb2.DownstreamTlsContext:
    context = tls_pb2.DownstreamTlsContext()
    listener.filter_chains[0].transport_socket.typed_config.Unpack(context)
    return context


def test_an_https_gateway_presents_its_certificates_by_sni_over_h2() -> None:
    config = _config("secure")
    (listener,) = config[LISTENER]
    context = _tls(listener)
    common = context.common_tls_context
    assert [s.name for s in common.tls_certificate_sds_secret_configs] == [
        "edge-certificate:a",
        "edge-certificate:b",
    ]
    assert list(common.alpn_protocols) == ["h2", "http/1.1"]
    assert common.tls_params.tls_minimum_protocol_version == common_pb2.TlsParameters.TLSv1_3
    assert not context.require_client_certificate.value
    secrets = {s.name: s for s in config[SECRET]}
    assert secrets["edge-certificate:b"].tls_certificate.private_key.inline_bytes == (
        _EDGE["b.example.com"].key_pem.encode()
    )


def test_a_gateway_gets_only_the_certificates_it_presents() -> None:
    partners = _config("partners")
    assert [s.name for s in partners[SECRET] if s.name.startswith("edge")] == ["edge-certificate:a"]
    plain = _config("plain")
    assert not [s for s in plain[SECRET] if s.name.startswith("edge")]
    unknown_keys: dict[str, list[Any]] = dict(
        group_config(_MESH, gateway_group("secure"), IdentityState("meshplane.local"))
    )
    assert not [s for s in unknown_keys[SECRET] if s.name.startswith("edge")]


def test_a_client_ca_requires_client_certificates_and_forwards_them() -> None:
    (listener,) = _config("partners")[LISTENER]
    context = _tls(listener)
    assert context.require_client_certificate.value
    assert (
        "BEGIN CERTIFICATE"
        in context.common_tls_context.validation_context.trusted_ca.inline_string
    )
    manager = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    assert manager.forward_client_cert_details == hcm_pb2.HttpConnectionManager.SANITIZE_SET
    assert manager.set_current_client_cert_details.subject.value


def test_an_http_gateway_can_redirect_everything_to_https() -> None:
    config = _config("plain")
    (routes,) = config[ROUTE]
    (host,) = routes.virtual_hosts
    (route,) = host.routes
    assert list(host.domains) == ["*"]
    assert route.redirect.scheme_redirect == "https"
    assert route.redirect.port_redirect == 8443
    assert not config[LISTENER][0].filter_chains[0].HasField("transport_socket")


def test_a_tls_gateway_passes_connections_through_by_sni() -> None:
    tcp = EXAMPLES["tcp"].mesh
    (listener,) = group_config(tcp, gateway_group("passthrough"), _KEYS)[LISTENER][:1]
    chains: Any = {c.name: c for c in listener.filter_chains}  # type: ignore[attr-defined]
    assert list(chains) == ["to-any-example", "to-rest", "to-shop"]
    assert list(chains["to-shop"].filter_chain_match.server_names) == ["shop.example.com"]
    assert list(chains["to-any-example"].filter_chain_match.server_names) == ["*.example.com"]
    assert not chains["to-rest"].filter_chain_match.server_names  # any SNI, or none
    assert not any(c.HasField("transport_socket") for c in chains.values())  # not terminated
    assert [f.name for f in listener.listener_filters] == [  # type: ignore[attr-defined]
        "envoy.filters.listener.tls_inspector"
    ]
    assert group_config(tcp, gateway_group("passthrough"), _KEYS)[ROUTE] == []
