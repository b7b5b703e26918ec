"""SDS secrets for one proxy: its own identity and the mesh's trust bundle.

Only ever built for the identity the proxy authenticated as; no other proxy's key can end up in
its snapshot, so asking for another name simply finds nothing.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from meshplane.model import IdentityState, Leaf
from meshplane.xds.translate.transport_sockets import IDENTITY_SECRET, TRUST_SECRET

__all__ = ["OWN_SECRETS", "identity_secrets"]

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
