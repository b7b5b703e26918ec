"""PostgreSQL stopped under a running API: 503 with Retry-After, one log line per outage, and
everything back (nothing lost, nothing half-written) once it starts again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import meshplane.store.engine as engine_module
from meshplane.api import create_app
from meshplane.settings import Settings
from meshplane.store import Store, open_store
from tests.support.postgres_cluster import PostgresCluster, private_cluster
from tests.support.tokens import admin_client, store_token

from .fakes import FakeStatus

pytestmark = pytest.mark.postgres

_UNREACHABLE = "the database is unreachable; "


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
async def store(cluster: PostgresCluster) -> AsyncIterator[Store]:
    store = await open_store(cluster.url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store=store, status=FakeStatus(), settings=Settings())
    await store_token(store)
    async with admin_client(app) as client:
        yield client


async def _put(api: httpx.AsyncClient, name: str) -> httpx.Response:
    return await api.put(f"/api/v1/services/{name}", json={"spec": {"protocol": "http"}})


def _unavailable(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and int(response.headers["Retry-After"]) > 0
        and response.json()["detail"].startswith(_UNREACHABLE)
    )


def _lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.message]


async def test_an_outage_answers_503_logs_once_and_recovers_whole(
    api: httpx.AsyncClient,
    store: Store,
    cluster: PostgresCluster,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO)
    assert (await _put(api, "before")).status_code == 201
    assert (await api.get("/readyz")).status_code == 200

    await cluster.stop()
    calls = [
        _put(api, "during"),
        api.get("/api/v1/services/before"),
        api.get("/api/v1/services"),
        api.delete("/api/v1/services/before"),
        api.get("/readyz"),
        _put(api, "during"),
    ]
    answers = [await call for call in calls]
    assert all(_unavailable(a) for a in answers), [a.text for a in answers]
    assert (await api.get("/healthz")).json() == {"status": "alive"}
    info = await api.get("/api/v1/server")
    assert info.status_code == 200
    assert info.json()["database"] == "unreachable"
    assert info.json()["revision"] == 1
    assert len(_lines(caplog, logging.WARNING, "database unreachable since")) == 1
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert "postgres@" not in caplog.text  # no URL (with its credentials) in a log line

    await cluster.start()
    assert (await api.get("/readyz")).status_code == 200
    assert len(_lines(caplog, logging.INFO, "database reachable again after")) == 1
    assert (await _put(api, "after")).status_code == 201
    names = [item["name"] for item in (await api.get("/api/v1/services")).json()["items"]]
    assert names == ["after", "before"]
    assert (await api.get("/api/v1/server")).json()["database"] == "reachable"
    assert len(_lines(caplog, logging.WARNING, "database unreachable since")) == 1

    # The database itself, read afresh: one revision and one change per accepted write.
    fresh = await open_store(cluster.url)
    try:
        assert await fresh.revision() == 2
        changes = await fresh.changes_since(0)
        assert changes is not None
        assert [(c.revision, c.name) for c in changes] == [(1, "before"), (2, "after")]
    finally:
        await fresh.close()


async def test_a_restart_between_calls_costs_no_caller_a_503(
    api: httpx.AsyncClient,
    cluster: PostgresCluster,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    """The pool's connections died with the server; the next call reconnects instead of
    failing on one of them."""
    monkeypatch.setattr(engine_module, "_PING_AFTER_IDLE_S", 0.0)  # every pooled connection is idle
    assert (await _put(api, "a")).status_code == 201
    assert (await api.get("/api/v1/services/a")).status_code == 200
    await cluster.stop()
    await cluster.start()
    assert (await _put(api, "b")).status_code == 201
    assert (await api.get("/api/v1/services/a")).status_code == 200
    assert "unreachable" not in caplog.text


async def test_writes_racing_the_stop_are_whole(
    api: httpx.AsyncClient, store: Store, cluster: PostgresCluster
):
    """Writes keep coming while the server shuts down: each answered write is stored with its
    own revision, each refused one is a 503, and no revision is left without its change."""
    accepted: list[str] = []
    stopping = None
    for i in range(400):
        if i == 20:
            stopping = asyncio.create_task(cluster.stop())
        response = await _put(api, f"s{i}")
        if response.status_code == 201:
            accepted.append(f"s{i}")
        else:
            assert _unavailable(response), response.text
        if stopping is not None and stopping.done() and response.status_code == 503:
            break
    else:
        pytest.fail("no write was refused with the server stopped")
    assert stopping is not None
    assert accepted
    await stopping
    await cluster.start()
    stored = [item["name"] for item in (await api.get("/api/v1/services")).json()["items"]]
    revision = (await api.get("/api/v1/server")).json()["revision"]
    assert set(accepted) <= set(stored)
    assert revision == len(stored)  # every revision is one whole write
