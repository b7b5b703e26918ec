"""`meshplane certs ...` and `meshplane ca ...` against a running control plane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from meshplane.cli import ApiClient, app
from meshplane.serve import ControlPlane
from tests.e2e.conftest import make_settings


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(make_settings(tmp_path, ca_overlap_seconds=3600)) as running:
        assert running.authority is not None
        await running.authority.ensure(["service/orders"])
        yield running


async def _cli(plane: ControlPlane, *args: str) -> tuple[int, str]:
    """Run the CLI in a thread: it makes blocking HTTP calls to the server on this loop."""
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--api-url", plane.api_url])
    return result.exit_code, result.output


async def test_certs_list_and_rotate(plane: ControlPlane) -> None:
    code, listed = await _cli(plane, "certs", "list")
    assert code == 0, listed
    assert "spiffe://meshplane.local/service/orders" in listed
    code, rotated = await _cli(plane, "certs", "rotate", "--service", "orders")
    assert code == 0, rotated
    old_serial = listed.splitlines()[1].split()[1]
    assert old_serial not in rotated
    code, refused = await _cli(plane, "certs", "rotate")
    assert code == 1
    assert "exactly one of" in refused
    code, unknown = await _cli(plane, "certs", "rotate", "--service", "nobody")
    assert code == 1
    assert "no certificate for service/nobody" in unknown


async def test_ca_rotate_status_finish(plane: ControlPlane) -> None:
    code, status = await _cli(plane, "ca", "status")
    assert code == 0, status
    assert "phase:        idle" in status
    code, started = await _cli(plane, "ca", "rotate")
    assert code == 0, started
    async with asyncio.timeout(10):
        while "phase:        overlap" not in (await _cli(plane, "ca", "status"))[1]:
            await asyncio.sleep(0.02)
    code, again = await _cli(plane, "ca", "rotate")
    assert code == 1
    assert "already in phase" in again
    code, finished = await _cli(plane, "ca", "finish")
    assert code == 0, finished
    async with asyncio.timeout(10):
        while "phase:        idle" not in (status := (await _cli(plane, "ca", "status"))[1]):
            await asyncio.sleep(0.02)
    assert "retired" in status


async def test_ca_abort_goes_back_to_the_previous_root(plane: ControlPlane) -> None:
    code, refused = await _cli(plane, "ca", "abort")
    assert code == 1
    assert "no root rotation to abort" in refused
    first_serial = (await asyncio.to_thread(_ca_status, plane))["roots"][0]["serial"]
    code, started = await _cli(plane, "ca", "rotate", "--overlap", "3600")
    assert code == 0, started
    async with asyncio.timeout(10):
        while "phase:        overlap" not in (await _cli(plane, "ca", "status"))[1]:
            await asyncio.sleep(0.02)
    code, aborted = await _cli(plane, "ca", "abort")
    assert code == 0, aborted
    async with asyncio.timeout(10):
        while "phase:        idle" not in (status := (await _cli(plane, "ca", "status"))[1]):
            await asyncio.sleep(0.02)
    assert "rotation aborted" in status
    roots = {r["serial"]: r["state"] for r in (await asyncio.to_thread(_ca_status, plane))["roots"]}
    assert roots.pop(first_serial) == "issuing"
    assert list(roots.values()) == ["retired"]


async def test_ca_rotate_overlap_out_of_bounds_names_the_field(plane: ControlPlane) -> None:
    code, refused = await _cli(plane, "ca", "rotate", "--overlap", "1e300")
    assert code == 1
    assert "overlap_seconds" in refused
    assert "phase:        idle" in (await _cli(plane, "ca", "status"))[1]


def _ca_status(plane: ControlPlane) -> dict[str, Any]:
    with ApiClient(plane.api_url) as client:
        return client.ca()
