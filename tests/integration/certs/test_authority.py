"""The running CA over a real database: issuance, renewal with jitter, restart, root phases."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.errors import Conflict, Unavailable
from meshplane.store import Store, open_store
from meshplane.store.identity import CaLeafRow, IdentityRepo


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'ca.db'}")
    yield opened
    await opened.close()


def _authority(store: Store, clock: Clock, **config: object) -> CertificateAuthority:
    return CertificateAuthority(
        IdentityRepo(store.database),
        SecretBox(b"k" * 32),
        CaConfig(trust_domain="mesh.test", **config),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(7),
    )


async def test_issue_once_and_survive_a_restart(store: Store) -> None:
    clock = Clock()
    ca = _authority(store, clock)
    await ca.start()
    seen: list[int] = []
    ca.subscribe(lambda state: seen.append(state.version))
    await ca.ensure(["service/a", "service/a", "gateway/edge"])
    await ca.ensure(["service/a"])  # already issued: nothing happens
    assert seen == [ca.state.version]
    assert sorted(ca.state.leaves) == ["gateway/edge", "service/a"]
    assert len(ca.state.trust_bundle) == 1

    again = _authority(store, clock)
    await again.start()
    assert again.state.trust_bundle == ca.state.trust_bundle
    assert {s: leaf.serial for s, leaf in again.state.leaves.items()} == {
        s: leaf.serial for s, leaf in ca.state.leaves.items()
    }


async def test_renewal_at_about_half_lifetime_with_jitter(store: Store) -> None:
    clock = Clock()
    ca = _authority(store, clock, leaf_ttl=dt.timedelta(hours=24))
    await ca.start()
    await ca.ensure([f"service/s{i}" for i in range(20)])
    leaves = list(ca.state.leaves.values())
    shares = [
        (leaf.renew_at - leaf.not_before) / (leaf.not_after - leaf.not_before) for leaf in leaves
    ]
    assert all(0.45 <= s <= 0.55 for s in shares)
    assert len({round(s, 4) for s in shares}) > 1  # jittered, not all at once
    old = {s: leaf.serial for s, leaf in ca.state.leaves.items()}

    clock.now += dt.timedelta(hours=14)  # past every renewal time (12 h give or take 10 %)
    runner = asyncio.create_task(ca.run())
    try:
        async with asyncio.timeout(5):
            while any(ca.state.leaves[s].serial == serial for s, serial in old.items()):
                await asyncio.sleep(0.01)
    finally:
        runner.cancel()


class UnreachableAtFirst(IdentityRepo):
    """Saving leaves fails as if the database were down, `times` times."""

    times = 0

    async def save_leaves(self, rows: Sequence[CaLeafRow]) -> None:
        if self.times > 0:
            self.times -= 1
            raise Unavailable("the database is unreachable; try again shortly")
        await super().save_leaves(rows)


async def test_renewal_waits_out_an_unreachable_store(store: Store) -> None:
    clock = Clock()
    repo = UnreachableAtFirst(store.database)
    ca = CertificateAuthority(
        repo, SecretBox(b"k" * 32), CaConfig(trust_domain="mesh.test"), clock=clock
    )
    await ca.start()
    await ca.ensure(["service/a"])
    old = ca.state.leaves["service/a"].serial
    repo.times = 2
    clock.now += dt.timedelta(hours=14)  # past the renewal time
    runner = asyncio.create_task(ca.run())
    try:
        async with asyncio.timeout(10):
            while ca.state.leaves["service/a"].serial == old:
                assert not runner.done()
                await asyncio.sleep(0.01)
        assert repo.times == 0
    finally:
        runner.cancel()


async def test_root_rotation_phases_wait_for_convergence(store: Store) -> None:
    clock = Clock()
    ca = _authority(store, clock, overlap=dt.timedelta(hours=1))
    await ca.start()
    await ca.ensure(["service/a"])
    first_root = ca.state.trust_bundle[0]
    acknowledged = asyncio.Event()

    async def converged(version: int) -> bool:
        return acknowledged.is_set()

    ca.converged = converged
    status = await ca.start_root_rotation()
    assert status.phase == "adding-root"
    assert len(ca.state.trust_bundle) == 2  # both trusted before anything is signed by the new
    old_serial = ca.state.leaves["service/a"].issuer_serial
    with pytest.raises(Conflict):
        await ca.start_root_rotation()
    await asyncio.sleep(0.05)
    assert ca.status().phase == "adding-root"  # stays until every proxy has the new bundle
    acknowledged.set()
    async with asyncio.timeout(5):
        while ca.status().phase != "overlap":
            await asyncio.sleep(0.01)
    assert ca.state.leaves["service/a"].issuer_serial != old_serial
    assert len(ca.state.trust_bundle) == 2
    await ca.finish_rotation()
    await ca.wait_rotation()
    assert ca.status().phase == "idle"
    assert first_root not in ca.state.trust_bundle
    assert len(ca.state.trust_bundle) == 1
    assert sorted(r.state for r in ca.status().roots) == ["issuing", "retired"]
