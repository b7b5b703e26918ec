"""What an imported CA must be before the mesh rotates to it, checked with `now` passed in.

A rotation that accepts a CA it cannot use stops half-way, with every proxy already trusting the
new root; so everything the CA will need is checked up front, each refusal naming the field
(certificate, private_key or chain) and the reason:
- the key is one the CA signs with (`SIGNING_KEYS`);
- every certificate from the CA up to the root may sign certificates (CA flag, keyCertSign when
  key usage is given, path length), allows TLS server and client use when it restricts extended
  key usage, and permits the trust domain when it constrains URI names;
- each is valid now and for at least one leaf lifetime (leaves never outlive their issuers);
- each certificate's signature verifies with the key of the one above it, up to a root that signs
  itself;
- a test leaf signed with the key verifies against the certificate.
A missing SubjectKeyIdentifier is no refusal: leaves name their issuer by the identifier computed
from its public key (ca.key_identifier).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from meshplane.certs.ca import (
    SIGNING_KEYS,
    Authority,
    CaField,
    UnusableAuthority,
    issue_leaf,
)
from meshplane.model import Subject

__all__ = ["check_import"]

_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MIN_RSA_BITS = 2048
_E = TypeVar("_E", bound=x509.ExtensionType)
_TLS_USES = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def check_import(
    authority: Authority, now: dt.datetime, *, trust_domain: str, min_lifetime: dt.timedelta
) -> None:
    """Refuse (UnusableAuthority) a CA that could not sign the mesh's leaves until `min_lifetime`
    from `now`; return if it can."""
    _check_key(authority.key)
    certs = (authority.cert, *authority.chain)
    for index, cert in enumerate(certs):
        where: CaField = "chain" if index else "certificate"
        name = f"chain[{index - 1}]" if index else "certificate"
        _check_signing_rights(where, name, cert, below=index)
        _check_validity(where, name, cert, now, min_lifetime)
        _check_name_constraints(where, name, cert, trust_domain)
    for index in range(len(certs)):
        _check_signed(certs, index, "chain" if authority.chain else "certificate")
    _check_test_leaf(authority, now, trust_domain)


def _check_signed(certs: tuple[x509.Certificate, ...], index: int, where: CaField) -> None:
    """certs[index] verifies with the key above it (the root with its own)."""
    child = certs[index]
    parent = certs[index + 1] if index + 1 < len(certs) else child
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        name = f"chain[{index - 1}]" if index else "certificate"
        signer = "its own key (a root signs itself)" if parent is child else f"chain[{index}]"
        raise UnusableAuthority(
            where, f"{name}'s signature does not verify with {signer}"
        ) from None


def _check_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise UnusableAuthority(
                "private_key",
                f"private_key is a {key.key_size}-bit RSA key; the CA signs with {SIGNING_KEYS}",
            )
    elif not isinstance(key.curve, _CURVES):
        raise UnusableAuthority(
            "private_key",
            f"private_key is on curve {key.curve.name}; the CA signs with {SIGNING_KEYS}",
        )


def _extension(cert: x509.Certificate, cls: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _check_signing_rights(where: CaField, name: str, cert: x509.Certificate, below: int) -> None:
    """`below`: how many CA certificates sit under `cert` (its path length must allow them)."""
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise UnusableAuthority(where, f"{name} is not a CA certificate (basicConstraints CA:TRUE)")
    if constraints.path_length is not None and constraints.path_length < below:
        raise UnusableAuthority(
            where,
            f"{name} allows a path length of {constraints.path_length} below it, but "
            f"{below} CA certificate(s) sit under it",
        )
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise UnusableAuthority(where, f"{name}'s key usage does not allow keyCertSign")
    uses = _extension(cert, x509.ExtendedKeyUsage)
    if (
        uses is not None
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in uses
        and not set(uses) >= _TLS_USES
    ):
        raise UnusableAuthority(
            where,
            f"{name}'s extended key usage must allow serverAuth and clientAuth: mesh "
            "certificates are used both ways",
        )
    if not cert.subject.rdns:
        raise UnusableAuthority(where, f"{name} has an empty subject; a CA must name itself")


def _check_validity(
    where: CaField,
    name: str,
    cert: x509.Certificate,
    now: dt.datetime,
    min_lifetime: dt.timedelta,
) -> None:
    if cert.not_valid_before_utc > now:
        raise UnusableAuthority(
            where, f"{name} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    if cert.not_valid_after_utc <= now:
        raise UnusableAuthority(
            where, f"{name} expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    if cert.not_valid_after_utc < now + min_lifetime:
        raise UnusableAuthority(
            where,
            f"{name} expires at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC, less than one "
            f"leaf lifetime ({int(min_lifetime.total_seconds())} s) from now",
        )


def _permits(subtree: str, host: str) -> bool:
    """RFC 5280 4.2.1.10 for URIs: ".example.com" permits its subdomains, "example.com" itself."""
    if subtree.startswith("."):
        return host.endswith(subtree)
    return host == subtree


def _check_name_constraints(
    where: CaField, name: str, cert: x509.Certificate, trust_domain: str
) -> None:
    constraints = _extension(cert, x509.NameConstraints)
    if constraints is None:
        return
    permitted = [
        t.value
        for t in constraints.permitted_subtrees or ()
        if isinstance(t, x509.UniformResourceIdentifier)
    ]
    excluded = [
        t.value
        for t in constraints.excluded_subtrees or ()
        if isinstance(t, x509.UniformResourceIdentifier)
    ]
    if (permitted and not any(_permits(p, trust_domain) for p in permitted)) or any(
        _permits(e, trust_domain) for e in excluded
    ):
        raise UnusableAuthority(
            where,
            f"{name}'s name constraints do not permit URIs in the trust domain {trust_domain}",
        )


def _check_test_leaf(authority: Authority, now: dt.datetime, trust_domain: str) -> None:
    """Sign one throw-away leaf the way every leaf will be signed, and verify it."""
    identity = Subject.service("import-check").spiffe_id(trust_domain)
    try:
        leaf = issue_leaf(authority, identity, now, ttl=dt.timedelta(minutes=1))
        x509.load_pem_x509_certificate(leaf.cert_chain_pem.encode()).verify_directly_issued_by(
            authority.cert
        )
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise UnusableAuthority(
            "certificate", f"the CA cannot sign a leaf that verifies: {exc}"
        ) from None
