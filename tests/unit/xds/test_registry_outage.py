"""Auto-registration while the store is unreachable: it waits and tries again, without a
traceback, for as long as the sidecar is connected."""

from __future__ import annotations

import asyncio
import logging

import pytest

from meshplane.errors import Conflict, Unavailable
from meshplane.model import EndpointSpec, Proxy, ProxyGroup, Role, ServiceSpec
from meshplane.xds import ProxyRegistry
from meshplane.xds.stream_state import StreamState


class FlakyRegistrar:
    """An EndpointRegistrar whose store is unreachable for the first `down` calls."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.registered: list[str] = []
        self.deregistered: list[str] = []
        self.calls = 0

    def _reach(self) -> None:
        self.calls += 1
        if self.calls <= self.down:
            raise Unavailable("the database is unreachable; try again shortly")

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        self._reach()
        self.registered.append(name)
        return True

    async def deregister(self, name: str) -> None:
        self._reach()
        self.deregistered.append(name)


def _sidecar(node_id: str) -> Proxy:
    group = ProxyGroup(Role.SIDECAR, service="orders", inbound_port=1, app_port=2, outbound_port=3)
    return Proxy(node_id, group)


async def _until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def test_registration_and_removal_wait_out_an_outage(caplog: pytest.LogCaptureFixture):
    registrar = FlakyRegistrar(down=3)
    registry = ProxyRegistry(registrar, grace_seconds=0.01)
    try:
        handle = registry.open(_sidecar("orders-1"), "orders-1", "sotw", StreamState())
        await _until(lambda: registrar.registered == ["orders-1"])
        registrar.down = registrar.calls + 2
        registry.close(handle)
        await _until(lambda: registrar.deregistered == ["orders-1"])
    finally:
        await registry.aclose()
    assert all(r.exc_info is None for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_registration_no_longer_wanted_gives_up():
    registrar = FlakyRegistrar(down=10**6)
    registry = ProxyRegistry(registrar, grace_seconds=3600)
    handle = registry.open(_sidecar("orders-1"), "orders-1", "sotw", StreamState())
    await _until(lambda: registrar.calls >= 1)
    registry.close(handle)
    async with asyncio.timeout(5):  # aclose does not wait for an outage to end
        await registry.aclose()
    assert registrar.registered == []


class RefusingRegistrar(FlakyRegistrar):
    """An EndpointRegistrar whose store refuses the write (the service is stored but invalid)."""

    async def register(self, name: str, spec: EndpointSpec, service: ServiceSpec) -> bool:
        self.calls += 1
        raise Conflict("service 'orders' is stored (version 3) but its spec no longer validates")


async def test_a_refused_registration_is_one_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
):
    registrar = RefusingRegistrar(down=0)
    registry = ProxyRegistry(registrar, grace_seconds=0.01)
    try:
        with caplog.at_level(logging.WARNING, logger="meshplane.xds.auto_registration"):
            registry.open(_sidecar("orders-1"), "orders-1", "sotw", StreamState())
            await _until(lambda: registrar.calls == 1)
            await registry.aclose()
    finally:
        await registry.aclose()
    refused = [r for r in caplog.records if "auto-registration refused" in r.getMessage()]
    assert len(refused) == 1
    assert refused[0].exc_info is None
    assert "no longer validates" in refused[0].getMessage()


async def test_every_connected_sidecar_is_registered_again_on_request() -> None:
    """After this replica was dead to the others (the leader may have removed its sidecars'
    endpoints), each sidecar still connected is registered again."""
    registrar = FlakyRegistrar(down=0)
    registry = ProxyRegistry(registrar, grace_seconds=3600)
    try:
        for node in ("orders-1", "orders-2"):
            registry.open(_sidecar(node), node, "sotw", StreamState())
        await _until(lambda: sorted(registrar.registered) == ["orders-1", "orders-2"])
        registry.register_again()
        await _until(lambda: len(registrar.registered) == 4)
        assert sorted(registrar.registered) == ["orders-1", "orders-1", "orders-2", "orders-2"]
    finally:
        await registry.aclose()
