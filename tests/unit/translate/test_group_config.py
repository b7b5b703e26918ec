"""group_config: one call builds all a group gets (telemetry, secrets), changing nothing given."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import meshplane.xds.translate as translate
from meshplane.model import IdentityState, Leaf, Mesh
from meshplane.xds.translate import OWN_SECRETS, group_config, group_resources
from meshplane.xds.translate.telemetry import with_telemetry
from meshplane.xds.translate.transport_sockets import TRUST_SECRET
from meshplane.xds.type_urls import CLUSTER, LISTENER, ROUTE, SECRET
from tests.support.meshes import endpoint, gateway_group, mesh, service, sidecar_group

_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _mesh() -> Mesh:
    return mesh(service("orders"), endpoint("orders-1", "orders", "10.0.0.1", 8080))


def _leaf(subject: str) -> Leaf:
    spiffe = f"spiffe://meshplane.local/{subject}"
    return Leaf(subject, spiffe, "CHAIN", b"KEY", "1", "0", _EPOCH, _EPOCH, _EPOCH)


def _names(messages: list[Any]) -> list[str]:
    return [m.name for m in messages]


def _bytes(resources: dict[str, list[Any]]) -> dict[str, list[bytes]]:
    return {k: [m.SerializeToString(deterministic=True) for m in v] for k, v in resources.items()}


def test_a_group_gets_its_routing_with_telemetry_and_its_secrets() -> None:
    identities = IdentityState(
        "meshplane.local", 3, ("ROOT",), {"service/orders": _leaf("service/orders")}
    )
    config = group_config(_mesh(), sidecar_group("orders"), identities)
    assert set(config) == {CLUSTER, LISTENER, ROUTE, SECRET}
    bare = group_resources(_mesh(), sidecar_group("orders"))
    assert _bytes(config)[ROUTE] == _bytes(bare)[ROUTE]
    assert _bytes(config)[LISTENER] != _bytes(bare)[LISTENER]  # access logs (on by default)
    assert sorted(_names(config[SECRET])) == sorted(OWN_SECRETS)


def test_a_group_without_its_certificate_yet_gets_the_trust_bundle_only() -> None:
    identities = IdentityState("meshplane.local", 1, ("ROOT",))
    config = group_config(_mesh(), gateway_group("edge"), identities)
    assert _names(config[SECRET]) == [TRUST_SECRET]


def test_telemetry_leaves_the_resources_it_is_given_alone() -> None:
    resources = group_resources(_mesh(), sidecar_group("orders"))
    before = _bytes(resources)
    lists = {k: id(v) for k, v in resources.items()}
    instrumented = with_telemetry(_mesh(), sidecar_group("orders"), resources)
    assert _bytes(resources) == before
    assert {k: id(v) for k, v in resources.items()} == lists
    assert all(instrumented[k] is not resources[k] for k in resources)


@pytest.mark.parametrize(
    "path", sorted(Path(translate.__file__).parent.glob("*.py")), ids=lambda p: p.name
)
def test_translation_imports_no_io_package(path: Path) -> None:
    """Pure translation: never the CA, the store, gRPC or a database driver."""
    forbidden = ("meshplane.certs", "meshplane.store", "grpc", "sqlalchemy", "cryptography")
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            assert not name.startswith(forbidden), f"{path} imports {name}"
