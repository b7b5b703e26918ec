"""The CA on two replicas of one PostgreSQL database: each follows what the other stores, a
rotation started through a follower is run by the leader and seen by both, two replicas
issuing one new identity at once converge on one certificate, and a new leader finishes the
rotation the old one left."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest

from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.store import IdentityRepo, RevisionListener
from tests.conftest import _postgres_schema, postgres_url, schema_store
from tests.support.ca_gate import Gate

pytestmark = pytest.mark.postgres


@contextlib.asynccontextmanager
async def _replica(schema: str, *, leading: bool) -> AsyncIterator[CertificateAuthority]:
    """A CA on its own connections to `schema`, hearing the other replicas' CA writes."""
    async with schema_store(postgres_url(), schema) as store:
        ca = CertificateAuthority(
            IdentityRepo(store.database),
            SecretBox(b"k" * 32),
            CaConfig(trust_domain="mesh.test"),
            converged=Gate(is_open=True),
            leading=leading,
        )
        await ca.start()
        listener = RevisionListener(
            store.database, store.feed.publish, asyncio.get_running_loop(), ca.hear
        )
        listener.start()
        watching = asyncio.create_task(ca.watch(every=5.0))  # notices, not the periodic read
        try:
            assert await asyncio.to_thread(listener.listening.wait, 10)
            yield ca
        finally:
            watching.cancel()
            await ca._stop_rotation()
            await asyncio.to_thread(listener.stop)


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def _serials(ca: CertificateAuthority) -> dict[str, str]:
    return {subject: leaf.serial for subject, leaf in ca.state.leaves.items()}


async def test_a_rotation_started_through_a_follower_is_run_by_the_leader() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema, leading=True) as a, _replica(schema, leading=False) as b:
            assert b.state.trust_bundle == a.state.trust_bundle
            await b.ensure(["service/web"])  # a follower issues a new identity itself
            await _until(lambda: _serials(a) == _serials(b))
            first = a.state.leaves["service/web"].issuer_serial

            started = await b.start_root_rotation(overlap=dt.timedelta(hours=1))
            assert started.phase == "adding-root"
            await _until(lambda: a.status().phase == b.status().phase == "overlap")
            assert len(a.state.trust_bundle) == len(b.state.trust_bundle) == 2
            assert _serials(a) == _serials(b)
            assert b.state.leaves["service/web"].issuer_serial != first
            assert "leader" in b.status().detail  # the follower says who runs the steps

            await b.finish_rotation()
            await _until(lambda: a.status().phase == b.status().phase == "idle")
            assert a.state.trust_bundle == b.state.trust_bundle
            assert len(a.state.trust_bundle) == 1
            assert a.state.version == b.state.version


async def test_two_replicas_issuing_one_identity_at_once_converge_on_one_certificate() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema, leading=True) as a, _replica(schema, leading=False) as b:
            subjects = [f"service/s{i}" for i in range(5)]
            await asyncio.gather(a.ensure(subjects), b.ensure(subjects))
            await _until(lambda: set(subjects) <= set(_serials(a)) & set(_serials(b)))
            await _until(lambda: _serials(a) == _serials(b))
            async with schema_store(postgres_url(), schema) as store:
                stored = await IdentityRepo(store.database).changes_since(0)
            assert {row.subject: row.serial for row in stored.leaves} == _serials(a)


async def test_a_new_leader_finishes_the_rotation_the_old_one_left() -> None:
    with _postgres_schema(postgres_url()) as schema:
        async with _replica(schema, leading=True) as a, _replica(schema, leading=False) as b:
            a.converged = Gate(is_open=False)  # its proxies never catch up: it stays stuck
            await a.start_root_rotation(overlap=dt.timedelta(0))
            await _until(lambda: b.status().phase == "adding-root")
            await asyncio.sleep(0.2)
            assert a.status().phase == "adding-root"

            a.set_leading(False)  # it lost the lock (killed, cut off): b takes over
            b.set_leading(True)
            await _until(lambda: b.status().phase == "idle")
            await _until(lambda: a.status().phase == "idle")
            assert len(a.state.trust_bundle) == len(b.state.trust_bundle) == 1
            assert _serials(a) == _serials(b)
            issuers = {leaf.issuer_serial for leaf in b.state.leaves.values()}
            (issuing,) = [r.serial for r in b.status().roots if r.state == "issuing"]
            assert issuers <= {issuing}
