"""The CA routes over a real store and a real CertificateAuthority: root import checks, overlap
bounds, abort, and the error shapes OpenAPI declares for them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from meshplane.api import create_app
from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.settings import Settings
from meshplane.store import Store
from meshplane.store.identity import IdentityRepo
from tests.support.certificates import MadeCa, key_usage, make_ca, now
from tests.support.tokens import admin_client, store_token

from .fakes import FakeStatus


@pytest.fixture
async def authority(store: Store) -> CertificateAuthority:
    ca = CertificateAuthority(
        IdentityRepo(store.database),
        SecretBox(b"k" * 32),
        CaConfig(trust_domain="mesh.test", overlap=dt.timedelta(seconds=60)),
    )
    await ca.start()
    await ca.ensure(["service/orders", "gateway/edge"])
    return ca


@pytest.fixture
async def api(store: Store, authority: CertificateAuthority) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store=store, status=FakeStatus(), settings=Settings(), authority=authority)
    await store_token(store)
    async with admin_client(app) as client:
        yield client


def _body(made: MadeCa, chain: list[MadeCa] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "certificate": made.cert_pem,
        "private_key": made.key_pem,
        "chain": "".join(c.cert_pem for c in chain),
        **extra,
    }


async def _wait_phase(api: httpx.AsyncClient, phase: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            status: dict[str, Any] = (await api.get("/api/v1/ca")).json()
            if status["phase"] == phase:
                return status
            assert "failed" not in status["detail"], status
            await asyncio.sleep(0.01)


def _one_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert isinstance(errors, list), errors
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    assert set(error) >= {"loc", "msg", "type"}
    return error


# -- defect: a root without SubjectKeyIdentifier stuck the rotation at "reissuing: failed" ------


async def test_imported_root_without_ski_rotates_to_the_end(
    api: httpx.AsyncClient, authority: CertificateAuthority
) -> None:
    imported = make_ca(ski=False)
    started = await api.post("/api/v1/ca/rotate", json=_body(imported))
    assert started.status_code == 202, started.text
    await _wait_phase(api, "overlap")
    expected = x509.SubjectKeyIdentifier.from_public_key(imported.cert.public_key()).digest
    for leaf in authority.leaves():
        cert = x509.load_pem_x509_certificate(leaf.cert_chain_pem.encode())
        cert.verify_directly_issued_by(imported.cert)
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == expected
    assert (await api.post("/api/v1/ca/finish")).status_code == 200
    status = await _wait_phase(api, "idle")
    assert sorted(r["state"] for r in status["roots"]) == ["issuing", "retired"]


# -- defect: root import accepted what the CA cannot use; every refusal is one 422 shape -------

_EXPIRED = now() - dt.timedelta(days=1)


def _not_ca() -> dict[str, Any]:
    return _body(make_ca(ca=False))


def _no_constraints() -> dict[str, Any]:
    return _body(make_ca(ca=None))


def _no_cert_sign() -> dict[str, Any]:
    return _body(make_ca(usage=key_usage(cert_sign=False)))


def _wrong_key() -> dict[str, Any]:
    return {**_body(make_ca()), "private_key": make_ca().key_pem}


def _ed25519() -> dict[str, Any]:
    return _body(make_ca(key=ed25519.Ed25519PrivateKey.generate()))


def _small_rsa() -> dict[str, Any]:
    return _body(make_ca(key=rsa.generate_private_key(public_exponent=65537, key_size=1024)))


def _odd_curve() -> dict[str, Any]:
    return _body(make_ca(key=ec.generate_private_key(ec.SECP256K1())))


def _expired() -> dict[str, Any]:
    return _body(make_ca(not_before=_EXPIRED - dt.timedelta(days=9), not_after=_EXPIRED))


def _not_yet_valid() -> dict[str, Any]:
    return _body(make_ca(not_before=now() + dt.timedelta(days=1)))


def _too_short() -> dict[str, Any]:
    return _body(make_ca(not_after=now() + dt.timedelta(hours=2)))  # leaves live 24 h


def _intermediate_without_chain() -> dict[str, Any]:
    return _body(make_ca("intermediate", issuer=make_ca()))


def _chain_not_signing() -> dict[str, Any]:
    root = make_ca()
    impostor = make_ca(key=ec.generate_private_key(ec.SECP256R1()))  # same name, other key
    return _body(make_ca("intermediate", issuer=root), [impostor])


def _chain_not_ending_in_root() -> dict[str, Any]:
    root = make_ca()
    middle = make_ca("middle", issuer=root)
    return _body(make_ca("intermediate", issuer=middle), [middle])


def _chain_path_length() -> dict[str, Any]:
    root = make_ca(path_length=0)
    middle = make_ca("middle", issuer=root)
    return _body(make_ca("intermediate", issuer=middle), [middle, root])


def _code_signing_only() -> dict[str, Any]:
    return _body(make_ca(eku=[ExtendedKeyUsageOID.CODE_SIGNING]))


def _other_trust_domain() -> dict[str, Any]:
    return _body(make_ca(permitted_uris=["other.example"]))


def _unreadable_key() -> dict[str, Any]:
    return {**_body(make_ca()), "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"}


def _malformed_extension() -> dict[str, Any]:
    made = make_ca(ca=None)
    garbage = x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x00\x01")
    cert = (
        x509.CertificateBuilder()
        .subject_name(made.cert.subject)
        .issuer_name(made.cert.subject)
        .public_key(made.key.public_key())
        .serial_number(1)
        .not_valid_before(made.cert.not_valid_before_utc)
        .not_valid_after(made.cert.not_valid_after_utc)
        .add_extension(garbage, critical=True)
        .sign(made.key, hashes.SHA256())
    )
    return _body(MadeCa(cert, made.key))


def _cert_and_chain_in_one_field() -> dict[str, Any]:
    root = make_ca()
    inter = make_ca("intermediate", issuer=root)
    return {**_body(inter), "certificate": inter.cert_pem + root.cert_pem}


def _key_without_certificate() -> dict[str, Any]:
    return {"private_key": make_ca().key_pem}


def _certificate_without_key() -> dict[str, Any]:
    return {"certificate": make_ca().cert_pem}


def _chain_alone() -> dict[str, Any]:
    return {"chain": make_ca().cert_pem}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (_not_ca, "certificate", "not a CA"),
        (_no_constraints, "certificate", "not a CA"),
        (_no_cert_sign, "certificate", "keyCertSign"),
        (_wrong_key, "private_key", "does not belong"),
        (_ed25519, "private_key", "Ed25519"),
        (_small_rsa, "private_key", "1024"),
        (_odd_curve, "private_key", "secp256k1"),
        (_expired, "certificate", "expired"),
        (_not_yet_valid, "certificate", "not valid before"),
        (_too_short, "certificate", "expires"),
        (_intermediate_without_chain, "chain", "self-signed root"),
        (_chain_not_signing, "chain", "signature"),
        (_chain_not_ending_in_root, "chain", "self-signed root"),
        (_chain_path_length, "chain", "path length"),
        (_code_signing_only, "certificate", "serverAuth"),
        (_other_trust_domain, "certificate", "mesh.test"),
        (_unreadable_key, "private_key", "cannot read"),
        (_malformed_extension, "certificate", "cannot read"),
        (_cert_and_chain_in_one_field, "certificate", "chain"),
        (_key_without_certificate, "certificate", "both"),
        (_certificate_without_key, "private_key", "both"),
        (_chain_alone, "certificate", "chain"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_unusable_import_is_one_422_naming_the_field(
    api: httpx.AsyncClient,
    authority: CertificateAuthority,
    body: Callable[[], dict[str, Any]],
    field: str,
    words: str,
) -> None:
    before = authority.state
    error = _one_error(await api.post("/api/v1/ca/rotate", json=body()))
    assert error["loc"] == ["body", field]
    assert words.lower() in error["msg"].lower(), error["msg"]
    assert "PRIVATE KEY" not in error["msg"]
    assert authority.state is before  # nothing stored, nothing announced
    assert (await api.get("/api/v1/ca")).json()["phase"] == "idle"


async def test_a_lone_surrogate_in_a_pem_field_is_a_422(api: httpx.AsyncClient) -> None:
    # Escaped, Python's json reads it; it is still not Unicode text, so the body is refused as
    # JSON, naming the byte where it stands.
    body = json.dumps({**_body(make_ca()), "certificate": "\ud800"})
    response = await api.post(
        "/api/v1/ca/rotate", content=body, headers={"content-type": "application/json"}
    )
    error = _one_error(response)
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", body.index("\\ud800") + len("\\ud800")]
    assert (await api.get("/api/v1/ca")).json()["phase"] == "idle"


async def test_usable_intermediate_with_its_chain_is_accepted(api: httpx.AsyncClient) -> None:
    root = make_ca(path_length=1, ski=False)
    inter = make_ca("intermediate", issuer=root, path_length=0, ski=False)
    started = await api.post("/api/v1/ca/rotate", json=_body(inter, [root]))
    assert started.status_code == 202, started.text
    await _wait_phase(api, "overlap")


# -- defect: overlap_seconds unbounded (1e300 was a 500) ------------------------------------


@pytest.mark.parametrize("overlap", [1e300, -1, 365 * 86400 + 1])
async def test_overlap_out_of_bounds_is_a_422_on_the_field(
    api: httpx.AsyncClient, overlap: float
) -> None:
    error = _one_error(await api.post("/api/v1/ca/rotate", json={"overlap_seconds": overlap}))
    assert error["loc"] == ["body", "overlap_seconds"]
    assert (await api.get("/api/v1/ca")).json()["phase"] == "idle"


async def test_overlap_bound_is_stated_in_the_schema(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]["RotateRoot"]
    overlap = schema["properties"]["overlap_seconds"]
    bounds = next(s for s in overlap["anyOf"] if s.get("type") == "number")
    assert bounds["minimum"] == 0
    assert bounds["maximum"] == 365 * 86400
    assert "365 days" in overlap["description"]


# -- abort, and the answers OpenAPI declares ------------------------------------------------


async def test_abort_with_nothing_to_abort_is_a_409_error_out(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/ca/abort")
    assert response.status_code == 409
    assert response.json() == {"detail": "no root rotation to abort"}


async def test_abort_an_imported_root_without_ski_returns_to_the_previous_root(
    api: httpx.AsyncClient, authority: CertificateAuthority
) -> None:
    before = authority.state.trust_bundle
    issuers = {leaf.issuer_serial for leaf in authority.leaves()}
    started = await api.post("/api/v1/ca/rotate", json=_body(make_ca(ski=False)))
    assert started.status_code == 202, started.text
    await _wait_phase(api, "overlap")
    second = await api.post("/api/v1/ca/rotate", json={})
    assert second.status_code == 409
    assert "already in phase 'overlap'" in second.json()["detail"]
    aborted = await api.post("/api/v1/ca/abort")
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["phase"] == "aborting"
    await _wait_phase(api, "idle")
    assert authority.state.trust_bundle == before
    assert {leaf.issuer_serial for leaf in authority.leaves()} == issuers
    assert (await api.post("/api/v1/ca/finish")).status_code == 409


async def test_openapi_declares_every_answer_of_the_ca_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    declared = {
        (path, method): set(operation["responses"])
        for path, methods in paths.items()
        if path.startswith(("/api/v1/ca", "/api/v1/certificates"))
        for method, operation in methods.items()
    }
    auth = {"401", "403"}  # every one of them needs a token, and a role
    read, write = {"400", "403"}, {"400", "403", "415"}  # the browser guard's, on every operation
    read, write = read | auth, write | auth
    assert declared == {
        ("/api/v1/certificates", "get"): {"200", "503"} | read,
        ("/api/v1/certificates/rotate", "post"): {"200", "404", "413", "422", "503"} | write,
        ("/api/v1/ca", "get"): {"200", "503"} | read,
        ("/api/v1/ca/rotate", "post"): {"202", "409", "413", "422", "503"} | write,
        ("/api/v1/ca/finish", "post"): {"200", "409", "503"} | write,
        ("/api/v1/ca/abort", "post"): {"200", "409", "503"} | write,
    }
    error_out = {"$ref": "#/components/schemas/ErrorOut"}
    conflict = paths["/api/v1/ca/abort"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == error_out
