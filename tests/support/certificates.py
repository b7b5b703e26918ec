"""Real CA certificates of every shape an operator might import, built with `cryptography`.

`make_ca` builds a CA certificate with exactly the extensions asked for (or a broken one: no CA
flag, no SubjectKeyIdentifier, wrong key usage, expired...), so each import check can be shown
with the certificate it refuses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["MadeCa", "key_usage", "make_ca", "make_server_certificate", "now"]

AnyKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class MadeCa:
    cert: x509.Certificate
    key: AnyKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


def key_usage(*, cert_sign: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    name: str = "imported root",
    *,
    issuer: MadeCa | None = None,
    key: AnyKey | None = None,
    ca: bool | None = True,
    path_length: int | None = None,
    ski: bool = True,
    usage: x509.KeyUsage | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    permitted_uris: list[str] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> MadeCa:
    """A CA certificate named `name`, self-signed unless `issuer` signs it.

    `ca=None` leaves out basic constraints; `ski=False` leaves out the SubjectKeyIdentifier;
    `usage` defaults to cert signing allowed; `eku` adds an ExtendedKeyUsage.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "example corp"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    start = now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or start - dt.timedelta(hours=1))
        .not_valid_after(not_after or start + dt.timedelta(days=365))
        .add_extension(usage or key_usage(), critical=True)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if permitted_uris is not None:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.UniformResourceIdentifier(u) for u in permitted_uris],
                excluded_subtrees=None,
            ),
            critical=True,
        )
    signer = issuer.key if issuer else key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return MadeCa(builder.sign(signer, algorithm), key)


SERVER_AND_CLIENT = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def make_server_certificate(
    issuer: MadeCa,
    dns_names: list[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    client: bool = False,
) -> MadeCa:
    """A TLS server certificate for `dns_names` (the first is its common name), signed by
    `issuer`: what an operator gives an https gateway; `client`: a client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or start - dt.timedelta(hours=1))
        .not_valid_after(not_after or start + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return MadeCa(cert, key)
