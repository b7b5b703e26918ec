"""HTTPS at the edge with a real Envoy: certificates by SNI over SDS, HTTP/2 by ALPN, a
certificate replaced under load without a failed request, and the redirect to HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from meshplane.certs import renew_edge_certificates
from tests.e2e.conftest import Mesh
from tests.support.backends import HttpBackend
from tests.support.certificates import MadeCa, make_ca, make_server_certificate
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

_SHOP, _API = "shop.example.com", "api.example.com"


def _trusted_ca(tmp_path: Path, name: str = "edge test ca") -> tuple[MadeCa, Path]:
    """A CA for the test's certificates, and the file clients verify them with."""
    ca = make_ca(name)
    cafile = tmp_path / "ca.pem"
    cafile.write_text(ca.cert_pem)
    return ca, cafile


def _spec(made: MadeCa) -> dict[str, str]:
    return {"certificate": made.cert_pem, "private_key": made.key_pem}


def _handshake(port: int, host: str, cafile: Path) -> tuple[int, str | None]:
    """Connect with SNI `host`, verifying against `cafile` (hostname included): the serial
    of the certificate served and the protocol ALPN chose."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number, tls.selected_alpn_protocol()


def _get(port: int, host: str, cafile: Path, path: str = "/") -> int:
    """One HTTP/1.1 request over a new TLS connection with SNI `host`; the status code."""
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = tls.recv(4096)
            if not chunk:
                break
            head += chunk
        return int(head.split(b" ", 2)[1])


async def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ssl.SSLError, AssertionError, IndexError, ValueError):
            if await asyncio.to_thread(check):
                return
        assert time.monotonic() < deadline, "not served in time"
        await asyncio.sleep(0.2)


async def _https_gateway(
    mesh: Mesh, backends: Callable[[str], HttpBackend], certificates: list[str]
) -> tuple[dict[str, Any], int]:
    web = backends("web-1")
    await mesh.put("services", "web", {})
    await mesh.put(
        "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
    )
    port = free_port()
    spec = {
        "port": port,
        "address": "127.0.0.1",
        "protocol": "https",
        "hosts": [_SHOP, _API],
        "tls": {"certificates": certificates},
    }
    await mesh.put("gateways", "edge", spec)
    await mesh.put("routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    bootstrap = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
    return bootstrap, port


async def test_each_host_gets_its_certificate_over_http2(
    mesh: Mesh, backends: Callable[[str], HttpBackend], tmp_path: Path
) -> None:
    ca, cafile = _trusted_ca(tmp_path)
    shop, api = make_server_certificate(ca, [_SHOP]), make_server_certificate(ca, [_API])
    await mesh.put("tls-certificates", "shop", _spec(shop))
    await mesh.put("tls-certificates", "api", _spec(api))
    bootstrap, port = await _https_gateway(mesh, backends, ["shop", "api"])
    async with EnvoyProcess(bootstrap):
        await _eventually(lambda: _get(port, _SHOP, cafile) == 200)
        for host, made in ((_SHOP, shop), (_API, api)):
            serial, alpn = await asyncio.to_thread(_handshake, port, host, cafile)
            assert serial == made.cert.serial_number, host
            assert alpn == "h2"
            # curl, verifying the certificate against the test's CA and the host name.
            done = await asyncio.to_thread(
                subprocess.run,
                [
                    "curl",
                    "-sS",
                    "--http2",
                    "--cacert",
                    str(cafile),
                    "--resolve",
                    f"{host}:{port}:127.0.0.1",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{http_version}",
                    f"https://{host}:{port}/",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            assert done.stdout == "200 2", (host, done.stdout, done.stderr)
        # Plain HTTP on the port gets no answer.
        assert await asyncio.to_thread(_plain_http_unanswered, port)
    # Each certificate's expiry is a gauge, as each identity's is.
    metrics = (await mesh.http.get("/metrics")).text
    for name, made in (("shop", shop), ("api", api)):
        line = next(x for x in metrics.splitlines() if f'identity="tls-certificate/{name}"' in x)
        left = float(line.rsplit(" ", 1)[1])
        expected = (made.cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds()
        assert abs(left - expected) < 60


def _plain_http_unanswered(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n")
        try:
            return not raw.recv(100).startswith(b"HTTP/")
        except ConnectionError:
            return True


async def test_a_replaced_certificate_is_served_without_a_failed_request(
    mesh: Mesh, backends: Callable[[str], HttpBackend], tmp_path: Path
) -> None:
    ca, cafile = _trusted_ca(tmp_path)
    old, new = make_server_certificate(ca, [_SHOP]), make_server_certificate(ca, [_SHOP])
    await mesh.put("tls-certificates", "shop", _spec(old))
    bootstrap, port = await _https_gateway(mesh, backends, ["shop"])
    async with EnvoyProcess(bootstrap):
        await _eventually(lambda: _get(port, _SHOP, cafile) == 200)
        stop, seen, failures = threading.Event(), list[int](), list[object]()

        def loop() -> None:
            while not stop.is_set():
                try:
                    serial, _ = _handshake(port, _SHOP, cafile)
                    status = _get(port, _SHOP, cafile)
                    seen.append(serial)
                    if status != 200:
                        failures.append(status)
                except (OSError, ssl.SSLError) as exc:
                    failures.append(repr(exc))

        worker = threading.Thread(target=loop)
        worker.start()
        try:
            await asyncio.sleep(0.5)
            await mesh.put("tls-certificates", "shop", _spec(new))
            await _eventually(lambda: bool(seen) and seen[-1] == new.cert.serial_number)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.to_thread(worker.join, 10)
        assert failures == []
        assert seen[0] == old.cert.serial_number
        switched = seen.index(new.cert.serial_number)
        assert set(seen[switched:]) == {new.cert.serial_number}  # never back to the old one
        assert len(seen) > 20


async def test_an_http_gateway_redirects_to_https(mesh: Mesh) -> None:
    ports = {name: free_port() for name in ("to-443", "to-8443")}
    await mesh.put("gateways", "to-443", {"port": ports["to-443"], "https_redirect": True})
    redirect = {"port": ports["to-8443"], "https_redirect": {"port": 8443}}
    await mesh.put("gateways", "to-8443", redirect)
    expected = {
        "to-443": f"https://{_SHOP}/cart?item=1",
        "to-8443": f"https://{_SHOP}:8443/cart?item=1",
    }
    for name, port in ports.items():
        bootstrap = await mesh.bootstrap(role="gateway", gateway=name, admin_port=free_port())
        async with EnvoyProcess(bootstrap):

            def redirected(port: int = port, name: str = name) -> bool:
                done = subprocess.run(
                    [
                        "curl",
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code} %{redirect_url}",
                        "-H",
                        f"Host: {_SHOP}",
                        f"http://127.0.0.1:{port}/cart?item=1",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
                assert done.stdout == f"301 {expected[name]}", done.stdout + done.stderr
                return True

            await _eventually(redirected)


async def test_a_client_ca_requires_a_partner_certificate(
    mesh: Mesh, backends: Callable[[str], HttpBackend], tmp_path: Path
) -> None:
    (ca, _), partners = _trusted_ca(tmp_path), make_ca("partner ca")
    partner = make_server_certificate(partners, ["partner.example.net"], client=True)
    (tmp_path / "partner.pem").write_text(partner.cert_pem)
    (tmp_path / "partner.key").write_text(partner.key_pem)
    stranger = make_server_certificate(make_ca("other"), ["stranger.example.net"], client=True)
    (tmp_path / "stranger.pem").write_text(stranger.cert_pem)
    (tmp_path / "stranger.key").write_text(stranger.key_pem)
    await mesh.put("tls-certificates", "shop", _spec(make_server_certificate(ca, [_SHOP])))
    bootstrap, port = await _https_gateway(mesh, backends, ["shop"])
    gateway = (await mesh.http.get("/api/v1/gateways/edge")).json()["spec"]
    tls = {**gateway["tls"], "client_ca": partners.cert_pem}
    await mesh.put("gateways", "edge", {**gateway, "tls": tls})

    def curl(who: str | None) -> str:
        auth = ["--cert", str(tmp_path / f"{who}.pem"), "--key", str(tmp_path / f"{who}.key")]
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(tmp_path / "ca.pem"),
                "--resolve",
                f"{_SHOP}:{port}:127.0.0.1",
                *(auth if who else []),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                f"https://{_SHOP}:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout

    async with EnvoyProcess(bootstrap):
        await _eventually(lambda: curl("partner") == "200")
        assert await asyncio.to_thread(curl, None) == "000"  # no certificate: handshake refused
        assert await asyncio.to_thread(curl, "stranger") == "000"  # not signed by client_ca
        assert await asyncio.to_thread(curl, "partner") == "200"


class _TlsBackend:
    """A TLS server on 127.0.0.1 with its own certificate, answering each line with its name:
    what sits behind a passthrough gateway (it terminates TLS itself)."""

    def __init__(self, name: str, made: MadeCa, tmp_path: Path) -> None:
        (tmp_path / f"{name}.pem").write_text(made.cert_pem)
        (tmp_path / f"{name}.key").write_text(made.key_pem)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
        self.name = name
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.socket.accept()
            except OSError:
                return
            with contextlib.suppress(OSError, ssl.SSLError), raw:
                raw.settimeout(5)
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    if tls.recv(100):
                        tls.sendall(self.name.encode())

    def close(self) -> None:
        self.socket.close()
        self.thread.join(5)


def _through(port: int, host: str, cafile: Path) -> tuple[int, bytes]:
    """Over a TLS connection to the gateway with SNI `host`: the served certificate's serial
    and the answer to one line."""
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(b"hello\n")
        return x509.load_der_x509_certificate(der).serial_number, tls.recv(100)


async def test_a_tls_gateway_passes_tls_through_to_the_backend_by_sni(
    mesh: Mesh, tmp_path: Path
) -> None:
    ca, cafile = _trusted_ca(tmp_path, "backends ca")
    made = {
        "shop": make_server_certificate(ca, [_SHOP]),
        "api": make_server_certificate(ca, [_API]),
    }
    backends = {name: _TlsBackend(name, cert, tmp_path) for name, cert in made.items()}
    try:
        port = free_port()
        await mesh.put(
            "gateways", "passthrough", {"port": port, "address": "127.0.0.1", "protocol": "tls"}
        )
        for name, backend in backends.items():
            await mesh.put("services", name, {"protocol": "tcp"})
            endpoint = {"service": name, "address": "127.0.0.1", "port": backend.port}
            await mesh.put("endpoints", f"{name}-1", endpoint)
        await mesh.put(
            "routes",
            "shop",
            {"gateways": ["passthrough"], "hosts": [_SHOP], "destinations": [{"service": "shop"}]},
        )
        await mesh.put(
            "routes",
            "api",
            {"gateways": ["passthrough"], "hosts": [_API], "destinations": [{"service": "api"}]},
        )
        bootstrap = await mesh.bootstrap(
            role="gateway", gateway="passthrough", admin_port=free_port()
        )
        async with EnvoyProcess(bootstrap):
            await _eventually(lambda: _through(port, _SHOP, cafile)[1] == b"shop")
            for name, host in (("shop", _SHOP), ("api", _API)):
                serial, answer = await asyncio.to_thread(_through, port, host, cafile)
                # The backend's own certificate reached the client: the gateway did not terminate.
                assert serial == made[name].cert.serial_number
                assert answer == name.encode()
                # explain says the same: this SNI takes this route to this service.
                ask = {"gateway": "passthrough", "host": host}
                said = (await mesh.http.post("/api/v1/explain", json=ask)).json()
                assert (said["route"], said["protocol"]) == (name, "tls")
                assert [d["service"] for d in said["destinations"]] == [name]
            # An SNI no route serves finds no filter chain: the connection is closed.
            with pytest.raises((OSError, ssl.SSLError)):
                await asyncio.to_thread(_through, port, "other.example.org", cafile)
    finally:
        for backend in backends.values():
            backend.close()


async def test_a_certificate_the_mesh_issues_is_served_and_renewed(
    mesh: Mesh, backends: Callable[[str], HttpBackend], tmp_path: Path
) -> None:
    asked = {"issuer": "mesh", "hostnames": [_SHOP]}
    first = await mesh.put("tls-certificates", "shop", asked)
    assert first["spec"]["hostnames"] == [_SHOP]
    assert first["details"]["dns_names"] == [_SHOP]
    # Renewed once two thirds of its lifetime have passed, and said so.
    not_before, not_after, renews_at = (
        dt.datetime.fromisoformat(first["details"][key])
        for key in ("not_before", "not_after", "renews_at")
    )
    assert renews_at == not_before + (not_after - not_before) * 2 / 3
    again = await mesh.put("tls-certificates", "shop", asked)  # not due: the same certificate
    assert again["version"] == first["version"]
    assert mesh.plane is not None
    authority, store = mesh.plane.authority, mesh.plane.store
    assert authority is not None
    assert store is not None
    cafile = tmp_path / "mesh-roots.pem"
    roots = (await mesh.http.get("/api/v1/ca")).json()["roots"]
    cafile.write_text("".join(r["pem"] for r in roots if r["state"] != "retired"))
    bootstrap, port = await _https_gateway(mesh, backends, ["shop"])
    async with EnvoyProcess(bootstrap):
        await _eventually(lambda: _get(port, _SHOP, cafile) == 200)
        serial, _ = await asyncio.to_thread(_handshake, port, _SHOP, cafile)
        assert format(serial, "x") == first["details"]["serial"]
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=25)  # past two thirds of 30 days
        assert await renew_edge_certificates(store, authority, later) == ["shop"]
        renewed = (await mesh.http.get("/api/v1/tls-certificates/shop")).json()
        assert renewed["details"]["serial"] != first["details"]["serial"]
        assert renewed["updated_by"] == "mesh-ca"
        new_serial = int(renewed["details"]["serial"], 16)
        await _eventually(lambda: _handshake(port, _SHOP, cafile)[0] == new_serial)
