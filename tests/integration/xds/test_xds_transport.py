"""What the xDS port accepts: TLS off loopback, and a node token on every RPC it exposes.

A real control plane bound on a non-loopback address of this machine (or on 0.0.0.0, reached
through 127.0.0.1, when the machine has none) and real gRPC clients.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from cryptography import x509
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest

from meshplane.model import XDS_SERVER
from meshplane.serve import ControlPlane
from meshplane.xds import AdsServer
from meshplane.xds.server import ADS_SERVICE
from meshplane.xds.type_urls import CLUSTER
from tests.e2e.conftest import make_settings
from tests.support.ads_client import AdsClient, node
from tests.support.tokens import node_token


def _reachable_address() -> str | None:
    """A non-loopback IPv4 address this machine has (`hostname -I`), or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for word in out.split():
        try:
            address = ipaddress.ip_address(word)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback:
            return word
    return None


_ADDRESS = _reachable_address()
# Where the server binds, and where a client on this machine reaches it.
BIND, CONNECT = (_ADDRESS, _ADDRESS) if _ADDRESS else ("0.0.0.0", "127.0.0.1")


async def _gateway(plane: ControlPlane, node_id: str, token: str | None = None) -> Any:
    """The gateway edge's node, with a valid token issued for it unless `token` is given."""
    assert plane.store is not None
    token = await node_token(plane.store, "gateway/edge") if token is None else token
    return node(node_id, {"role": "gateway", "gateway": "edge", "token": token})


@pytest.fixture
async def exposed(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    """xDS on a non-loopback address, with no TLS flag at all."""
    async with ControlPlane(make_settings(tmp_path, xds_host=BIND)) as plane:
        yield plane


async def test_off_loopback_xds_refuses_a_plaintext_client(exposed: ControlPlane) -> None:
    assert exposed.settings.xds_serves_tls
    async with AdsClient(
        exposed.xds_port, await _gateway(exposed, "edge-1"), host=CONNECT
    ) as client:
        client.request(CLUSTER)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.recv()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_off_loopback_xds_serves_the_mesh_certificate(
    exposed: ControlPlane, tmp_path: Path
) -> None:
    """A TLS client that trusts the mesh roots, and only them, completes the handshake and finds
    the control plane's SPIFFE ID (Envoy checks it: tests/e2e/test_xds_transport.py)."""
    assert exposed.authority is not None
    roots = tmp_path / "roots.pem"
    roots.write_text("".join(exposed.authority.state.trust_bundle))
    context = ssl.create_default_context(cafile=str(roots))
    context.check_hostname = False  # a SPIFFE certificate names a URI, not a host
    context.set_alpn_protocols(["h2"])
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(CONNECT, exposed.xds_port, ssl=context), 5
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [XDS_SERVER.spiffe_id(exposed.settings.trust_domain)]


async def test_xds_plaintext_is_a_choice_said_out_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshplane")
    settings = make_settings(tmp_path, xds_host=BIND, xds_plaintext=True)
    async with (
        ControlPlane(settings) as plane,
        AdsClient(plane.xds_port, await _gateway(plane, "edge-1"), host=CONNECT) as client,
    ):
        client.request(CLUSTER)
        assert (await client.recv()).type_url == CLUSTER
    warnings = [r.getMessage() for r in caplog.records if r.name == "meshplane.tls"]
    assert warnings == [
        f"xDS listens on {BIND} in plaintext (--xds-plaintext): node tokens cross the network "
        "in clear"
    ]


# The request message of each RPC; the test below fails when the server exposes one more.
_REQUESTS = {
    "StreamAggregatedResources": DiscoveryRequest,
    "DeltaAggregatedResources": DeltaDiscoveryRequest,
}


def test_the_test_knows_every_rpc_the_server_exposes() -> None:
    none = cast(Any, None)
    assert set(AdsServer(none, none, none).methods()) == set(_REQUESTS)


@pytest.mark.parametrize("method", sorted(_REQUESTS))
@pytest.mark.parametrize("token", ["", "forged"], ids=["missing", "wrong"])
async def test_every_rpc_checks_the_node_token(tmp_path: Path, method: str, token: str) -> None:
    async with (
        ControlPlane(make_settings(tmp_path)) as plane,  # loopback, plaintext: the token alone
        grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}") as channel,
    ):
        request_type = _REQUESTS[method]
        call = channel.stream_stream(
            f"/{ADS_SERVICE}/{method}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=lambda b: b,
        )
        first = request_type(type_url=CLUSTER, node=await _gateway(plane, "edge-1", token))
        stream = call(iter([first]))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "path",
    [
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/Check",
        f"/{ADS_SERVICE}/Unknown",
    ],
)
async def test_nothing_else_is_served(tmp_path: Path, path: str) -> None:
    async with (
        ControlPlane(make_settings(tmp_path)) as plane,
        grpc.aio.insecure_channel(f"127.0.0.1:{plane.xds_port}") as channel,
    ):
        call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(b"", timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_sidecar_with_a_valid_token_is_served(tmp_path: Path) -> None:
    """The control for the refusals above: the same call with the right token is answered."""
    async with (
        ControlPlane(make_settings(tmp_path)) as plane,
        AdsClient(plane.xds_port, await _gateway(plane, "edge-1")) as client,
    ):
        client.request(CLUSTER)
        assert (await client.recv()).type_url == CLUSTER
