"""Edge certificates through the API (SQLite and PostgreSQL): checked on write, the key
write-only and sealed, details and users shown, referred to by https gateways."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from meshplane.store import Store
from tests.conftest import TEST_SEALER
from tests.support.certificates import make_ca, make_server_certificate, now

_CA = make_ca("edge ca")
_SHOP = make_server_certificate(_CA, ["shop.example.com", "www.shop.example.com"])
_API = make_server_certificate(_CA, ["api.example.com"])


def _cert(made: Any, key: bool = True) -> dict[str, Any]:
    spec = {"certificate": made.cert_pem}
    return {**spec, "private_key": made.key_pem} if key else spec


def _key_lines(made: Any) -> list[str]:
    """Lines of the key's PEM body: none may appear anywhere but sealed."""
    return [line for line in made.key_pem.splitlines() if "-----" not in line]


async def _put(api: httpx.AsyncClient, plural: str, name: str, spec: dict[str, Any]) -> Any:
    return await api.put(f"/api/v1/{plural}/{name}", json={"spec": spec})


async def test_a_certificate_is_shown_without_its_key(api: httpx.AsyncClient) -> None:
    created = await _put(api, "tls-certificates", "shop", _cert(_SHOP))
    assert created.status_code == 201, created.text
    body = created.json()
    assert "private_key" not in body["spec"]
    details = body["details"]
    assert details["dns_names"] == ["shop.example.com", "www.shop.example.com"]
    assert details["subject"] == "CN=shop.example.com"
    assert "edge ca" in details["issuer"]
    assert details["serial"] == format(_SHOP.cert.serial_number, "x")
    assert details["used_by"] == []
    assert "renews_at" not in details  # operators replace a certificate they bring
    gateway = {"port": 8443, "protocol": "https", "tls": {"certificates": ["shop"]}}
    assert (await _put(api, "gateways", "edge", gateway)).status_code == 201
    listed = (await api.get("/api/v1/tls-certificates")).json()["items"]
    assert listed[0]["details"]["used_by"] == ["edge"]
    got = (await api.get("/api/v1/tls-certificates/shop")).json()
    assert got["details"]["used_by"] == ["edge"]
    refused = await api.delete("/api/v1/tls-certificates/shop")
    assert refused.status_code == 409
    assert "gateways/edge" in refused.text


async def test_a_write_is_checked(api: httpx.AsyncClient) -> None:
    mismatched = {"certificate": _SHOP.cert_pem, "private_key": _API.key_pem}
    refused = await _put(api, "tls-certificates", "shop", mismatched)
    assert refused.status_code == 422
    assert "does not match" in refused.text
    assert "private_key" in refused.text
    garbage = await _put(api, "tls-certificates", "shop", {"certificate": "hello"})
    assert garbage.status_code == 422
    assert "certificate" in garbage.text
    no_key = await _put(api, "tls-certificates", "shop", _cert(_SHOP, key=False))
    assert no_key.status_code == 422
    assert no_key.json()["detail"][0]["loc"][-1] == "private_key", no_key.text
    old = make_server_certificate(
        _CA,
        ["old.example.com"],
        not_before=now() - dt.timedelta(days=30),
        not_after=now() - dt.timedelta(days=1),
    )
    expired = await _put(api, "tls-certificates", "old", _cert(old))
    assert expired.status_code == 422
    assert "expired" in expired.text
    gateway = {"port": 8443, "protocol": "https", "tls": {"certificates": ["nowhere"]}}
    dangling = await _put(api, "gateways", "edge", gateway)
    assert dangling.status_code == 422
    assert "does not exist" in dangling.text
    plain_tls = await _put(api, "gateways", "edge", {"port": 80, "tls": {"certificates": ["x"]}})
    assert plain_tls.status_code == 422


