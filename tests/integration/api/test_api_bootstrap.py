"""GET /api/v1/bootstrap: defaults from the server, 422 naming what is missing or wrong."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
import yaml

from meshplane.model import NODE_TOKEN_HEADER
from meshplane.settings import Settings
from meshplane.store import NODE_ROLE, Store, TokenRepo, hash_token

SIDECAR: dict[str, str | int] = {
    "role": "sidecar",
    "service": "b",
    "inbound_port": 15001,
    "app_port": 8080,
    "outbound_port": 15002,
}


def xds_address(document: dict[str, Any]) -> dict[str, Any]:
    (cluster,) = document["static_resources"]["clusters"]
    (locality,) = cluster["load_assignment"]["endpoints"]
    (endpoint,) = locality["lb_endpoints"]
    address: dict[str, Any] = endpoint["endpoint"]["address"]["socket_address"]
    return address


async def test_gateway_bootstrap_is_yaml_with_server_defaults(
    api: httpx.AsyncClient, store: Store, settings: Settings
):
    response = await api.get("/api/v1/bootstrap", params={"role": "gateway", "gateway": "edge"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    document = yaml.safe_load(response.text)
    assert document["node"]["id"] == "gateway-edge-9901"
    metadata = document["node"]["metadata"]["meshplane"]
    token = metadata.pop("token")
    assert metadata == {"role": "gateway", "gateway": "edge", "admin_port": 9901}
    # Its node token is issued for it, stored hashed, named in a header, valid for a year.
    (issued,) = await TokenRepo(store.database).all((NODE_ROLE,))
    assert issued.name == response.headers[NODE_TOKEN_HEADER]
    assert issued.token_hash == hash_token(token)
    assert token not in str(issued)
    assert issued.identity == "gateway/edge"
    assert issued.expires_at is not None
    lifetime = issued.expires_at - issued.created_at
    assert lifetime == timedelta(seconds=settings.node_token_ttl_seconds)
    assert xds_address(document) == {"address": "10.1.2.3", "port_value": 18123}
    assert document["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"


async def test_sidecar_bootstrap_as_json_with_overrides(api: httpx.AsyncClient):
    params: dict[str, str | int] = {
        **SIDECAR,
        "format": "json",
        "delta": "true",
        "admin_port": 9902,
        "node_id": "b-one",
        "xds_host": "cp.internal",
        "xds_port": 19000,
        "address": "10.0.0.7",
    }
    response = await api.get("/api/v1/bootstrap", params=params)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["node"]["id"] == "b-one"
    assert document["node"]["cluster"] == "b"
    assert document["node"]["metadata"]["meshplane"]["address"] == "10.0.0.7"
    assert document["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    assert xds_address(document) == {"address": "cp.internal", "port_value": 19000}


async def test_default_node_id_is_role_name_and_admin_port(api: httpx.AsyncClient):
    response = await api.get("/api/v1/bootstrap", params={**SIDECAR, "format": "json"})
    assert response.json()["node"]["id"] == "sidecar-b-9901"


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"role": "gateway"}, ["gateway"]),
        ({"role": "sidecar", "service": "b"}, ["inbound_port", "app_port", "outbound_port"]),
        ({"role": "sidecar", "inbound_port": 1, "app_port": 2, "outbound_port": 3}, ["service"]),
    ],
)
async def test_missing_parameters_for_the_role_are_422_naming_them(api, params, missing):
    response = await api.get("/api/v1/bootstrap", params=params)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", m] for m in missing]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"role": "router", "gateway": "edge"}, ["query", "role"]),
        ({"role": "gateway", "gateway": "Edge!"}, ["query", "gateway"]),
        ({**SIDECAR, "app_port": 70000}, ["query", "app_port"]),
        ({**SIDECAR, "format": "xml"}, ["query", "format"]),
        # Labels its auto-registered endpoint would refuse: the sidecar would never register.
        ({**SIDECAR, "label": "version"}, ["query", "label"]),
        ({**SIDECAR, "label": "version=v 2"}, ["query", "label"]),
        ({**SIDECAR, "label": "-x=v2"}, ["query", "label"]),
        ({**SIDECAR, "label": "k" * 100 + "=v2"}, ["query", "label"]),
        ({**SIDECAR, "label": "version=\u00ff"}, ["query", "label"]),
    ],
)
async def test_bad_parameters_are_422_naming_them(api, params, loc):
    response = await api.get("/api/v1/bootstrap", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({**SIDECAR, "app_port": 15001}, "15001"),  # ports collide
        ({"role": "gateway", "gateway": "edge", "service": "b"}, "sidecar options"),
        ({**SIDECAR, "address": "not-an-ip"}, "address"),
    ],
)
async def test_inconsistent_options_are_422_with_the_reason(api, params, words):
    response = await api.get("/api/v1/bootstrap", params=params)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"][0]["msg"]
