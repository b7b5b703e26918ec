"""Node tokens and secret isolation over a real gRPC ADS stream, and keys at rest."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshplane.serve import ControlPlane
from meshplane.xds.translate.transport_sockets import IDENTITY_SECRET, TRUST_SECRET
from meshplane.xds.type_urls import SECRET
from tests.e2e.conftest import make_settings
from tests.support.ads_client import AdsClient, node
from tests.support.tokens import bearer, node_token


def _sidecar(service: str, token: str | None) -> dict[str, object]:
    meta: dict[str, object] = {
        "role": "sidecar",
        "service": service,
        "inbound_port": 15006,
        "app_port": 8080,
        "outbound_port": 15001,
    }
    if token is not None:
        meta["token"] = token
    return meta


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(make_settings(tmp_path)) as running:
        yield running


async def _secrets(client: AdsClient, names: list[str]) -> dict[str, secret_pb2.Secret]:
    client.request(SECRET, names)
    response = await client.recv()
    client.ack(response, names)
    return {s.name: s for s in (secret_pb2.Secret.FromString(r.value) for r in response.resources)}


async def test_a_node_gets_only_its_own_identity(plane: ControlPlane) -> None:
    assert plane.store is not None
    assert plane.registry is not None
    token = await node_token(plane.store, "service/a")
    async with AdsClient(plane.xds_port, node("a-1", _sidecar("a", token))) as client:
        async with asyncio.timeout(5):
            while IDENTITY_SECRET not in (
                got := await _secrets(client, [IDENTITY_SECRET, TRUST_SECRET])
            ):
                pass
        chain = got[IDENTITY_SECRET].tls_certificate.certificate_chain.inline_string
        assert "BEGIN CERTIFICATE" in chain
        assert plane.authority is not None
        mine = {leaf.subject: leaf for leaf in plane.authority.leaves()}["service/a"]
        assert chain == mine.cert_chain_pem

        # Asking for b's identity, by any name, yields nothing; it is logged and counted.
        probes = ["spiffe://meshplane.local/service/b", "service/b"]
        client.request(SECRET, [IDENTITY_SECRET, TRUST_SECRET, *probes], nonce=client.last_nonce)
        with contextlib.suppress(TimeoutError):
            while True:  # answers may come (the subscription changed); none carries b's key
                response = await client.recv(timeout=0.3)
                names = {secret_pb2.Secret.FromString(r.value).name for r in response.resources}
                assert names <= {IDENTITY_SECRET, TRUST_SECRET}
                client.ack(response, [IDENTITY_SECRET, TRUST_SECRET, *probes])
        assert plane.registry.denied_secret_requests == 2
        (status,) = await _proxies(plane)
        assert status["denied_secrets"] == 2


async def _proxies(plane: ControlPlane) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=plane.api_url, trust_env=False, headers=bearer()) as http:
        items: list[dict[str, object]] = (await http.get("/api/v1/proxies")).json()["items"]
        return items


@pytest.mark.parametrize(
    "token", [None, "forged", "other-service"], ids=["missing", "wrong", "b's"]
)
async def test_a_node_without_a_valid_token_is_refused(
    plane: ControlPlane, token: str | None
) -> None:
    assert plane.store is not None
    if token == "other-service":
        token = await node_token(plane.store, "service/b")  # a token for b does not make you a
    async with AdsClient(plane.xds_port, node("a-1", _sidecar("a", token))) as client:
        client.request(SECRET, [IDENTITY_SECRET])
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.recv()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_keys_in_the_database_are_not_readable_as_pem(
    plane: ControlPlane, tmp_path: Path
) -> None:
    assert plane.authority is not None
    await plane.authority.ensure(["service/a", "gateway/edge"])
    with sqlite3.connect(tmp_path / "mesh.db") as db:
        blobs = [row[0] for row in db.execute("SELECT key_sealed FROM ca_authorities")]
        blobs += [row[0] for row in db.execute("SELECT key_sealed FROM ca_leaves")]
        dump = "\n".join(db.iterdump())
    assert len(blobs) == 3
    for blob in blobs:
        assert b"PRIVATE KEY" not in blob
        assert b"-----BEGIN" not in blob
    assert "PRIVATE KEY" not in dump
