"""The OpenAPI document declares every error answer, each in its one shape."""

from typing import Any, cast

import pytest

from meshplane.api import create_app
from meshplane.api.openapi import ERROR_SCHEMA, VALIDATION_SCHEMA
from meshplane.settings import Settings
from meshplane.store import Store

DOCUMENT: dict[str, Any] = create_app(
    store=cast(Store, None), status=cast(Any, None), settings=Settings()
).openapi()
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]
# Operations that answer without the database: the connected proxies and the metrics registry
# are in memory; liveness touches nothing; the server's info falls back to what this process
# knows while the database is unreachable. (A bootstrap issues a node token: a write.)
IN_MEMORY = {
    "GET /healthz",
    "GET /api/v1/server",
    "GET /metrics",
    "GET /api/v1/proxies",
    "GET /api/v1/tokens/me",  # the caller, already known
    "GET /api/v1/proxies/{node_id}/config",
}


def _schema(response: dict[str, Any]) -> Any:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=[label for label, _ in OPERATIONS])
def test_every_error_answer_has_its_one_shape(label: str, operation: dict[str, Any]) -> None:
    errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
    for code, response in errors.items():
        expected = VALIDATION_SCHEMA if code == "422" else ERROR_SCHEMA
        assert _schema(response) == expected, f"{label} {code}: {response}"
        assert set(response["content"]) == {"application/json"}, f"{label} {code}"


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=[label for label, _ in OPERATIONS])
def test_every_operation_declares_what_it_can_answer(label: str, operation: dict[str, Any]) -> None:
    codes = set(operation["responses"])
    if "requestBody" in operation:
        assert {"413", "422"} <= codes, label
    if operation.get("parameters"):
        assert "422" in codes, label
    if any(p["name"] == "If-Match" for p in operation.get("parameters", [])):
        assert "412" in codes, label
    assert ("503" in codes) == (label not in IN_MEMORY), label


def test_the_shapes_are_the_documented_ones() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["ErrorOut"]["required"] == ["detail"]
    assert schemas["ErrorOut"]["properties"]["detail"]["type"] == "string"
    item = schemas["HTTPValidationError"]["properties"]["detail"]["items"]["$ref"]
    assert set(schemas[item.rsplit("/", 1)[1]]["required"]) >= {"loc", "msg", "type"}
