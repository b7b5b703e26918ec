"""ApiClient's error mapping and request shapes, over httpx.MockTransport."""

import json

import httpx
import pytest

from meshplane.cli import ApiClient, ApiError, format_loc
from meshplane.model import NodeOptions, Role


def client_answering(
    status: int, body: object, seen: list[httpx.Request] | None = None
) -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return ApiClient("http://meshplane:8080/", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (["body", "spec", "destinations", 0, "service"], "spec.destinations[0].service"),
        (["query", "app_port"], "app_port"),
        (["path", "name"], "name"),
        (["header", "If-Match"], "If-Match"),
        (["spec", "hosts", 2], "spec.hosts[2]"),
        ([], ""),
    ],
)
def test_format_loc(loc, path):
    assert format_loc(loc) == path


def test_plain_detail_becomes_the_message():
    client = client_answering(409, {"detail": "service 'b' is still referenced by routes/r"})
    with pytest.raises(ApiError) as caught:
        client.delete("service", "b")
    assert (caught.value.status, caught.value.message) == (
        409,
        "service 'b' is still referenced by routes/r",
    )


def test_validation_detail_names_each_field():
    detail = [
        {"loc": ["body", "spec", "port"], "msg": "too big", "type": "x"},
        {"loc": ["path", "name"], "msg": "bad name", "type": "y"},
    ]
    with pytest.raises(ApiError, match=r"^spec.port: too big; name: bad name$") as caught:
        client_answering(422, {"detail": detail}).put("services", "B", {})
    assert caught.value.status == 422


def test_non_json_error_keeps_the_status():
    client = ApiClient(
        "http://meshplane",
        transport=httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway")),
    )
    with pytest.raises(ApiError, match="502 Bad Gateway: bad gateway"):
        client.server()


def test_transport_failure_is_status_0():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ApiClient("http://meshplane", transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiError, match="cannot reach meshplane at http://meshplane") as caught:
        client.list("routes")
    assert caught.value.status == 0


def test_put_sends_spec_and_quoted_if_match_and_reports_created():
    seen: list[httpx.Request] = []
    client = client_answering(201, {"name": "b", "version": 4}, seen)
    resource, created = client.put("Service", "b", {"protocol": "grpc"}, if_match=3)
    assert (resource["version"], created) == (4, True)
    (request,) = seen
    assert (request.method, request.url.path) == ("PUT", "/api/v1/services/b")
    assert request.headers["If-Match"] == '"3"'
    assert json.loads(request.content) == {"spec": {"protocol": "grpc"}}


def test_bootstrap_sends_only_given_options():
    seen: list[httpx.Request] = []
    client = client_answering(200, {}, seen)
    client.bootstrap(NodeOptions(role=Role.GATEWAY, gateway="edge"))
    assert dict(seen[0].url.params) == {
        "role": "gateway",
        "gateway": "edge",
        "delta": "false",
        "format": "yaml",
    }


def test_unknown_kind_is_refused_before_any_request():
    seen: list[httpx.Request] = []
    with pytest.raises(ValueError, match="unknown kind"):
        client_answering(200, {}, seen).get("widget", "w")
    assert seen == []


def test_an_unanswered_request_may_have_taken_effect_and_apply_waits_longer():
    timeouts: list[dict[str, float | None]] = []

    def silent(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)

    client = ApiClient("http://meshplane", transport=httpx.MockTransport(silent))
    with pytest.raises(ApiError, match="did not answer within 600s") as caught:
        client.apply([{"kind": "services", "name": "a", "spec": {}}])
    assert caught.value.unanswered
    assert caught.value.status == 0
    with pytest.raises(ApiError, match="may still take effect"):
        client.list("routes")
    assert [t["read"] for t in timeouts] == [600.0, 10.0]  # a batch is one long transaction
