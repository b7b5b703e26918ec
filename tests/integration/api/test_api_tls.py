"""The REST API over real TLS: a mesh certificate (--api-tls) or one from files, verified by httpx
and by the CLI with --ca-file; and the warning when the API is reachable in clear."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from typer.testing import CliRunner

from meshplane.certs.ca import issue_leaf, new_root
from meshplane.cli import app
from meshplane.model import API_SERVER
from meshplane.serve import ControlPlane
from tests.e2e.conftest import make_settings

_CLEAR = "without TLS"


async def meshplane(*args: str) -> Any:
    """The CLI in a thread: the server under test runs on this event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def _peer_certificate(port: int, roots: Path, host: str = "127.0.0.1") -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(roots))
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), 5)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


@pytest.fixture
async def mesh_tls(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = make_settings(tmp_path, api_tls=True, ca_bundle_file=tmp_path / "ca.pem")
    async with ControlPlane(settings) as plane:
        yield plane


async def test_api_tls_serves_a_mesh_certificate_clients_verify(
    mesh_tls: ControlPlane, tmp_path: Path
) -> None:
    roots = tmp_path / "ca.pem"
    assert mesh_tls.api_url.startswith("https://127.0.0.1:")
    port = mesh_tls.api_port
    for host in ("127.0.0.1", "localhost"):
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(roots))) as http:
            response = await http.get(f"https://{host}:{port}/api/v1/server")
        assert response.status_code == 200
    cert = await _peer_certificate(port, roots)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        API_SERVER.spiffe_id(mesh_tls.settings.trust_domain)
    ]
    assert "localhost" in sans.get_values_for_type(x509.DNSName)


async def test_api_tls_is_refused_by_a_client_without_the_roots(mesh_tls: ControlPlane) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(f"{mesh_tls.api_url}/api/v1/server")
    plain = f"http://127.0.0.1:{mesh_tls.api_port}/api/v1/server"
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(plain)


async def test_the_cli_verifies_the_api_with_ca_file(
    mesh_tls: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ["--api-url", mesh_tls.api_url]
    verified = await meshplane("status", *url, "--ca-file", str(tmp_path / "ca.pem"))
    assert verified.exit_code == 0, verified.output
    unverified = await meshplane("status", *url)
    assert unverified.exit_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.output
    monkeypatch.setenv("MESHPLANE_CA_FILE", str(tmp_path / "ca.pem"))
    from_env = await meshplane("status", *url)
    assert from_env.exit_code == 0, from_env.output


async def test_a_renewed_api_certificate_is_served_without_a_restart(
    mesh_tls: ControlPlane, tmp_path: Path
) -> None:
    assert mesh_tls.authority is not None
    roots = tmp_path / "ca.pem"
    before = await _peer_certificate(mesh_tls.api_port, roots)
    (renewed,) = await mesh_tls.authority.rotate_leaves([API_SERVER.text])
    after = await _peer_certificate(mesh_tls.api_port, roots, host="localhost")
    assert format(after.serial_number, "x") == renewed.serial != format(before.serial_number, "x")
    sans = after.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)  # the names outlive renewal


async def test_api_tls_from_certificate_files(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    root = new_root("files.example", now, ttl=dt.timedelta(days=1))
    leaf = issue_leaf(
        root,
        "spiffe://files.example/api",
        now,
        ttl=dt.timedelta(hours=1),
        ip_addresses=("127.0.0.1",),
    )
    (tmp_path / "api.pem").write_text(leaf.cert_chain_pem)
    (tmp_path / "api.key").write_bytes(leaf.key_pem)
    (tmp_path / "root.pem").write_text(root.root_pem())
    settings = make_settings(
        tmp_path, api_tls_cert=tmp_path / "api.pem", api_tls_key=tmp_path / "api.key"
    )
    async with ControlPlane(settings) as plane:
        got = await meshplane(
            "status", "--api-url", plane.api_url, "--ca-file", str(tmp_path / "root.pem")
        )
        assert got.exit_code == 0, got.output
        cert = await _peer_certificate(plane.api_port, tmp_path / "root.pem")
        assert format(cert.serial_number, "x") == leaf.serial
    assert not (tmp_path / "meshplane-ca.pem").exists()  # only --api-tls writes the mesh roots


async def test_a_ca_file_that_is_not_pem_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    for path in (tmp_path / "bad.pem", tmp_path / "missing.pem"):
        got = await meshplane("status", "--ca-file", str(path))
        assert got.exit_code == 2
        words = " ".join(w for w in got.output.split() if w != "│")  # rich's box, wrapped
        assert "cannot read CA certificates from" in words
        assert path.name in words


@pytest.mark.parametrize(
    ("overrides", "warnings"),
    [
        ({"api_host": "0.0.0.0"}, 1),
        ({"api_host": "0.0.0.0", "api_tls": True}, 0),
        ({"api_host": "127.0.0.1"}, 0),
    ],
    ids=["clear", "tls", "loopback"],
)
async def test_an_api_reachable_in_clear_is_warned_about_at_every_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overrides: dict[str, Any], warnings: int
) -> None:
    caplog.set_level(logging.WARNING, logger="meshplane")
    settings = make_settings(tmp_path, ca_bundle_file=tmp_path / "ca.pem", **overrides)
    for start in (1, 2):
        async with ControlPlane(settings):
            pass
        said = [r for r in caplog.records if r.name == "meshplane.tls" and _CLEAR in r.message]
        assert len(said) == warnings * start
    for record in said:
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith("the REST API listens on 0.0.0.0 without TLS")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--xds-tls", "--xds-plaintext"], "xds_tls and xds_plaintext cannot both be set"),
        (["--api-tls-cert", "api.pem"], "api_tls_cert and api_tls_key must be given together"),
    ],
)
async def test_serve_refuses_tls_flags_that_contradict(flags: list[str], message: str) -> None:
    got = await meshplane("serve", "--api-port", "0", "--xds-port", "0", *flags)
    assert got.exit_code == 1
    assert message in got.output


async def test_the_roots_file_follows_a_root_rotation(
    mesh_tls: ControlPlane, tmp_path: Path
) -> None:
    assert mesh_tls.authority is not None
    roots = tmp_path / "ca.pem"
    first = tmp_path / "first.pem"
    first.write_text(roots.read_text())
    await mesh_tls.authority.start_root_rotation(overlap=dt.timedelta(0))
    await asyncio.wait_for(mesh_tls.authority.wait_rotation(), 30)
    assert mesh_tls.authority.status().phase == "idle"
    await _peer_certificate(mesh_tls.api_port, roots)  # the file's new root verifies it
    with pytest.raises(ssl.SSLCertVerificationError):
        await _peer_certificate(mesh_tls.api_port, first)  # and the old one no longer does
    got = await meshplane("status", "--api-url", mesh_tls.api_url, "--ca-file", str(roots))
    assert got.exit_code == 0, got.output
