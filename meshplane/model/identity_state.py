"""What proxies are given of the mesh's identities: each one's leaf and the trust bundle.

Immutable values, rebuilt by the CA on every change and read by translation (SDS secrets); pure,
so translation needs nothing of the CA (certs/) to read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["IdentityState", "Leaf"]


@dataclass(frozen=True, slots=True)
class Leaf:
    """One identity's current certificate and key (decrypted, in memory only)."""

    subject: str  # Subject.text
    spiffe_id: str
    cert_chain_pem: str
    key_pem: bytes = field(repr=False)
    serial: str
    issuer_serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    renew_at: dt.datetime


@dataclass(frozen=True, slots=True)
class IdentityState:
    """The trust bundle every proxy validates peers with, and each identity's leaf.

    `version` grows with every change, so "has every proxy acknowledged at least version v" is a
    question the rotation can ask before its next step.
    """

    trust_domain: str
    version: int = 0
    trust_bundle: tuple[str, ...] = ()  # root certificates (PEM) trusted now
    leaves: Mapping[str, Leaf] = field(default_factory=dict)
    # Edge certificates' private keys (PEM) by certificate fingerprint, for the gateways that
    # present them; not the CA's: the builder adds the ones its mesh's certificates need.
    edge_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
