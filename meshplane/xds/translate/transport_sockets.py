"""Mutual TLS between sidecars: what each side presents and what it accepts.

Every proxy fetches two secrets over SDS (the same ADS stream): IDENTITY_SECRET, its own leaf
and key, and TRUST_SECRET, the mesh's trust bundle. The names are the same for every proxy and
the control plane answers each with that proxy's own identity, so clusters stay shared.

Callers use TLS only towards endpoints marked as sidecars (auto mTLS: a plain instance without
a sidecar is still reached in plaintext); they verify the callee's exact SPIFFE ID. Callees
require a client certificate whose SPIFFE ID is in the trust domain (strict), or also accept
plaintext (permissive).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2

from meshplane.xds.translate.proto_values import ads_config_source, packed

__all__ = [
    "IDENTITY_SECRET",
    "MTLS_MATCH",
    "TRANSPORT_SOCKET_MATCH_KEY",
    "TRUST_SECRET",
    "add_mesh_tls",
    "edge_tls_socket",
    "inbound_filter_chains",
    "mtls_endpoint_metadata",
    "tls_inspector",
]

IDENTITY_SECRET = "meshplane-identity"
TRUST_SECRET = "meshplane-trust-bundle"
# Endpoint metadata namespace Envoy matches `transport_socket_matches` against.
TRANSPORT_SOCKET_MATCH_KEY = "envoy.transport_socket_match"
MTLS_MATCH = "meshplane.mtls"
_TLS_SOCKET = "envoy.transport_sockets.tls"
_TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_config_source())


def _uri(matcher: string_pb2.StringMatcher) -> common_pb2.SubjectAltNameMatcher:
    return common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.SanType.URI, matcher=matcher
    )


def _common(peer: string_pb2.StringMatcher) -> tls_pb2.CommonTlsContext:
    return tls_pb2.CommonTlsContext(
        tls_certificate_sds_secret_configs=[_sds(IDENTITY_SECRET)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=common_pb2.CertificateValidationContext(
                match_typed_subject_alt_names=[_uri(peer)]
            ),
            validation_context_sds_secret_config=_sds(TRUST_SECRET),
        ),
    )


def _upstream_template() -> tls_pb2.UpstreamTlsContext:
    return tls_pb2.UpstreamTlsContext(
        common_tls_context=_common(string_pb2.StringMatcher(exact=""))
    )


# Every service cluster's context is this one with its callee's SPIFFE ID; copying it and setting
# one string is several times cheaper than building the nested messages per cluster.
_UPSTREAM_TEMPLATE = _upstream_template()


def add_mesh_tls(cluster: cluster_pb2.Cluster, callee_spiffe_id: str) -> None:
    """Let `cluster` speak mutual TLS to its sidecar endpoints, expecting `callee_spiffe_id`."""
    context = tls_pb2.UpstreamTlsContext()
    context.CopyFrom(_UPSTREAM_TEMPLATE)
    validation = context.common_tls_context.combined_validation_context.default_validation_context
    validation.match_typed_subject_alt_names[0].matcher.exact = callee_spiffe_id
    cluster.transport_socket_matches.add(
        name="meshplane-mtls",
        match=_MTLS_MATCH_STRUCT,  # copied into the cluster
        transport_socket=base_pb2.TransportSocket(name=_TLS_SOCKET, typed_config=packed(context)),
    )


_MTLS_MATCH_STRUCT = struct_pb2.Struct()
_MTLS_MATCH_STRUCT.update({MTLS_MATCH: True})


def mtls_endpoint_metadata(metadata: base_pb2.Metadata) -> None:
    """Mark an endpoint as a sidecar, so callers pick the mTLS transport socket for it."""
    metadata.filter_metadata[TRANSPORT_SOCKET_MATCH_KEY].update({MTLS_MATCH: True})


def tls_inspector() -> listener_components_pb2.ListenerFilter:
    return listener_components_pb2.ListenerFilter(
        name=_TLS_INSPECTOR, typed_config=packed(tls_inspector_pb2.TlsInspector())
    )


def inbound_filter_chains(
    trust_domain: str, mode: str, filters: list[listener_components_pb2.Filter]
) -> list[listener_components_pb2.FilterChain]:
    """The inbound listener's chains: mTLS only (strict), or mTLS, then plaintext (permissive)."""
    context = tls_pb2.DownstreamTlsContext(
        require_client_certificate={"value": True},
        common_tls_context=_common(string_pb2.StringMatcher(prefix=f"spiffe://{trust_domain}/")),
    )
    secure = listener_components_pb2.FilterChain(
        name="inbound-mtls",
        filters=filters,
        transport_socket=base_pb2.TransportSocket(name=_TLS_SOCKET, typed_config=packed(context)),
    )
    if mode != "permissive":
        return [secure]
    secure.filter_chain_match.transport_protocol = "tls"
    plain = listener_components_pb2.FilterChain(name="inbound-plaintext", filters=filters)
    return [secure, plain]


_TLS_VERSIONS = {
    "1.2": common_pb2.TlsParameters.TLSv1_2,
    "1.3": common_pb2.TlsParameters.TLSv1_3,
}
# What an HTTPS gateway offers by ALPN: HTTP/2 first, HTTP/1.1 for the clients without it.
_EDGE_ALPN = ("h2", "http/1.1")


def edge_tls_socket(
    secrets: list[str], min_version: str, client_ca: str | None
) -> base_pb2.TransportSocket:
    """What an https gateway's listener terminates TLS with: the certificates of `secrets`
    (SDS; Envoy picks the one whose names match the client's SNI, else the first), TLS
    `min_version` and up, h2 or HTTP/1.1 by ALPN; with `client_ca`, a client certificate
    signed by one of its CAs is required."""
    common = tls_pb2.CommonTlsContext(
        tls_params=common_pb2.TlsParameters(
            tls_minimum_protocol_version=_TLS_VERSIONS[min_version]
        ),
        tls_certificate_sds_secret_configs=[_sds(name) for name in secrets],
        alpn_protocols=list(_EDGE_ALPN),
    )
    if client_ca is not None:
        common.validation_context.trusted_ca.inline_string = client_ca
    context = tls_pb2.DownstreamTlsContext(common_tls_context=common)
    if client_ca is not None:
        context.require_client_certificate.value = True
    return base_pb2.TransportSocket(name=_TLS_SOCKET, typed_config=packed(context))
