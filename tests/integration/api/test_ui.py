"""The dashboard at /ui: served from the package, local assets only, and its view logic works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import httpx
import pytest

ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "history.js": "text/javascript",
    "view.js": "text/javascript",
    "style.css": "text/css",
}
VIEW_TESTS = Path(__file__).with_name("ui_view.test.mjs")


def _shipped(name: str) -> str:
    return resources.files("meshplane.api").joinpath("ui", name).read_text("utf-8")


@pytest.mark.parametrize("path", ["/ui", "/ui/"])
async def test_ui_serves_the_page(api: httpx.AsyncClient, path: str) -> None:
    resp = await api.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.text == _shipped("index.html")
    assert '<script type="module" src="/ui/app.js"></script>' in resp.text
    assert '<link rel="stylesheet" href="/ui/style.css">' in resp.text


async def test_assets_are_served_with_their_content_types(api: httpx.AsyncClient) -> None:
    for name, media_type in ASSETS.items():
        resp = await api.get(f"/ui/{name}")
        assert resp.status_code == 200, name
        assert resp.headers["content-type"] == f"{media_type}; charset=utf-8", name
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.text == _shipped(name)


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "%2E%2E%2Froutes%2Fui.py", "ui"])
async def test_only_the_dashboard_files_are_served(api: httpx.AsyncClient, name: str) -> None:
    assert (await api.get(f"/ui/{name}")).status_code == 404


async def test_root_redirects_to_the_dashboard(api: httpx.AsyncClient) -> None:
    resp = await api.get("/", follow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["location"] == "/ui"
    assert (await api.get("/", follow_redirects=True)).url.path == "/ui"


def test_page_loads_nothing_from_other_hosts() -> None:
    """No CDN, font or script from elsewhere: the machine it runs on may have no internet."""
    for name in ASSETS:
        text = _shipped(name)
        assert not re.search(r"https?://", text), f"{name} names a URL"
        assert not re.search(r"""["'(`]//""", text), f"{name} names a protocol-relative URL"
    html = _shipped("index.html")
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references, "the page references its assets"
    for ref in references:
        assert ref.startswith(("/ui/", "#", "data:")), ref
        if ref.startswith("/ui/"):
            assert ref.removeprefix("/ui/") in ASSETS, ref
    imports = re.findall(r'from\s+"([^"]+)"', _shipped("app.js"))
    assert imports == ["./view.js", "./history.js"]
    assert re.findall(r'from\s+"([^"]+)"', _shipped("history.js")) == ["./view.js"]
    assert "@import" not in _shipped("style.css")
    assert not re.search(r"url\((?!data:)", _shipped("style.css"))


async def test_page_reads_only_paths_the_api_serves(api: httpx.AsyncClient) -> None:
    """Every API path app.js polls exists, so a renamed route cannot blank a section."""
    paths = (await api.get("/openapi.json")).json()["paths"]
    polled = re.findall(r'^\s+\w+: "(/[a-z-]+)",$', _shipped("app.js"), re.MULTILINE)
    assert len(polled) >= 9
    for path in polled:
        assert "get" in paths[f"/api/v1{path}"], path
    assert "post" in paths["/api/v1/certificates/rotate"]
    history = _shipped("history.js")  # the History section reads these; a rollback posts
    for path in ("/changes", "/diff"):
        assert f"${{api}}{path}?" in history, path
        assert "get" in paths[f"/api/v1{path}"], path
    assert "${api}/rollback" in history
    assert "post" in paths["/api/v1/rollback"]


async def test_dashboard_stays_out_of_the_openapi_document(api: httpx.AsyncClient) -> None:
    """The OpenAPI document describes the REST API; the page and the redirect are not part of it."""
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_view_logic_under_node() -> None:
    """Run the page's data -> view module (sync states, relative times, ...) under node --test."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to test the dashboard's view logic")
        pytest.skip(
            "node is not installed: the dashboard's view logic (ui_view.test.mjs) is untested"
        )
    result = subprocess.run(
        [node, "--test", str(VIEW_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# pass [1-9]", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout
