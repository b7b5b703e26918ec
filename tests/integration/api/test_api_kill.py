"""A write the API acknowledged survives a kill -9 of `meshplane serve`, on SQLite and PostgreSQL.

Each round: a client writes services one after another, the process is killed (SIGKILL, no
goodbye) while writes are in flight, and a new process on the same database must hold every
write that was answered 2xx, and start at all.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.support.control_plane import meshplane_serve
from tests.support.ports import free_ports
from tests.support.tokens import bearer

ROUNDS = 3
WRITES_BEFORE_KILL = 25


async def _write_until_killed(
    base_url: str, process: asyncio.subprocess.Process, first: int, acknowledged: list[str]
) -> None:
    """PUT services first, first+1, ...; kill the process once WRITES_BEFORE_KILL are answered,
    with the next writes still going."""
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, timeout=5, headers=bearer()
    ) as http:

        async def writer(offset: int) -> None:
            for n in range(first + offset, first + 10_000, 2):
                name = f"s{n}"
                try:
                    answer = await http.put(f"/api/v1/services/{name}", json={"spec": {}})
                except httpx.TransportError:
                    return
                # 200: a write of the previous round that committed but was not answered.
                assert answer.status_code in (200, 201), answer.text
                acknowledged.append(name)
                if len(acknowledged) - first >= WRITES_BEFORE_KILL:
                    process.send_signal(signal.SIGKILL)

        async with asyncio.timeout(30):
            await asyncio.gather(writer(0), writer(1))


async def test_acknowledged_writes_survive_kill_9(database_url: str, tmp_path: Path):
    api_port, xds_port = free_ports(2)
    base_url = f"http://127.0.0.1:{api_port}"
    acknowledged: list[str] = []
    for _ in range(ROUNDS):
        async with meshplane_serve(database_url, api_port, xds_port, tmp_path) as process:
            await _write_until_killed(base_url, process, len(acknowledged), acknowledged)
            assert await process.wait() == -signal.SIGKILL
    async with (
        meshplane_serve(database_url, api_port, xds_port, tmp_path),
        httpx.AsyncClient(base_url=base_url, trust_env=False, headers=bearer()) as http,
    ):
        stored = {item["name"] for item in (await http.get("/api/v1/services")).json()["items"]}
    assert len(acknowledged) >= ROUNDS * WRITES_BEFORE_KILL
    assert set(acknowledged) <= stored
