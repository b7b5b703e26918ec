"""Mesh identity with real Envoys and real TLS: mTLS modes, certificates, rotation, policies."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509

from meshplane.certs.ca import Authority, issue_leaf, load_authority, new_root
from meshplane.serve import ControlPlane
from meshplane.store.identity import IdentityRepo
from tests.e2e.conftest import make_settings, running_mesh
from tests.e2e.identity_mesh import Load, Sidecars, continuous_load, leaf_serials, sidecars
from tests.support.ads_client import AdsClient, gateway_node
from tests.support.backends import HttpBackend
from tests.support.certificates import make_ca
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e


async def _plaintext(port: int) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=2) as http:
        try:
            response = await http.get(f"http://127.0.0.1:{port}/")
        except httpx.TransportError as exc:
            return f"refused: {type(exc).__name__}"
        return answered_by(response)


async def test_mtls_strict_then_permissive_and_certs_show_the_spiffe_id(tmp_path: Path) -> None:
    async with sidecars(tmp_path) as mesh:
        # a -> a's sidecar -> (mTLS) -> b's sidecar -> b works (the fixture waited for it).
        assert (await _plaintext(mesh.b_inbound)).startswith("refused")

        serials = await leaf_serials(mesh.envoy_b)
        certificates = (await mesh.mesh.http.get("/api/v1/certificates")).json()["items"]
        issued = {c["subject"]: c for c in certificates}
        assert (issued["service/b"]["serial"], ["spiffe://meshplane.local/service/b"]) in [
            (s.lstrip("0"), uris) for s, uris in serials
        ]

        await mesh.mesh.put("meshes", "default", {"mtls": "permissive"})
        await wait_until_served(
            f"http://127.0.0.1:{mesh.b_inbound}/", lambda r: answered_by(r) == "b"
        )
        await mesh.wait_a_reaches_b()  # mTLS still works alongside plaintext


async def test_leaf_rotation_under_load_fails_no_request(tmp_path: Path) -> None:
    async with sidecars(tmp_path, fresh_connections=True) as mesh:
        before = dict((s, u) for s, u in await leaf_serials(mesh.envoy_b))
        async with continuous_load(mesh.a_to_b) as load:
            while load.ok < 20:
                await asyncio.sleep(0.01)
            response = await mesh.mesh.http.post("/api/v1/certificates/rotate", json={"all": True})
            assert response.status_code == 200, response.text
            new_serial = next(
                c["serial"] for c in response.json()["items"] if c["subject"] == "service/b"
            )

            async def b_has_new_leaf() -> bool:
                return new_serial in [s.lstrip("0") for s, _ in await leaf_serials(mesh.envoy_b)]

            await mesh.envoy_b.wait_for(b_has_new_leaf)
            target = load.ok + 50
            while load.ok < target and not load.failures:
                await asyncio.sleep(0.01)
        assert load.failures == []
        assert load.ok >= 70
        assert new_serial not in before
        assert mesh.envoy_b.running()  # swapped without a restart
        assert mesh.envoy_a.running()


async def test_root_rotation_all_phases_under_load_fails_no_request(tmp_path: Path) -> None:
    async with sidecars(tmp_path, fresh_connections=True) as mesh:
        http = mesh.mesh.http
        old_roots = (await http.get("/api/v1/ca")).json()["roots"]
        async with continuous_load(mesh.a_to_b) as load:
            while load.ok < 20:
                await asyncio.sleep(0.01)
            started = await http.post("/api/v1/ca/rotate", json={"overlap_seconds": 3600})
            assert started.status_code == 202, started.text
            phases = [started.json()["phase"]]
            async with asyncio.timeout(30):
                while phases[-1] != "overlap":
                    phase = (await http.get("/api/v1/ca")).json()["phase"]
                    if phase != phases[-1]:
                        phases.append(phase)
                    await asyncio.sleep(0.01)
            mark = load.ok
            while load.ok < mark + 30 and not load.failures:
                await asyncio.sleep(0.01)
            finished = await http.post("/api/v1/ca/finish")
            assert finished.status_code == 200, finished.text
            async with asyncio.timeout(30):
                while (await http.get("/api/v1/ca")).json()["phase"] != "idle":
                    await asyncio.sleep(0.01)
            mark = load.ok
            while load.ok < mark + 30 and not load.failures:
                await asyncio.sleep(0.01)
        assert load.failures == []
        assert phases[0] == "adding-root"
        assert "overlap" in phases
        status = (await http.get("/api/v1/ca")).json()
        states = {r["serial"]: r["state"] for r in status["roots"]}
        assert states[old_roots[0]["serial"]] == "retired"
        assert sorted(states.values()) == ["issuing", "retired"]

        # Only the new root is trusted: a leaf signed by a root b does not trust is refused.
        stranger = new_root("meshplane.local", _now(), ttl=_hours(1))
        assert await _handshake_refused(mesh.b_inbound, stranger, tmp_path)
        # ... and so is one signed by the retired root (loaded from the database).
        assert mesh.mesh.plane is not None
        retired = await _authority_with_serial(mesh.mesh.plane, old_roots[0]["serial"])
        assert await _handshake_refused(mesh.b_inbound, retired, tmp_path)


async def test_imported_root_without_ski_serves_mtls_then_abort_goes_back_under_load(
    tmp_path: Path,
) -> None:
    """A root without SubjectKeyIdentifier signs the leaves Envoy serves mTLS with; an abort in
    the overlap brings back the previous root; not one request fails on the way."""
    imported = make_ca(ski=False)
    body = {"certificate": imported.cert_pem, "private_key": imported.key_pem}
    async with sidecars(tmp_path, fresh_connections=True) as mesh:
        http = mesh.mesh.http
        old_root = (await http.get("/api/v1/ca")).json()["roots"][0]["serial"]
        async with continuous_load(mesh.a_to_b) as load:
            while load.ok < 20:
                await asyncio.sleep(0.01)
            started = await http.post("/api/v1/ca/rotate", json={**body, "overlap_seconds": 3600})
            assert started.status_code == 202, started.text
            await _wait_phase(http, "overlap")
            imported_serial = format(imported.cert.serial_number, "x")
            await _wait_envoy_leaf_from(mesh, imported_serial)
            await _more_requests(load, 30)
            aborted = await http.post("/api/v1/ca/abort")
            assert aborted.status_code == 200, aborted.text
            await _wait_phase(http, "idle")
            await _wait_envoy_leaf_from(mesh, old_root)
            await _more_requests(load, 30)
        assert load.failures == []
        status = (await http.get("/api/v1/ca")).json()
        assert {r["serial"]: r["state"] for r in status["roots"]} == {
            old_root: "issuing",
            imported_serial: "retired",
        }
        # b trusts the previous root again, and no longer the imported one.
        assert mesh.mesh.plane is not None
        previous = await _authority_with_serial(mesh.mesh.plane, old_root)
        assert not await _handshake_refused(mesh.b_inbound, previous, tmp_path)
        dropped = load_authority(imported.cert_pem, imported.key_pem)
        assert await _handshake_refused(mesh.b_inbound, dropped, tmp_path)


async def _wait_phase(http: httpx.AsyncClient, phase: str) -> None:
    async with asyncio.timeout(30):
        while (status := (await http.get("/api/v1/ca")).json())["phase"] != phase:
            assert "failed" not in status["detail"], status
            await asyncio.sleep(0.01)


async def _wait_envoy_leaf_from(mesh: Sidecars, issuer_serial: str) -> None:
    """Until b's Envoy serves the leaf the CA issued it from the root `issuer_serial`."""
    items = (await mesh.mesh.http.get("/api/v1/certificates")).json()["items"]
    leaf = next(c for c in items if c["subject"] == "service/b")
    assert leaf["issuer_serial"] == issuer_serial

    async def serves_it() -> bool:
        return leaf["serial"] in [s.lstrip("0") for s, _ in await leaf_serials(mesh.envoy_b)]

    await mesh.envoy_b.wait_for(serves_it)


