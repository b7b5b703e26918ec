"""What the translator needs to know about identities: immutable, rebuilt on every CA change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshplane.model import ProxyGroup

__all__ = ["IdentityState", "Leaf", "subject_of"]


def subject_of(group: ProxyGroup) -> str | None:
    """The identity a proxy group speaks for: "service/<name>" or "gateway/<name>"."""
    return group.subject


@dataclass(frozen=True, slots=True)
class Leaf:
    """One identity's current certificate and key (decrypted, in memory only)."""

    subject: str  # "service/orders"
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
