"""Edge certificates: what an HTTPS gateway presents to clients, one `tls-certificate` each.

The spec keeps only public data (the PEM chain). The private key is write-only: a write carries
it in `private_key`, which is excluded from every dump of the spec, so it never reaches the
resource row, the change log, history, a diff or any answer; the store seals it (encrypted at
rest with the control plane's secret) in a table keyed by the certificate's fingerprint, where a
later write of the same certificate (without the key), a rollback or the translation of any
revision finds it. Parsing is pure (no clock): expiry is checked by the store, which has one.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import Field, SecretStr, model_validator

from meshplane.model.fields import Spec

__all__ = ["CertificateInfo", "TlsCertificateSpec", "certificate_info"]

_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_MAX_PEM = 64 * 1024
_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What operators need to know of a certificate, read from its leaf (the first PEM block)."""

    subject: str
    dns_names: tuple[str, ...]
    issuer: str
    serial: str  # hex
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str  # SHA-256 of the leaf's DER, hex: the sealed key's index

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.not_after


def certificate_info(chain_pem: str) -> CertificateInfo:
    """Read the leaf of a PEM chain; ValueError naming what is wrong."""
    leaf = _chain(chain_pem)[0]
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    return CertificateInfo(
        subject=leaf.subject.rfc4514_string(),
        dns_names=dns_names,
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def _chain(pem: str) -> list[x509.Certificate]:
    if _PEM_BEGIN not in pem:
        raise ValueError("certificate: not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ValueError(f"certificate: cannot parse the PEM chain ({exc})") from None


def _private_key(
    pem: str,
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise ValueError(
            "private_key: encrypted keys are not supported; give it unencrypted"
        ) from None
    except (ValueError, UnicodeEncodeError):
        raise ValueError("private_key: not a PEM private key") from None
    if not isinstance(key, _KEY_TYPES):
        raise ValueError("private_key: an RSA, ECDSA or Ed25519 key is needed")
    return key


def _public_der(key: object) -> bytes:
    assert isinstance(key, (*_KEY_TYPES, rsa.RSAPublicKey, ec.EllipticCurvePublicKey))
    public = key.public_key() if isinstance(key, _KEY_TYPES) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class TlsCertificateSpec(Spec):
    """A certificate (and its key) an HTTPS gateway presents; the key is write-only."""

    certificate: str = Field(
        max_length=_MAX_PEM,
        description="PEM chain: the server certificate first, then any intermediates. Its "
        "DNS names are the hosts it serves (the gateway picks a certificate by SNI).",
    )
    private_key: SecretStr | None = Field(
        None,
        exclude=True,
        max_length=_MAX_PEM,
        description="Write-only PEM private key (unencrypted PKCS#1, PKCS#8 or SEC1) matching "
        "the certificate. Never returned; stored encrypted. May be left out when the same "
        "certificate was stored with its key before (a `get -o yaml` applied back).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        leaf = _chain(self.certificate)[0]
        if self.private_key is not None:
            key = _private_key(self.private_key.get_secret_value())
            if _public_der(key) != _public_der(leaf.public_key()):
                raise ValueError("private_key: does not match the certificate's public key")
        return self

    @functools.cached_property
    def info(self) -> CertificateInfo:
        """The leaf's subject, names, issuer, validity and fingerprint (parsed once)."""
        return certificate_info(self.certificate)
