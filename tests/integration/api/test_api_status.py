"""Proxies and server info."""

from datetime import UTC, datetime

import httpx

from meshplane.xds.status import NackRecord, ProxyStatus, TypeStatus

from .fakes import FakeStatus

SINCE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sidecar(node_id: str) -> ProxyStatus:
    return ProxyStatus(
        node_id=node_id,
        role="sidecar",
        gateway=None,
        service="b",
        address="10.0.0.7",
        transport="delta",
        stream_id=3,
        connected_since=SINCE,
        types=[
            TypeStatus("clusters", "abcdef0123", "abcdef0123", 2, None),
            TypeStatus(
                "routes",
                "99990000aaaa",
                "11112222bbbb",
                1,
                NackRecord("99990000aaaa", "route: unknown cluster", SINCE),
            ),
        ],
    )


async def test_proxies_lists_streams_with_iso_times(api: httpx.AsyncClient, status: FakeStatus):
    assert (await api.get("/api/v1/proxies")).json() == {"items": []}
    status.streams.append(sidecar("sidecar-b-9901"))
    items = (await api.get("/api/v1/proxies")).json()["items"]
    assert items == [
        {
            "node_id": "sidecar-b-9901",
            "role": "sidecar",
            "gateway": None,
            "service": "b",
            "address": "10.0.0.7",
            "transport": "delta",
            "stream_id": 3,
            "connected_since": "2026-01-02T03:04:05Z",
            "types": [
                {
                    "type": "clusters",
                    "sent_version": "abcdef0123",
                    "acked_version": "abcdef0123",
                    "resources": 2,
                    "last_nack": None,
                },
                {
                    "type": "routes",
                    "sent_version": "99990000aaaa",
                    "acked_version": "11112222bbbb",
                    "resources": 1,
                    "last_nack": {
                        "version": "99990000aaaa",
                        "error": "route: unknown cluster",
                        "at": "2026-01-02T03:04:05Z",
                    },
                },
            ],
            "denied_secrets": 0,
            "revision": None,  # the fake says nothing of what the proxy holds
            "replica": None,  # no replica registered (meshplane serve names its own)
        }
    ]


async def test_proxy_config_or_404(api: httpx.AsyncClient, status: FakeStatus):
    status.configs["gw-1"] = {"clusters": [{"name": "b"}]}
    assert (await api.get("/api/v1/proxies/gw-1/config")).json() == {"clusters": [{"name": "b"}]}
    missing = await api.get("/api/v1/proxies/nope/config")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    long = await api.get(f"/api/v1/proxies/{'x' * 5000}/config")
    assert long.status_code == 404
    assert len(long.json()["detail"]) < 200  # an excerpt of the id, not all of it


async def test_server_reports_version_revision_and_xds_address(api: httpx.AsyncClient):
    await api.put("/api/v1/services/b", json={"spec": {}})
    info = (await api.get("/api/v1/server")).json()
    assert info["revision"] == 1
    assert info["xds"] == {"host": "10.1.2.3", "port": 18123}
    assert info["version"]
