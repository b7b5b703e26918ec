"""Schemathesis against the whole API, in process, over a real Store on SQLite and PostgreSQL.

The app runs on this test's event loop, where its store and CA were made; Hypothesis runs on a
worker thread and hands each request to the loop. The mesh is seeded first, so generated
requests meet existing names (and references) as well as missing ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from meshplane.api import create_app
from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.errors import Conflict
from meshplane.metrics import Metrics
from meshplane.settings import Settings
from meshplane.store import Store
from meshplane.store.identity import IdentityRepo
from meshplane.xds.status import ProxyStatus, TypeStatus
from tests.support.tokens import bearer, store_token

from .fakes import FakeStatus
from .fuzzing import SEED, AnyCase, Failure, fuzz, operations, summary

BASE_URL = "http://localhost"
# Examples per operation: about 50 operations on two databases take a minute on 2 cores at 60
# (two at 100, a fifth of the whole suite); MESHPLANE_FUZZ_EXAMPLES asks for more.
MAX_EXAMPLES = int(os.environ.get("MESHPLANE_FUZZ_EXAMPLES", "60"))
SEED_TEXT = os.environ.get("MESHPLANE_FUZZ_SEED")
REQUEST_TIMEOUT = 30.0


@dataclass
class Target:
    app: FastAPI
    names: dict[str, list[str]]  # path parameter -> values that exist


def _status() -> FakeStatus:
    """One connected gateway, so /proxies/{node_id}/config has something to find."""
    proxy = ProxyStatus(
        node_id="gateway-edge-9901",
        role="gateway",
        gateway="edge",
        service=None,
        address="127.0.0.1",
        transport="sotw",
        stream_id=1,
        connected_since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        types=[TypeStatus("clusters", "v1", "v1", 1, None)],
    )
    return FakeStatus(
        streams=[proxy], configs={proxy.node_id: {"clusters": [{"name": "frontend"}]}}
    )


@pytest.fixture
async def target(store: Store) -> AsyncIterator[Target]:
    box = SecretBox(b"f" * 32)
    authority = CertificateAuthority(
        IdentityRepo(store.database),
        box,
        CaConfig(trust_domain="mesh.test", convergence_timeout=1.0),
        rng=random.Random(7),
    )
    await authority.start()
    await authority.ensure(["service/orders", "gateway/edge"])
    app = create_app(
        store=store,
        status=_status(),
        settings=Settings(advertise_address="10.1.2.3", xds_port=18123),
        authority=authority,
        metrics=Metrics(),
    )
    transport = httpx.ASGITransport(app=app)
    await store_token(store)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer()
    ) as client:
        for plural, name, spec in SEED:
            response = await client.put(f"/api/v1/{plural}/{name}", json={"spec": spec})
            assert response.status_code == 201, response.text
    names = {"name": sorted({name for _, name, _ in SEED}), "node_id": ["gateway-edge-9901"]}
    yield Target(app, names)
    await _stop_rotation(authority)


async def _stop_rotation(authority: CertificateAuthority) -> None:
    """End a root rotation the fuzzer started, so no task outlives the test."""
    try:
        await authority.finish_rotation()
    except Conflict:
        return
    try:
        async with asyncio.timeout(10):
            await authority.wait_rotation()
    except Exception:  # a rotation the fuzzer broke is what ca/rotate's own tests are about
        pass


async def test_fuzz_the_api(target: Target) -> None:
    loop = asyncio.get_running_loop()
    schema = schemathesis.openapi.from_dict(target.app.openapi())
    transport = httpx.ASGITransport(app=target.app)
    failures: list[Failure] = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:

        def send(case: AnyCase) -> httpx.Response:
            request = client.build_request(**_httpx_kwargs(case))
            future = asyncio.run_coroutine_threadsafe(client.send(request), loop)
            return future.result(REQUEST_TIMEOUT)

        for operation in operations(schema):
            failures += await asyncio.to_thread(
                fuzz,
                operation,
                send,
                names=target.names,
                max_examples=MAX_EXAMPLES,
                seed=int(SEED_TEXT) if SEED_TEXT else None,
            )
    assert not failures, summary(failures)


def _httpx_kwargs(case: AnyCase) -> dict[str, Any]:
    """Schemathesis serialises a case for `requests`; httpx names a raw body `content`."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    if "data" in kwargs and isinstance(kwargs["data"], (bytes, str)):
        kwargs["content"] = kwargs.pop("data")
    headers = kwargs.get("headers") or {}
    if any(key.lower() == "authorization" for key in headers):
        # A case that carries a token carries the admin's (every operation gets past the door);
        # one the fuzzer left without must be refused (401, as declared).
        kwargs["headers"] = {
            **{k: v for k, v in headers.items() if k.lower() != "authorization"},
            **bearer(),
        }
    return {
        key: kwargs[key]
        for key in ("method", "url", "params", "headers", "cookies", "json", "content", "data")
        if kwargs.get(key) is not None and (key != "cookies" or kwargs[key])
    }
