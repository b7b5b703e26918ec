"""Node tokens through the API: issued with each bootstrap, listed, revoked one by one or by
identity (leaving a revocation every replica reads), created directly for one identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from meshplane.model import NODE_TOKEN_HEADER
from meshplane.settings import Settings
from meshplane.store import NODE_ROLE, Store, TokenRepo

GATEWAY = {"role": "gateway", "gateway": "edge"}


async def _bootstrap(api: httpx.AsyncClient, **params: str | int) -> str:
    """A bootstrap's node token name."""
    response = await api.get("/api/v1/bootstrap", params={**GATEWAY, **params})
    assert response.status_code == 200, response.text
    return response.headers[NODE_TOKEN_HEADER]


async def test_each_bootstrap_issues_its_own_node_token_for_at_most_the_servers_lifetime(
    api: httpx.AsyncClient, store: Store, settings: Settings
) -> None:
    brief = await _bootstrap(api, token_ttl_seconds=120)
    capped = await _bootstrap(api, token_ttl_seconds=10 * 365 * 86400)
    issued = {t.name: t for t in await TokenRepo(store.database).all((NODE_ROLE,))}
    assert set(issued) == {brief, capped}
    lifetimes = {n: t.expires_at - t.created_at for n, t in issued.items() if t.expires_at}
    assert lifetimes == {
        brief: timedelta(seconds=120),
        capped: timedelta(seconds=settings.node_token_ttl_seconds),
    }
    listed = (await api.get("/api/v1/tokens", params={"role": "node"})).json()["items"]
    assert {t["name"] for t in listed} == {brief, capped}
    assert {t["scope"][0] for t in listed} == {"gateway/edge"}
    too_short = await api.get("/api/v1/bootstrap", params={**GATEWAY, "token_ttl_seconds": 5})
    assert too_short.status_code == 422
    assert too_short.json()["detail"][0]["loc"] == ["query", "token_ttl_seconds"]


async def test_revoking_by_identity_takes_every_node_token_of_it_and_nothing_else(
    api: httpx.AsyncClient, store: Store
) -> None:
    edge = [await _bootstrap(api), await _bootstrap(api)]
    other = await _bootstrap(api, gateway="other")
    revoked = await api.delete("/api/v1/tokens", params={"identity": "gateway/edge"})
    assert revoked.status_code == 200, revoked.text
    assert sorted(revoked.json()["revoked"]) == sorted(edge)
    left = await TokenRepo(store.database).all((NODE_ROLE,))
    assert [t.name for t in left] == [other]
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert len(await TokenRepo(store.database).revoked_since(since)) == 2
    again = await api.delete("/api/v1/tokens", params={"identity": "gateway/edge"})
    assert again.json() == {"revoked": []}
    assert (await api.delete(f"/api/v1/tokens/{other}")).status_code == 204
    assert await TokenRepo(store.database).all((NODE_ROLE,)) == []


async def test_a_revocation_names_a_real_identity(api: httpx.AsyncClient) -> None:
    refused = await api.delete("/api/v1/tokens", params={"identity": "edge"})
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["query", "identity"]
    assert "is not an identity" in error["msg"]


async def test_a_node_token_is_created_for_exactly_one_identity(api: httpx.AsyncClient) -> None:
    two = {"name": "n2", "role": "node", "scope": ["service/a", "service/b"]}
    refused = await api.post("/api/v1/tokens", json=two)
    assert refused.status_code == 422
    assert "exactly one identity" in refused.text
    one = {"name": "n1", "role": "node", "scope": ["service/a"]}
    created = await api.post("/api/v1/tokens", json=one)
    assert created.status_code == 201, created.text
    assert created.json()["scope"] == ["service/a"]
    viewer = {"name": "v", "role": "viewer", "scope": ["service/a"]}
    assert (await api.post("/api/v1/tokens", json=viewer)).status_code == 422
