"""The mesh's certificate authority: roots, a leaf per identity, rotation, keys sealed at rest.

`CertificateAuthority` issues and renews SPIFFE leaves and rotates roots; what it publishes
(IdentityState, Leaf) is a model value, read by the translator through `meshplane.model`.
"""

from meshplane.certs.authority import (
    EDGE_TTL,
    MAX_OVERLAP,
    CaConfig,
    CaStatus,
    CertificateAuthority,
    RootInfo,
)
from meshplane.certs.ca import (
    Authority,
    StandIn,
    UnusableAuthority,
    load_authority,
    stand_in_identity,
)
from meshplane.certs.edge import (
    RENEWED_BY,
    EdgeRenewals,
    issued_spec,
    renew_edge_certificates,
    spec_to_store,
)
from meshplane.certs.keystore import SecretBox, load_secret

__all__ = [
    "EDGE_TTL",
    "MAX_OVERLAP",
    "RENEWED_BY",
    "Authority",
    "CaConfig",
    "CaStatus",
    "CertificateAuthority",
    "EdgeRenewals",
    "RootInfo",
    "SecretBox",
    "StandIn",
    "UnusableAuthority",
    "issued_spec",
    "load_authority",
    "load_secret",
    "renew_edge_certificates",
    "spec_to_store",
    "stand_in_identity",
]
