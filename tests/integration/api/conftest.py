"""The API over a real Store (SQLite and PostgreSQL), a fake status source and fixed settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from meshplane.api import create_app
from meshplane.settings import Settings
from meshplane.store import Store
from tests.support.tokens import ADMIN_TOKEN, admin_client, store_token

from .fakes import FakeStatus


@pytest.fixture(autouse=True)
def cli_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI under test signs in as the servers here expect (`tests.support.tokens`)."""
    monkeypatch.setenv("MESHPLANE_TOKEN", ADMIN_TOKEN)


@pytest.fixture
def status() -> FakeStatus:
    return FakeStatus()


@pytest.fixture
def settings() -> Settings:
    return Settings(advertise_address="10.1.2.3", xds_port=18123)


@pytest.fixture
async def api(
    store: Store, status: FakeStatus, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API, signed in with an admin token."""
    app = create_app(store=store, status=status, settings=settings)
    await store_token(store)
    async with admin_client(app) as client:
        yield client
