"""A body that Python's json takes but JSON forbids is a 422 naming where, never a 500."""

import json
from typing import Any, cast

import httpx
import pytest

from meshplane.api import create_app
from meshplane.api.json_body import check_json_text
from meshplane.settings import Settings
from meshplane.store import Store

JSON = "application/json"

# (body, Content-Type, words of the reason, the byte offset where the parser stopped)
REFUSED = [
    (b'{"spec": {"protocol": "\\ud800"}}', JSON, "hex escape", 29),  # lone, escaped
    (b'{"spec": {"protocol": "\\udc00x"}}', JSON, "surrogate", 28),
    (b'{"spec": {"protocol": "\xed\xa0\x80"}}', JSON, "unicode", 23),  # lone, as raw bytes
    (b'{"spec": {"protocol": "\xff"}}', JSON, "unicode", 23),  # not UTF-8
    (b'{"spec": {"connect_timeout": NaN}}', JSON, "expected value", 29),
    (b'{"spec": {"connect_timeout": -Infinity}}', JSON, "invalid number", 30),
    (b'{"spec": {"connect_timeout": 1e400}}', JSON, "too large", 29),
    (b'{"spec": {"weight": 9' + b"9" * 400 + b".5}}", JSON, "too large", 20),
    (b"[" * 300 + b"]" * 300, JSON, "recursion", 201),
    # A declared non-JSON Content-Type is refused earlier, with 415 (test_browser_guard.py).
    (b"\xff\xfe{}", None, "Content-Type", 0),
]


async def put(body: bytes, content_type: str | None) -> httpx.Response:
    # No store: a refused body is answered before anything reads the database.
    app = create_app(store=cast(Store, None), status=cast(Any, None), settings=Settings())
    transport = httpx.ASGITransport(app=app)
    headers = {"content-type": content_type} if content_type else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        return await client.put("/api/v1/services/a", content=body, headers=headers)


@pytest.mark.parametrize(("body", "content_type", "reason", "pos"), REFUSED)
async def test_refused_with_the_one_422_shape(
    body: bytes, content_type: str | None, reason: str, pos: int
) -> None:
    response = await put(body, content_type)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", pos]
    assert reason in error["ctx"]["error"]
    assert len(response.content) < 500  # names the problem, never echoes the body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\ud83d\\ude00"}',  # a surrogate pair is one character
        '{"a": "😀 ü"}'.encode(),
        b'{"a": "NaN", "b": "Infinity"}',  # words in strings are text
        b'{"a": "\\\\ud800"}',  # an escaped backslash, then text
        b'{"a": 1e308, "b": -1e-400, "c": 1' + b"0" * 400 + b"}",
        b"",
    ],
)
def test_json_text_passes(body: bytes) -> None:
    check_json_text(body, "application/json; charset=utf-8")
    if body:
        json.loads(body)


def test_json_subtypes_are_json() -> None:
    check_json_text(b"{}", "application/merge-patch+json")
    with pytest.raises(json.JSONDecodeError):
        check_json_text(b"{}", "application/x-www-form-urlencoded")


def _operations_with_a_body() -> list[tuple[str, str]]:
    app = create_app(store=cast(Store, None), status=cast(Any, None), settings=Settings())
    return [
        (method.upper(), path.replace("{name}", "a"))
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    ]


@pytest.mark.parametrize(("method", "path"), _operations_with_a_body())
async def test_every_body_is_checked(method: str, path: str) -> None:
    app = create_app(store=cast(Store, None), status=cast(Any, None), settings=Settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.request(
            method, path, content=b'{"a": "\\ud800", "b": NaN}', headers={"content-type": JSON}
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