async def test_the_key_may_be_left_out_once_stored(api: httpx.AsyncClient) -> None:
    first = (await _put(api, "tls-certificates", "shop", _cert(_SHOP))).json()
    again = await _put(api, "tls-certificates", "shop", _cert(_SHOP, key=False))
    assert again.status_code == 200
    assert again.json()["version"] == first["version"]
    # Another name for the same certificate finds its key by fingerprint.
    twin = await _put(api, "tls-certificates", "shop-twin", _cert(_SHOP, key=False))
    assert twin.status_code == 201, twin.text
    other = await _put(api, "tls-certificates", "shop", _cert(_API, key=False))
    assert other.status_code == 422
    assert "private_key" in other.text


async def test_a_batch_writes_a_certificate_and_its_gateway(api: httpx.AsyncClient) -> None:
    documents = [
        {
            "kind": "gateway",
            "name": "edge",
            "spec": {"port": 8443, "protocol": "https", "tls": {"certificates": ["shop", "api"]}},
        },
        {"kind": "tls-certificate", "name": "shop", "spec": _cert(_SHOP)},
        {"kind": "tls-certificate", "name": "api", "spec": _cert(_API)},
    ]
    dry = await api.post("/api/v1/apply", json={"documents": documents}, params={"dry_run": True})
    assert dry.status_code == 200, dry.text
    applied = await api.post("/api/v1/apply", json={"documents": documents})
    assert applied.status_code == 200, applied.text
    for made in (_SHOP, _API):
        for line in _key_lines(made):
            assert line not in dry.text
            assert line not in applied.text


async def test_the_key_is_nowhere_but_sealed(
    api: httpx.AsyncClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _put(api, "tls-certificates", "shop", _cert(_SHOP))
    await _put(api, "tls-certificates", "shop", _cert(_API))  # history holds both
    answers = [
        await api.get(path)
        for path in (
            "/api/v1/tls-certificates",
            "/api/v1/tls-certificates/shop",
            "/api/v1/changes",
            "/api/v1/revisions/1",
            "/api/v1/diff?from=1&to=2",
        )
    ]
    rolled = await api.post("/api/v1/rollback", json={"revision": 1}, params={"dry_run": True})
    answers.append(rolled)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    rows = await store.database.read(_every_row)
    for made in (_SHOP, _API):
        for line in _key_lines(made):
            for answer in answers:
                assert line not in answer.text
            assert line not in caplog.text
            assert line not in rows
    # It is there, sealed: each certificate's key opens to what was written.
    sealed = await store.edge_keys([c.json()["details"]["fingerprint"] for c in [answers[1]]])
    assert list(sealed.values()) == [_API.key_pem.encode()]
    assert TEST_SEALER.open(TEST_SEALER.seal(b"x")) == b"x"


def _every_row(connection: Any) -> str:
    """Every value of every table, as text (bytes decoded loosely): what a dump would show."""
    metadata = MetaData()
    metadata.reflect(connection)
    out = []
    for table in metadata.sorted_tables:
        for row in connection.execute(select(table)):
            for value in row:
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                out.append(text)
    return "\n".join(out)


async def test_a_certificate_for_the_mesh_to_issue_is_checked(api: httpx.AsyncClient) -> None:
    no_names = await _put(api, "tls-certificates", "internal", {"issuer": "mesh"})
    assert no_names.status_code == 422
    assert "hostnames" in no_names.text
    with_key = {"issuer": "mesh", "hostnames": ["a.internal"], "private_key": _SHOP.key_pem}
    refused = await _put(api, "tls-certificates", "internal", with_key)
    assert refused.status_code == 422
    assert "private_key" in refused.text
    names_only = await _put(api, "tls-certificates", "shop", {**_cert(_SHOP), "hostnames": ["x"]})
    assert names_only.status_code == 422
    # This API runs without a CA: asking it to issue is refused, naming the field.
    no_ca = await _put(api, "tls-certificates", "internal", {"issuer": "mesh", "hostnames": ["a"]})
    assert no_ca.status_code == 422
    assert no_ca.json()["detail"][0]["loc"] == ["body", "spec", "issuer"]