async def _more_requests(load: Load, count: int) -> None:
    target = load.ok + count
    async with asyncio.timeout(30):
        while load.ok < target and not load.failures:
            await asyncio.sleep(0.01)


async def test_authorization_allowed_identity_200_denied_identity_403(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    async with sidecars(tmp_path) as mesh:
        api = mesh.mesh
        gw_port, admin = free_port(), free_port()
        await api.put("gateways", "edge", {"port": gw_port, "address": "127.0.0.1"})
        await api.put("routes", "to-b", {"gateways": ["edge"], "destinations": [{"service": "b"}]})
        await api.put(
            "authorization-policies", "only-a", {"target": "b", "callers": [{"service": "a"}]}
        )
        boot = await api.bootstrap(role="gateway", gateway="edge", admin_port=admin)
        async with EnvoyProcess(boot):
            await wait_until_served(f"http://127.0.0.1:{gw_port}/", lambda r: r.status_code == 403)
            await mesh.wait_a_reaches_b()
            await api.put(
                "authorization-policies",
                "only-a",
                {"target": "b", "callers": [{"service": "a"}, {"gateway": "edge"}]},
            )
            await wait_until_served(f"http://127.0.0.1:{gw_port}/", lambda r: answered_by(r) == "b")
            await api.put(
                "authorization-policies",
                "no-admin",
                {
                    "target": "b",
                    "action": "deny",
                    "callers": [{"service": "a"}],
                    "paths": ["/admin"],
                },
            )
            await wait_until_served(
                mesh.a_to_b + "admin", lambda r: r.status_code == 403, headers={"host": "b"}
            )
            await mesh.wait_a_reaches_b()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _hours(n: int) -> dt.timedelta:
    return dt.timedelta(hours=n)


async def _authority_with_serial(plane: ControlPlane, serial: str) -> Authority:
    assert plane.store is not None
    assert plane.box is not None
    for row in await IdentityRepo(plane.store.database).authorities():
        cert = x509.load_pem_x509_certificate(row.cert_pem.encode())
        if format(cert.serial_number, "x") == serial:
            return load_authority(row.cert_pem, plane.box.open(row.key_sealed), row.chain_pem)
    raise AssertionError(f"no CA with serial {serial}")


async def _handshake_refused(port: int, authority: Authority, tmp_path: Path) -> bool:
    """Present a client leaf from `authority` to a sidecar's inbound port: is it refused?"""
    leaf = issue_leaf(authority, "spiffe://meshplane.local/service/a", _now(), ttl=_hours(1))
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text(leaf.cert_chain_pem)
    key.write_bytes(leaf.key_pem)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we test the server's verdict on our certificate
    context.load_cert_chain(cert, key)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(b"GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        return not data.startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, ConnectionResetError, OSError):
        return True


async def test_xds_over_tls_with_a_mesh_certificate(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    settings = make_settings(tmp_path, xds_tls=True)
    async with running_mesh(settings) as mesh:
        plane = mesh.plane
        assert plane is not None
        port = free_port()
        await mesh.gateway_to("web", web.port, port)
        boot = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
        socket = boot["static_resources"]["clusters"][0]["transport_socket"]
        assert socket["name"] == "envoy.transport_sockets.tls"
        async with EnvoyProcess(boot) as envoy:
            await wait_until_served(f"http://127.0.0.1:{port}/", lambda r: answered_by(r) == "web")
            stats = await envoy.stats()
            assert stats["cluster.meshplane-xds.ssl.handshake"] >= 1
        # A plaintext gRPC client cannot talk to it.
        async with AdsClient(plane.xds_port, gateway_node("edge-x", "edge")) as client:
            client.request("type.googleapis.com/envoy.config.cluster.v3.Cluster")
            with pytest.raises(grpc.aio.AioRpcError):
                await client.recv()
