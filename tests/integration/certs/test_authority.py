"""The running CA over a real database: issuance, renewal with jitter, restart, root phases."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.ca import issue_leaf
from meshplane.certs.keystore import SecretBox
from meshplane.errors import Conflict, Unavailable
from meshplane.store import Store, open_store
from meshplane.store.identity import CaLeafRow, IdentityRepo
from tests.support.ca_gate import Gate


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

    async def save_leaves(self, rows: Sequence[CaLeafRow], *, replace: bool = True) -> None:
        if self.times > 0:
            self.times -= 1
            raise Unavailable("the database is unreachable; try again shortly")
        await super().save_leaves(rows, replace=replace)


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


# -- abort, and the overlap a rotation is given ----------------------------------------------


async def _phase(ca: CertificateAuthority, phase: str) -> None:
    async with asyncio.timeout(5):
        while ca.status().phase != phase:
            await asyncio.sleep(0.01)


def _issuers(ca: CertificateAuthority) -> set[str]:
    return {leaf.issuer_serial for leaf in ca.state.leaves.values()}


def _states(ca: CertificateAuthority) -> dict[int, str]:
    return {r.id: r.state for r in ca.status().roots}


async def test_abort_in_adding_root_drops_the_new_root_at_once(store: Store) -> None:
    ca = _authority(store, Clock())
    await ca.start()
    await ca.ensure(["service/a"])
    before, issuers = ca.state.trust_bundle, _issuers(ca)
    ca.converged = Gate()
    await ca.start_root_rotation()
    assert len(ca.state.trust_bundle) == 2
    status = await ca.abort_rotation()
    assert status.phase == "idle"
    assert ca.state.trust_bundle == before
    assert _issuers(ca) == issuers  # nothing was signed by the new root
    assert sorted(_states(ca).values()) == ["issuing", "retired"]
    with pytest.raises(Conflict, match="no root rotation to abort"):
        await ca.abort_rotation()


async def test_abort_in_overlap_reissues_from_the_previous_root_before_dropping_the_new(
    store: Store,
) -> None:
    ca = _authority(store, Clock())
    await ca.start()
    await ca.ensure(["service/a", "gateway/edge"])
    before, issuers = ca.state.trust_bundle, _issuers(ca)
    gate = ca.converged = Gate(is_open=True)
    await ca.start_root_rotation(overlap=dt.timedelta(hours=1))
    await _phase(ca, "overlap")
    assert _issuers(ca) != issuers
    gate.open = False  # the proxies are slow to take the previous root's leaves
    status = await ca.abort_rotation()
    assert status.phase == "aborting"
    with pytest.raises(Conflict, match="being aborted"):
        await ca.abort_rotation()
    with pytest.raises(Conflict):
        await ca.finish_rotation()
    with pytest.raises(Conflict):
        await ca.start_root_rotation()
    async with asyncio.timeout(5):
        while _issuers(ca) != issuers:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(ca.state.trust_bundle) == 2  # both trusted until every proxy has the new leaves
    assert ca.status().phase == "aborting"
    gate.open = True
    await _phase(ca, "idle")
    assert ca.state.trust_bundle == before
    assert sorted(_states(ca).values()) == ["issuing", "retired"]

    again = _authority(store, Clock())  # and so it stays after a restart
    await again.start()
    assert again.state.trust_bundle == before
    assert _issuers(again) == issuers


async def test_an_abort_cut_by_a_restart_completes_on_start(store: Store) -> None:
    ca = _authority(store, Clock())
    await ca.start()
    await ca.ensure(["service/a"])
    before, issuers = ca.state.trust_bundle, _issuers(ca)
    gate = ca.converged = Gate(is_open=True)
    await ca.start_root_rotation()
    await _phase(ca, "overlap")
    gate.open = False
    await ca.abort_rotation()
    await ca._stop_rotation()  # the control plane stops here

    again = _authority(store, Clock())
    await again.start()
    await again.wait_rotation()
    assert again.status().phase == "idle"
    assert again.state.trust_bundle == before
    assert _issuers(again) == issuers


async def test_abort_refused_when_the_previous_root_can_no_longer_sign(store: Store) -> None:
    clock = Clock()
    ca = _authority(store, clock, root_ttl=dt.timedelta(days=2), leaf_ttl=dt.timedelta(hours=24))
    await ca.start()
    ca.converged = Gate(is_open=True)
    clock.now += dt.timedelta(days=1, hours=12)  # the first root has 12 h left: less than a leaf
    await ca.start_root_rotation()
    await _phase(ca, "overlap")
    with pytest.raises(Conflict, match="previous root"):
        await ca.abort_rotation()
    assert ca.status().phase == "overlap"


async def test_a_failed_rotation_can_be_aborted_and_the_next_takes_its_own_overlap(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ca = _authority(store, clock)
    await ca.start()
    await ca.ensure(["service/a"])
    before, issuers = ca.state.trust_bundle, _issuers(ca)

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("cannot sign")

    with monkeypatch.context() as patch:
        patch.setattr("meshplane.certs.authority.issue_leaf", broken)
        await ca.start_root_rotation(overlap=dt.timedelta(seconds=60))
        await ca.wait_rotation()
    assert ca.status().phase == "reissuing"
    assert "failed" in ca.status().detail
    with pytest.raises(Conflict, match="abort it"):  # not silently on top of the failed one
        await ca.start_root_rotation(overlap=dt.timedelta(seconds=3600))

    await ca.abort_rotation()
    await _phase(ca, "idle")
    assert ca.state.trust_bundle == before
    assert _issuers(ca) == issuers

    clock.now += dt.timedelta(minutes=5)
    await ca.start_root_rotation(overlap=dt.timedelta(seconds=3600))
    await _phase(ca, "overlap")
    outgoing = [r for r in ca.status().roots if r.state == "outgoing"]
    assert [r.retire_at for r in outgoing] == [clock.now + dt.timedelta(seconds=3600)]
    assert len(ca.state.trust_bundle) == 2


async def test_a_failed_rotation_can_be_finished(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = _authority(store, Clock())
    await ca.start()
    await ca.ensure(["service/a"])
    issuers = _issuers(ca)
    with monkeypatch.context() as patch:
        patch.setattr("meshplane.certs.authority.issue_leaf", lambda *a, **k: 1 / 0)
        await ca.start_root_rotation()
        await ca.wait_rotation()
    assert "failed" in ca.status().detail
    await ca.finish_rotation()
    await _phase(ca, "idle")
    assert _issuers(ca).isdisjoint(issuers)
    assert len(ca.state.trust_bundle) == 1


async def test_an_overlap_of_zero_is_zero_not_the_default(store: Store) -> None:
    ca = _authority(store, Clock(), overlap=dt.timedelta(hours=1))
    await ca.start()
    await ca.start_root_rotation(overlap=dt.timedelta(0))
    await _phase(ca, "idle")
    assert len(ca.state.trust_bundle) == 1


async def test_a_failed_renewal_is_retried_not_the_end_of_renewals(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meshplane.certs import authority as module

    clock = Clock()
    ca = _authority(store, clock)
    await ca.start()
    await ca.ensure(["service/a"])
    old = ca.state.leaves["service/a"].serial
    failures = [ValueError("database away")]
    real = issue_leaf

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "issue_leaf", flaky)
    monkeypatch.setattr(module, "_RETRY_SECONDS", 0.05)
    clock.now += dt.timedelta(hours=14)
    runner = asyncio.create_task(ca.run())
    try:
        async with asyncio.timeout(5):
            while ca.state.leaves["service/a"].serial == old:
                await asyncio.sleep(0.01)
    finally:
        runner.cancel()
    assert failures == []
