"""Certificate authority arithmetic: roots, leaves and SPIFFE identities, with `now` passed in.

Pure apart from key generation's randomness: no clock, no storage. ECDSA P-256 by default (small,
fast to issue); RSA 2048 when asked. A leaf carries exactly one URI SAN, the SPIFFE ID
`spiffe://<trust domain>/<kind>/<name>` that Envoy's validation contexts and RBAC match on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SIGNING_KEYS",
    "Authority",
    "CaField",
    "IssuedLeaf",
    "KeyType",
    "PrivateKey",
    "UnusableAuthority",
    "issue_leaf",
    "key_identifier",
    "load_authority",
    "new_root",
]

KeyType = Literal["ecdsa", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_BACKDATE = dt.timedelta(minutes=5)  # tolerate clock skew between the CA and the proxies
# What the CA can sign with (certs/checks.py holds an imported key to it).
SIGNING_KEYS = "ECDSA (P-256, P-384 or P-521) or RSA (2048 bits or more)"
CaField = Literal["certificate", "private_key", "chain"]


class UnusableAuthority(ValueError):
    """A CA the mesh cannot use; `field` says which part of it: certificate, private_key, chain."""

    def __init__(self, field: CaField, message: str) -> None:
        super().__init__(message)
        self.field: CaField = field


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA that can sign leaves: its certificate, key, and the chain up to (and with) its root."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()  # intermediates above `cert`, then the root

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor: the self-signed certificate at the top of the chain."""
        return self.chain[-1] if self.chain else self.cert

    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class IssuedLeaf:
    """A leaf certificate and its key, with the chain Envoy must present (leaf + intermediates)."""

    identity: str  # SPIFFE ID
    cert_chain_pem: str
    key_pem: bytes
    serial: str  # hex
    not_before: dt.datetime
    not_after: dt.datetime


def new_root(
    trust_domain: str, now: dt.datetime, *, ttl: dt.timedelta, key_type: KeyType = "ecdsa"
) -> Authority:
    """A self-signed root for `trust_domain`, valid from a little before `now` for `ttl`."""
    key = _new_key(key_type)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshplane"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"meshplane root {now:%Y-%m-%d %H:%M:%S}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.NameConstraints(
                # URI constraints name the host part, which for SPIFFE IDs is the trust domain.
                permitted_subtrees=[x509.UniformResourceIdentifier(trust_domain)],
                excluded_subtrees=None,
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue_leaf(
    authority: Authority,
    identity: str,
    now: dt.datetime,
    *,
    ttl: dt.timedelta,
    key_type: KeyType = "ecdsa",
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> IssuedLeaf:
    """Sign a leaf for SPIFFE ID `identity` (or, empty, for its DNS names alone: an edge
    certificate), usable as TLS client and server certificate.

    Never outlives its issuers: the validity ends when the first certificate of the chain expires.
    """
    import ipaddress

    key = _new_key(key_type)
    not_before = now - _BACKDATE
    not_after = min(now + ttl, *(c.not_valid_after_utc for c in (authority.cert, *authority.chain)))
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity)] if identity else []
    sans += [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshplane")]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=key_type == "rsa",
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier(key_identifier(authority.cert), None, None),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    # Present the leaf with every intermediate, never the root (the peer has that).
    intermediates = [authority.cert, *authority.chain[:-1]] if authority.chain else []
    chain_pem = "".join(
        c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, *intermediates)
    )
    return IssuedLeaf(
        identity,
        chain_pem,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        format(cert.serial_number, "x"),
        not_before,
        not_after,
    )


def key_identifier(cert: x509.Certificate) -> bytes:
    """The key identifier leaves name their issuer by (AuthorityKeyIdentifier).

    The certificate's SubjectKeyIdentifier when it has one; otherwise the identifier computed from
    its public key as RFC 5280 (4.2.1.2, method 1) describes, so a CA without one still works.
    """
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _read_certificates(field: CaField, pem: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
        for cert in certs:  # parsed lazily: make a malformed extension or key fail here
            _ = cert.extensions, cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise UnusableAuthority(
            field, f"cannot read {field}: not PEM certificates, or a malformed one"
        ) from None
    return certs


def _read_key(pem: str | bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, password=None
        )
    except TypeError:  # encrypted
        raise UnusableAuthority(
            "private_key", "cannot read private_key: it is encrypted; give it unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise UnusableAuthority(
            "private_key", "cannot read private_key: expected a PEM private key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey")
        raise UnusableAuthority(
            "private_key", f"private_key is an {kind} key; the CA signs with {SIGNING_KEYS}"
        )
    return key


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def load_authority(cert_pem: str, key_pem: str | bytes, chain_pem: str = "") -> Authority:
    """Read a CA (a root, or an intermediate with its chain up to the root) from PEM.

    Checks only what makes it a CA at all: readable, one certificate with the CA flag, the key
    belongs to it, and the chain names each issuer in turn up to a self-signed root. What an
    import needs besides (validity, key usage, signatures...) is certs/checks.py's work; stored
    CAs are read with this alone, so a root that aged never stops the control plane starting.
    Raises UnusableAuthority naming the field.
    """
    certs = _read_certificates("certificate", cert_pem)
    if len(certs) != 1:
        raise UnusableAuthority(
            "certificate",
            f"certificate holds {len(certs)} certificates: give the CA's own certificate here "
            "and the certificates above it in chain",
        )
    cert = certs[0]
    chain = tuple(_read_certificates("chain", chain_pem)) if chain_pem.strip() else ()
    key = _read_key(key_pem)
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise UnusableAuthority("private_key", "private_key does not belong to certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise UnusableAuthority(
            "certificate", "certificate is not a CA certificate (basicConstraints CA:TRUE)"
        )
    for index, (child, parent) in enumerate(zip((cert, *chain), chain, strict=False)):
        if child.issuer != parent.subject:
            raise UnusableAuthority(
                "chain",
                f"chain[{index}] ({parent.subject.rfc4514_string()}) did not issue the "
                "certificate below it: give the chain in order, from the issuer up to the root",
            )
    top = chain[-1] if chain else cert
    if top.issuer != top.subject:
        raise UnusableAuthority(
            "chain",
            "chain must end with the self-signed root (give an intermediate's chain up to it)",
        )
    return Authority(cert, key, chain)


@dataclass(frozen=True, slots=True)
class StandIn:
    """A throwaway identity (PEM) that stands in for the real ones where a configuration is
    only checked, never served: a key written to disk for `envoy --mode validate` is this one,
    not a proxy's."""

    cert_chain_pem: str
    key_pem: str
    root_pem: str


def stand_in_identity() -> StandIn:
    """A fresh throwaway root and leaf, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    root = new_root("stand-in.invalid", now, ttl=dt.timedelta(days=1))
    leaf = issue_leaf(root, "spiffe://stand-in.invalid/service/x", now, ttl=dt.timedelta(hours=1))
    return StandIn(leaf.cert_chain_pem, leaf.key_pem.decode(), root.root_pem())
