"""Each of our errors maps to its HTTP status in one place, whatever route raises it."""

from typing import cast

import httpx
import pytest

from meshplane.api import create_app
from meshplane.errors import (
    Conflict,
    InvalidMesh,
    MeshplaneError,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
    Unavailable,
)
from meshplane.settings import Settings
from meshplane.store import Store
from tests.support.tokens import OneAdmin, admin_client


class RaisingStatus:
    def __init__(self, error: MeshplaneError) -> None:
        self.error = error

    def proxies(self):
        raise self.error

    def proxy_config(self, node_id: str):
        raise self.error


async def get_proxies(error: MeshplaneError) -> httpx.Response:
    app = create_app(
        store=cast(Store, None),
        status=RaisingStatus(error),
        settings=Settings(),
        authenticator=OneAdmin(),
    )
    async with admin_client(app) as client:
        return await client.get("/api/v1/proxies")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("gone"), 404),
        (Conflict("in use"), 409),
        (PreconditionFailed("stale"), 412),
        (Unauthenticated("no token"), 401),
        (Unavailable("the database is unreachable; try again shortly"), 503),
    ],
)
async def test_plain_errors_carry_their_message(error, status):
    response = await get_proxies(error)
    assert response.status_code == status
    assert response.json() == {"detail": str(error)}


async def test_unauthenticated_asks_for_a_bearer_token():
    response = await get_proxies(Unauthenticated("no token"))
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_unavailable_says_when_to_try_again():
    response = await get_proxies(Unavailable("the database is unreachable; try again shortly"))
    assert int(response.headers["Retry-After"]) > 0


async def test_invalid_mesh_without_a_field_points_at_the_spec():
    response = await get_proxies(InvalidMesh("something is off"))
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "spec"], "msg": "something is off", "type": "invalid_mesh"}]
    }
