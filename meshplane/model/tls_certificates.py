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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import Field, SecretStr, model_validator

from meshplane.model.fields import Host, Spec

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
    """A certificate (and its key) an HTTPS gateway presents; the key is write-only. Either
    given (`certificate`, `private_key`) or issued by the mesh CA (`issuer: mesh`)."""

    certificate: str | None = Field(
        None,
        max_length=_MAX_PEM,
        description="PEM chain: the server certificate first, then any intermediates. Its "
        "DNS names are the hosts it serves (the gateway picks a certificate by SNI). Filled "
        "in by the control plane when `issuer` is mesh.",
    )
    issuer: Literal["mesh"] | None = Field(
        None,
        description="mesh: the mesh CA issues the certificate (and its key) for `hostnames`, "
        "and renews it before it expires; clients trust the mesh's root. For internal "
        "gateways and tests.",
    )
    hostnames: list[Host] = Field(
        default_factory=list,
        max_length=64,
        description="With `issuer: mesh`: the DNS names the certificate is issued for.",
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
        if self.issuer == "mesh":
            return self._mesh_issued()
        if self.hostnames:
            raise ValueError("hostnames: only a certificate the mesh issues (issuer: mesh)")
        if self.certificate is None:
            raise ValueError("certificate: required (or issuer: mesh)")
        leaf = _chain(self.certificate)[0]
        if self.private_key is not None:
            key = _private_key(self.private_key.get_secret_value())
            if _public_der(key) != _public_der(leaf.public_key()):
                raise ValueError("private_key: does not match the certificate's public key")
        return self

    def _mesh_issued(self) -> Self:
        if not self.hostnames:
            raise ValueError("hostnames: the names the mesh CA issues the certificate for")
        if self.private_key is not None:
            raise ValueError("private_key: the mesh CA makes the key of what it issues")
        if self.certificate is not None:
            names = set(certificate_info(self.certificate).dns_names)
            if names != set(self.hostnames):
                raise ValueError(
                    "certificate: does not name exactly the hostnames; leave it out and the "
                    "mesh CA issues one"
                )
        return self

    @property
    def issued(self) -> bool:
        """Whether it holds a certificate (one the mesh is to issue may not yet)."""
        return self.certificate is not None

    @functools.cached_property
    def info(self) -> CertificateInfo:
        """The leaf's subject, names, issuer, validity and fingerprint (parsed once); only for
        an issued one."""
        if self.certificate is None:
            raise ValueError("the mesh CA has not issued this certificate yet")
        return certificate_info(self.certificate)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy without the kept details: `update` may change the certificate."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("info", None)
        return copy

    @property
    def renews_at(self) -> dt.datetime | None:
        """When the mesh CA renews one it issued: once two thirds of its lifetime have passed
        (None for a certificate operators bring: they replace it)."""
        if self.issuer != "mesh":
            return None
        info = self.info
        return info.not_before + (info.not_after - info.not_before) * 2 / 3

    def renewal_due(self, now: dt.datetime) -> bool:
        """Whether the mesh CA renews it now (see `renews_at`)."""
        renews_at = self.renews_at
        return renews_at is not None and now >= renews_at
