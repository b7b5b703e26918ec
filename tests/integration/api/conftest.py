"""The API over a real Store (SQLite and PostgreSQL), a fake status source and fixed settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from meshplane.api import create_app
from meshplane.settings import Settings
from meshplane.store import Store

from .fakes import FakeStatus


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
    app = create_app(store=store, status=status, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client
