"""SDS secrets for one proxy: its own identity and the mesh's trust bundle, and for an https
gateway the edge certificates it presents.

Only ever built for the identity the proxy authenticated as, and edge certificates only for the
gateway that names them; no other proxy's key can end up in its snapshot, so asking for another
name simply finds nothing.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from meshplane.model import IdentityState, Leaf, Mesh
from meshplane.xds.translate.names import edge_secret_name
from meshplane.xds.translate.transport_sockets import IDENTITY_SECRET, TRUST_SECRET

__all__ = ["OWN_SECRETS", "edge_secrets", "identity_secrets"]

# The names of the only secrets a proxy is ever given (whatever its identity).
OWN_SECRETS = frozenset({IDENTITY_SECRET, TRUST_SECRET})


def identity_secrets(state: IdentityState, leaf: Leaf | None) -> list[secret_pb2.Secret]:
    """The trust bundle, plus the identity secret once the leaf is issued; sorted by name."""
    secrets = []
    if leaf is not None:
        secrets.append(
            secret_pb2.Secret(
                name=IDENTITY_SECRET,
                tls_certificate=common_pb2.TlsCertificate(
                    certificate_chain=base_pb2.DataSource(inline_string=leaf.cert_chain_pem),
                    private_key=base_pb2.DataSource(inline_bytes=leaf.key_pem),
                ),
            )
        )
    if state.trust_bundle:
        secrets.append(
            secret_pb2.Secret(
                name=TRUST_SECRET,
                validation_context=common_pb2.CertificateValidationContext(
                    trusted_ca=base_pb2.DataSource(inline_string="".join(state.trust_bundle))
                ),
            )
        )
    return sorted(secrets, key=lambda s: str(s.name))


def edge_secrets(mesh: Mesh, gateway: str, state: IdentityState) -> list[secret_pb2.Secret]:
    """The certificates (with their keys) `gateway` presents, if it is an https gateway; a
    certificate whose key the builder has not read is left out (its listener waits for it)."""
    spec = mesh.gateways.get(gateway)
    if spec is None or spec.tls is None:
        return []
    secrets = []
    for name in spec.tls.certificates:
        certificate = mesh.tls_certificates.get(name)
        if certificate is None or not certificate.issued:
            continue
        key = state.edge_keys.get(certificate.info.fingerprint)
        if key is not None:
            secrets.append(
                secret_pb2.Secret(
                    name=edge_secret_name(name),
                    tls_certificate=common_pb2.TlsCertificate(
                        certificate_chain=base_pb2.DataSource(
                            inline_string=certificate.certificate
                        ),
                        private_key=base_pb2.DataSource(inline_bytes=key),
                    ),
                )
            )
    return secrets
