"""CA arithmetic: SPIFFE leaves, chains, validity bounds, imported CAs, sealed keys, tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshplane.certs.ca import issue_leaf, key_identifier, load_authority, new_root
from meshplane.certs.keystore import SecretBox, load_secret
from meshplane.model import Subject
from tests.support.certificates import make_ca, now

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _uris(pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


def test_leaf_carries_exactly_its_spiffe_id_and_never_outlives_its_root() -> None:
    root = new_root("mesh.test", NOW, ttl=dt.timedelta(hours=10))
    leaf = issue_leaf(
        root, Subject.service("orders").spiffe_id("mesh.test"), NOW, ttl=dt.timedelta(days=2)
    )
    assert _uris(leaf.cert_chain_pem) == ["spiffe://mesh.test/service/orders"]
    assert leaf.not_after == root.cert.not_valid_after_utc
    assert leaf.not_before < NOW  # backdated for clock skew
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pem.encode())
    cert.verify_directly_issued_by(root.cert)


@pytest.mark.parametrize(
    ("key_type", "cls"), [("ecdsa", ec.EllipticCurvePrivateKey), ("rsa", rsa.RSAPrivateKey)]
)
def test_key_types(key_type: str, cls: type) -> None:
    root = new_root("mesh.test", NOW, ttl=dt.timedelta(days=1), key_type=key_type)  # type: ignore[arg-type]
    assert isinstance(root.key, cls)


def test_intermediate_import_presents_its_chain_and_trusts_the_root() -> None:
    root = new_root("mesh.test", NOW, ttl=dt.timedelta(days=30))
    # An intermediate signed by the root, the way an enterprise CA would hand it over.
    inter_key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    inter = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")]))
        .issuer_name(root.cert.subject)
        .public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False
        )
        .sign(root.key, hashes.SHA256())
    )
    key_pem = inter_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    authority = load_authority(
        inter.public_bytes(serialization.Encoding.PEM).decode(), key_pem, root.cert_pem()
    )
    assert authority.root == root.cert
    leaf = issue_leaf(authority, "spiffe://mesh.test/service/a", NOW, ttl=dt.timedelta(hours=1))
    chain = x509.load_pem_x509_certificates(leaf.cert_chain_pem.encode())
    assert [c.subject for c in chain[1:]] == [inter.subject]  # leaf + intermediate, not the root


def test_import_refuses_what_is_not_a_usable_ca() -> None:
    root = new_root("mesh.test", NOW, ttl=dt.timedelta(days=1))
    other = new_root("mesh.test", NOW, ttl=dt.timedelta(days=1))
    with pytest.raises(ValueError, match="does not belong"):
        load_authority(root.cert_pem(), other.key_pem())
    leaf = issue_leaf(root, "spiffe://mesh.test/service/a", NOW, ttl=dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="not a CA"):
        load_authority(leaf.cert_chain_pem, leaf.key_pem)
    with pytest.raises(ValueError, match="cannot read"):
        load_authority("not pem", b"nor this")


def test_sealed_keys_are_not_pem_and_open_only_with_the_same_secret() -> None:
    box = SecretBox(b"s" * 32)
    root = new_root("mesh.test", NOW, ttl=dt.timedelta(days=1))
    sealed = box.seal(root.key_pem())
    assert b"PRIVATE KEY" not in sealed
    assert box.open(sealed) == root.key_pem()
    with pytest.raises(ValueError, match="cannot decrypt"):
        SecretBox(b"t" * 32).open(sealed)


def test_secret_key_file_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "meshplane.key"
    first = load_secret(None, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(None, path) == first
    assert load_secret("from-the-environment", path) == b"from-the-environment"


def test_a_ca_without_subject_key_identifier_signs_leaves_naming_its_computed_key_id() -> None:
    made = make_ca(ski=False)
    authority = load_authority(made.cert_pem, made.key_pem)
    leaf = issue_leaf(authority, "spiffe://mesh.test/service/a", NOW, ttl=dt.timedelta(hours=1))
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pem.encode())
    cert.verify_directly_issued_by(made.cert)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    computed = x509.SubjectKeyIdentifier.from_public_key(made.cert.public_key()).digest
    assert aki.key_identifier == key_identifier(made.cert) == computed
    with_ski = new_root("mesh.test", NOW, ttl=dt.timedelta(days=1))
    ski = with_ski.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert key_identifier(with_ski.cert) == ski.digest


def test_a_leaf_never_outlives_any_certificate_of_its_chain() -> None:
    root = make_ca(not_after=now() + dt.timedelta(hours=3))
    inter = make_ca("intermediate", issuer=root, not_after=now() + dt.timedelta(days=30))
    authority = load_authority(inter.cert_pem, inter.key_pem, root.cert_pem)
    leaf = issue_leaf(authority, "spiffe://mesh.test/service/a", now(), ttl=dt.timedelta(days=1))
    assert leaf.not_after == root.cert.not_valid_after_utc
