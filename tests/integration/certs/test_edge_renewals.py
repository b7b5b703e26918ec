"""Edge certificates the mesh issued follow a root rotation: once the new root issues, each is
signed by it again (long before the old root leaves the trust bundle), by the leader's renewal
job at once and by a write asking again; over a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshplane.certs import (
    CaConfig,
    CertificateAuthority,
    EdgeRenewals,
    SecretBox,
    issued_spec,
    renew_edge_certificates,
)
from meshplane.model import TlsCertificateSpec
from meshplane.store import IdentityRepo, Store, open_store
from tests.conftest import TEST_SEALER
from tests.support.ca_gate import Gate

_ASKED = TlsCertificateSpec(issuer="mesh", hostnames=["api.internal"])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'edge.db'}", sealer=TEST_SEALER)
    yield opened
    await opened.close()


@pytest.fixture
async def authority(store: Store) -> AsyncIterator[CertificateAuthority]:
    ca = CertificateAuthority(
        IdentityRepo(store.database),
        SecretBox(b"k" * 32),
        CaConfig(trust_domain="mesh.test", overlap=dt.timedelta(days=7)),
        rng=random.Random(7),
    )
    ca.converged = Gate()
    await ca.start()
    yield ca
    ca.set_leading(False)  # cancels the rotation's task


async def _issue(store: Store, authority: CertificateAuthority) -> str:
    """Store the certificate the mesh issues for `_ASKED`; its PEM chain."""
    spec = await issued_spec(_ASKED, None, authority, dt.datetime.now(dt.UTC))
    await store.put("tls-certificates", "api", spec)
    return await _stored(store)


async def _stored(store: Store) -> str:
    spec = (await store.get("tls-certificates", "api")).spec
    assert isinstance(spec, TlsCertificateSpec)
    assert spec.certificate is not None
    return spec.certificate


async def _promoted(authority: CertificateAuthority) -> None:
    """Start a root rotation and let it go until the new root issues (phase overlap)."""
    before = authority.issuing_serial()
    await authority.start_root_rotation()
    assert isinstance(authority.converged, Gate)
    authority.converged.open = True
    async with asyncio.timeout(10):
        while authority.status().phase != "overlap":
            await asyncio.sleep(0.01)
    assert authority.issuing_serial() != before


async def test_a_rotation_has_the_new_root_sign_again_what_the_mesh_issued(
    store: Store, authority: CertificateAuthority
) -> None:
    now = dt.datetime.now(dt.UTC)
    first = await _issue(store, authority)
    assert authority.issues_now(first)
    assert await renew_edge_certificates(store, authority, now) == []  # not due
    await _promoted(authority)
    assert not authority.issues_now(first)  # the old root signed it: due now
    assert await renew_edge_certificates(store, authority, now) == ["api"]
    renewed = await _stored(store)
    assert renewed != first
    assert authority.issues_now(renewed)
    assert await renew_edge_certificates(store, authority, now) == []
    # Asking again for the same names keeps what the issuing root signed.
    kept = await issued_spec(
        _ASKED, (await store.get("tls-certificates", "api")).spec, authority, now
    )
    assert isinstance(kept, TlsCertificateSpec)
    assert kept.certificate == renewed


async def test_a_write_asking_again_after_the_promotion_gets_the_new_roots(
    store: Store, authority: CertificateAuthority
) -> None:
    first = await _issue(store, authority)
    await _promoted(authority)
    stored = (await store.get("tls-certificates", "api")).spec
    again = await issued_spec(_ASKED, stored, authority, dt.datetime.now(dt.UTC))
    assert isinstance(again, TlsCertificateSpec)
    assert again.certificate is not None
    assert again.certificate != first
    assert authority.issues_now(again.certificate)


async def test_the_leaders_job_renews_at_once_when_the_issuing_root_changes(
    store: Store, authority: CertificateAuthority
) -> None:
    first = await _issue(store, authority)
    renewals = EdgeRenewals(store, authority, every=3600.0)  # its next turn: in an hour
    job = asyncio.create_task(renewals.run())
    try:
        await asyncio.sleep(0.1)  # its first round finds nothing due
        assert await _stored(store) == first
        await _promoted(authority)
        async with asyncio.timeout(10):
            while await _stored(store) == first:
                await asyncio.sleep(0.02)
        assert authority.issues_now(await _stored(store))
        changes = (await store.get("tls-certificates", "api")).updated_by
        assert changes == "mesh-ca"
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
