"""The mesh's certificate authority: roots, a leaf per identity, rotation, keys sealed at rest.

`CertificateAuthority` issues and renews SPIFFE leaves and rotates roots; what it publishes
(IdentityState, Leaf) is a model value, read by the translator through `meshplane.model`.
"""

from meshplane.certs.authority import (
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
from meshplane.certs.keystore import SecretBox, load_secret

__all__ = [
    "MAX_OVERLAP",
    "Authority",
    "CaConfig",
    "CaStatus",
    "CertificateAuthority",
    "RootInfo",
    "SecretBox",
    "StandIn",
    "UnusableAuthority",
    "load_authority",
    "load_secret",
    "stand_in_identity",
]
