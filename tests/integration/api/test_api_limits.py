"""Request bodies are bounded, and error answers never echo more than an excerpt of the input.

Over a real uvicorn server: a body over MESHPLANE_MAX_BODY_BYTES is a 413 before it is read
(declared with Content-Length, or streamed in chunks), and a 422 stays small whatever it got.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from meshplane.api import create_app
from meshplane.settings import Settings
from meshplane.store import open_store
from tests.support.api_server import served
from tests.support.tokens import bearer, store_token

from .fakes import FakeStatus

LIMIT = 64 * 1024


@pytest.fixture
async def base_url(tmp_path) -> AsyncIterator[str]:
    """The API (on SQLite: the limits do not depend on the database) behind a real server."""
    store = await open_store(f"sqlite:///{tmp_path / 'mesh.db'}")
    settings = Settings(max_body_bytes=LIMIT)
    app = create_app(store=store, status=FakeStatus(), settings=settings)
    await store_token(store)
    try:
        async with served(app) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        await store.close()


async def test_a_declared_body_over_the_limit_is_413_before_a_byte_of_it_is_read(base_url):
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        # 200 MB announced, none sent: the answer must come without waiting for the body.
        writer.write(
            b"PUT /api/v1/services/x HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = int(
                next(
                    line.split(b":", 1)[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            body = await reader.readexactly(length)
    finally:
        writer.close()
    assert status == b"413"
    assert b"larger than 65536 bytes" in body


async def test_a_streamed_body_over_the_limit_is_413_and_nothing_is_stored(base_url):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"spec": {"protocol": "http"}, "padding": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    async with httpx.AsyncClient(base_url=base_url, trust_env=False, headers=bearer()) as client:
        answer = await client.put(
            "/api/v1/services/x", content=chunks(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413
        assert answer.json() == {
            "detail": "the request body is larger than 65536 bytes (MESHPLANE_MAX_BODY_BYTES)"
        }
        assert (await client.get("/api/v1/services/x")).status_code == 404
        # A body within the limit still goes through.
        ok = await client.put("/api/v1/services/x", json={"spec": {"protocol": "http"}})
        assert ok.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"spec": {"protocol": "x" * 60_000}},
        {"spec": {"hosts": ["A" * 60_000]}},
        {"spec": ["x" * 1000] * 50},
        {"spec": {"connect_timeout": "9" * 60_000}},
    ],
)
async def test_a_422_echoes_only_an_excerpt_of_the_input(base_url, body):
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, headers=bearer()) as client:
        answer = await client.put("/api/v1/services/x", json=body)
    assert answer.status_code == 422
    assert len(answer.content) < 2000
    assert answer.json()["detail"][0]["loc"][:2] == ["body", "spec"]


async def test_a_lone_surrogate_is_a_422_not_a_500(base_url):
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, headers=bearer()) as client:
        answer = await client.put(
            "/api/v1/services/x",
            content=b'{"spec": {"protocol": "\\ud800"}}',
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"
