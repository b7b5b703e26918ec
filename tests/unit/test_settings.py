"""Settings refuse values the control plane could not run with, naming the variable, instead of
letting `meshplane serve` die on them later (an OverflowError at start, a timer never firing)."""

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from meshplane.certs.ca import issue_leaf, new_root
from meshplane.host_names import is_loopback
from meshplane.settings import Settings


@pytest.mark.parametrize(
    "field",
    ["ca_overlap_seconds", "leaf_ttl_seconds", "root_ttl_days", "endpoint_grace_seconds"],
)
def test_an_unusable_duration_is_refused_naming_it(field):
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({field: 1e300})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_the_environment_is_checked_the_same_way(monkeypatch):
    monkeypatch.setenv("MESHPLANE_CA_OVERLAP_SECONDS", "1e300")
    with pytest.raises(ValidationError, match="ca_overlap_seconds"):
        Settings()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),  # the whole 127.0.0.0/8
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),  # every interface
        ("::", False),
        ("", False),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("fd00::2", False),
        ("128.0.0.1", False),
        ("meshplane.internal", False),  # a name may resolve anywhere
        ("localhost.example.com", False),
    ],
)
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("given", "tls"),
    [
        ({}, True),  # 0.0.0.0 by default: reachable, so TLS
        ({"xds_host": "192.0.2.2"}, True),
        ({"xds_host": "127.0.0.1"}, False),
        ({"xds_host": "127.0.0.1", "xds_tls": True}, True),
        ({"xds_plaintext": True}, False),
        ({"xds_host": "127.0.0.1", "xds_plaintext": True}, False),
    ],
)
def test_xds_serves_tls_unless_on_loopback_or_told_plaintext(given, tls):
    assert Settings.model_validate(given).xds_serves_tls is tls


def test_the_environment_chooses_plaintext_too(monkeypatch):
    monkeypatch.setenv("MESHPLANE_XDS_PLAINTEXT", "true")
    assert not Settings().xds_serves_tls


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"xds_tls": True, "xds_plaintext": True}, "xds_tls and xds_plaintext"),
        ({"api_tls_cert": "api.pem"}, "api_tls_cert and api_tls_key"),
        ({"api_tls_key": "api.key"}, "api_tls_cert and api_tls_key"),
        ({"api_tls": True, "api_tls_cert": "a.pem", "api_tls_key": "a.key"}, "api_tls"),
    ],
)
def test_tls_choices_that_contradict_are_refused(given, message):
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate(given)


def _certificate_files(directory: Path) -> dict[str, Path]:
    now = dt.datetime.now(dt.UTC)
    root = new_root("files.example", now, ttl=dt.timedelta(days=1))
    leaf = issue_leaf(root, "spiffe://files.example/api", now, ttl=dt.timedelta(hours=1))
    (directory / "api.pem").write_text(leaf.cert_chain_pem)
    (directory / "api.key").write_bytes(leaf.key_pem)
    return {"api_tls_cert": directory / "api.pem", "api_tls_key": directory / "api.key"}


def test_api_serves_tls_with_a_mesh_certificate_or_files(tmp_path):
    assert not Settings().api_serves_tls
    assert Settings(api_tls=True).api_serves_tls
    assert Settings.model_validate(_certificate_files(tmp_path)).api_serves_tls


def test_certificate_files_that_do_not_load_are_refused_at_the_start(tmp_path):
    files = _certificate_files(tmp_path)
    other = new_root("other.example", dt.datetime.now(dt.UTC), ttl=dt.timedelta(days=1))
    (tmp_path / "other.key").write_bytes(other.key_pem())
    for broken in (
        {**files, "api_tls_key": tmp_path / "missing.key"},
        {**files, "api_tls_key": tmp_path / "other.key"},  # not the certificate's key
        {**files, "api_tls_cert": tmp_path / "api.key"},
    ):
        with pytest.raises(ValidationError, match="cannot load a certificate and its key"):
            Settings.model_validate(broken)
