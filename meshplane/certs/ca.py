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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Authority",
    "IssuedLeaf",
    "KeyType",
    "PrivateKey",
    "issue_leaf",
    "load_authority",
    "new_root",
    "spiffe_id",
]

KeyType = Literal["ecdsa", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_BACKDATE = dt.timedelta(minutes=5)  # tolerate clock skew between the CA and the proxies


def spiffe_id(trust_domain: str, kind: str, name: str) -> str:
    """`spiffe://meshplane.local/service/orders`: the identity of one service (or gateway)."""
    return f"spiffe://{trust_domain}/{kind}/{name}"


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
    """Sign a leaf for SPIFFE ID `identity`, usable as TLS client and server certificate.

    Never outlives its issuer: the validity ends at the issuer's expiry at the latest.
    """
    import ipaddress

    key = _new_key(key_type)
    not_before = now - _BACKDATE
    not_after = min(now + ttl, authority.cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity)]
    sans += [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    issuer_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
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
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
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


def load_authority(cert_pem: str, key_pem: str | bytes, chain_pem: str = "") -> Authority:
    """Read a user-supplied CA (a root, or an intermediate with its chain up to the root).

    Raises ValueError naming what is wrong: not a CA, key does not match, chain does not end in
    a self-signed root, or does not link up.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        chain = (
            tuple(x509.load_pem_x509_certificates(chain_pem.encode())) if chain_pem.strip() else ()
        )
        key = serialization.load_pem_private_key(
            key_pem.encode() if isinstance(key_pem, str) else key_pem, password=None
        )
    except ValueError as exc:
        raise ValueError(f"cannot read the PEM data: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("private_key: only ECDSA and RSA keys are supported")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("private_key does not belong to certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("certificate is not a CA certificate (basicConstraints CA:TRUE)")
    top = chain[-1] if chain else cert
    if top.issuer != top.subject:
        raise ValueError("chain must end with the self-signed root (or certificate must be one)")
    for child, parent in zip((cert, *chain), chain, strict=False):
        if child.issuer != parent.subject:
            raise ValueError("chain does not link: each certificate must be issued by the next")
    return Authority(cert, key, chain)
