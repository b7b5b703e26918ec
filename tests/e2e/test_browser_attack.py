"""A real browser cannot be turned against the API: headless Chromium opens a page of another
site that submits a form to POST /api/v1/ca/finish (the attack that ended a CA overlap early), in
each of the three encodings a form may send cross-site; and it opens a bootstrap through a name
that resolves to the API's address (DNS rebinding). The API refuses both, and nothing changes.

The API and the attacker's site are real uvicorn servers on 127.0.0.1; Chromium reaches the API
as `localhost` (the attacker as 127.0.0.1, another origin), and `--host-resolver-rules` plays the
rebinding DNS server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from meshplane.api import create_app
from meshplane.certs.authority import CaConfig, CertificateAuthority
from meshplane.certs.keystore import SecretBox
from meshplane.settings import Settings
from meshplane.store import Store, open_store
from meshplane.store.identity import IdentityRepo
from tests.e2e.test_dashboard import _chromium, chromium  # noqa: F401  (chromium: the fixture)
from tests.integration.api.fakes import FakeStatus
from tests.support.api_server import served
from tests.support.tokens import bearer, store_token

pytestmark = pytest.mark.e2e

ENCODINGS = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
_PAGE = """<!doctype html><title>cute cats</title>
<form method="post" action="{action}" enctype="{enctype}">
<input name="overlap_seconds" value="0"></form>
<script>document.forms[0].submit()</script>"""


async def _attacker(scope: Scope, receive: Receive, send: Send) -> None:
    """The attacker's site: a page that submits a form to the `action` of its query string."""
    query = parse_qs(scope["query_string"].decode())
    page = _PAGE.format(
        action=html.escape(query["action"][0]), enctype=html.escape(query["enctype"][0])
    )
    await HTMLResponse(page)(scope, receive, send)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'mesh.db'}")
    yield store
    await store.close()


@pytest.fixture
async def api_port(store: Store) -> AsyncIterator[int]:
    """The API behind a real server, its root rotation in the overlap an attack would end."""
    await store_token(store)
    authority = CertificateAuthority(
        IdentityRepo(store.database),
        SecretBox(b"k" * 32),
        CaConfig(trust_domain="mesh.test", overlap=dt.timedelta(hours=1)),
    )
    await authority.start()
    app = create_app(
        store=store,
        status=FakeStatus(),
        settings=Settings(),
        authority=authority,
    )
    async with served(app) as port:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, headers=bearer()
        ) as c:
            assert (await c.post("/api/v1/ca/rotate", json={})).status_code == 202
            async with asyncio.timeout(10):
                while await _phase(port) != "overlap":
                    await asyncio.sleep(0.01)
        yield port


@pytest.fixture
async def attacker_port() -> AsyncIterator[int]:
    async with served(_attacker) as port:
        yield port


async def _ca(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False, headers=bearer()) as client:
        ca: dict[str, Any] = (await client.get(f"http://127.0.0.1:{port}/api/v1/ca")).json()
        return ca


async def _phase(port: int) -> str:
    phase: str = (await _ca(port))["phase"]
    return phase


@pytest.mark.parametrize("enctype", ENCODINGS)
async def test_a_form_on_another_site_cannot_end_a_ca_overlap(
    chromium: str,  # noqa: F811
    tmp_path: Path,
    api_port: int,
    attacker_port: int,
    enctype: str,
) -> None:
    action = f"http://localhost:{api_port}/api/v1/ca/finish"
    page = f"http://127.0.0.1:{attacker_port}/?{httpx.QueryParams(action=action, enctype=enctype)}"
    before = await _ca(api_port)
    dom = await _chromium(chromium, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page)
    # The browser followed the form to the API, which answered 403 before doing anything.
    assert "the API refuses requests from web pages of other origins" in dom, dom
    assert f"http://127.0.0.1:{attacker_port}" in dom
    assert await _ca(api_port) == before


async def test_a_rebound_name_cannot_read_a_bootstrap(
    chromium: str,  # noqa: F811
    tmp_path: Path,
    api_port: int,
) -> None:
    sidecar = "role=sidecar&service=orders&inbound_port=15001&app_port=8080&outbound_port=15002"
    bootstrap = f"/api/v1/bootstrap?{sidecar}&format=json"  # JSON: a page Chromium shows
    own = await _chromium(
        chromium,
        f"--user-data-dir={tmp_path / 'own'}",
        "--dump-dom",
        f"http://localhost:{api_port}{bootstrap}",
    )
    # Through the API's own name a browser gets no bootstrap either: it holds no API token.
    assert "needs an API token" in own, own
    rebound = await _chromium(
        chromium,
        f"--user-data-dir={tmp_path / 'rebound'}",
        "--host-resolver-rules=MAP rebound.example 127.0.0.1",
        "--dump-dom",
        f"http://rebound.example:{api_port}{bootstrap}",
    )
    # Through a rebound name the guard answers before anything else (a token would not help).
    assert "this server does not answer to the host 'rebound.example:" in rebound, rebound
    assert '"token"' not in rebound
