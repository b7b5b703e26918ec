"""The dashboard at /ui, rendered by headless Chromium: proxies with their sync state, a NACK's
error, and the services; a screenshot of what was asserted is kept as a test artifact. And the
banner naming a stored resource that no longer validates, and the History section: revisions,
a revision's diff, and the rollback button only for a token that may roll back.

Chromium is Debian's `chromium` on PATH, driven through its own command line: one run with
`--dump-dom` prints the DOM after the page's scripts ran, and `--screenshot` saves the same page
as a PNG. `--virtual-time-budget` lets the page's fetches and its first polls complete and then
ends the run, although the page polls forever; a subprocess timeout bounds it all the same.

A missing Chromium fails the test under CI=true (`.ci/run` installs it) and skips it elsewhere.
The screenshots of the NACK and of the History go to `$MESHPLANE_TEST_ARTIFACTS` (default: the
test's tmp_path).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Mesh, Poison
from tests.support.backends import HttpBackend
from tests.support.certificates import make_ca, make_server_certificate
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.stored import BAD_VALUE, spoil
from tests.support.tokens import ADMIN_TOKEN
from tests.support.traffic import answered_by, wait_until_served

pytestmark = pytest.mark.e2e

NODE_ID = "edge-1"
WINDOW = "1400,1800"
# Virtual milliseconds the page may run before the DOM is dumped: its first fetches and a poll
# or two (it polls every 2 s). Chromium fast-forwards timers, so this is not wall-clock time.
VIRTUAL_TIME_BUDGET_MS = 5000
RENDER_TIMEOUT = 60.0  # wall-clock seconds for one Chromium run
RENDER_DEADLINE = 90.0  # wall-clock seconds until the page must show the expected state
_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests may run as root (containers, CI), where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    f"--window-size={WINDOW}",
    f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@pytest.fixture
def chromium() -> str:
    """Chromium's path; a failure under CI=true, a skip elsewhere, when it is not installed."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI to test the dashboard (.ci/run installs it)")
        pytest.skip(
            "chromium is not installed: the dashboard is untested in a browser "
            "(install it with `apt-get install -y chromium`, or run `bash .ci/run`)"
        )
    return found


@pytest.fixture
def artifacts(tmp_path: Path) -> Callable[[str], Path]:
    """A screenshot's path by name, under $MESHPLANE_TEST_ARTIFACTS (else tmp_path); none there
    yet."""
    directory = Path(os.environ.get("MESHPLANE_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)

    def path(name: str) -> Path:
        found = directory / name
        found.unlink(missing_ok=True)  # a stale one from an earlier run must not pass for this one
        return found

    return path


@pytest.fixture
def screenshot(artifacts: Callable[[str], Path]) -> Path:
    """The NACK screenshot's path (see `artifacts`)."""
    return artifacts("dashboard-nack.png")


async def test_dashboard_shows_proxies_sync_state_nack_error_and_services(
    chromium: str,
    screenshot: Path,
    tmp_path: Path,
    poisoned: tuple[Mesh, Poison],
    backends: Callable[[str], HttpBackend],
) -> None:
    mesh, poison = poisoned
    assert mesh.plane is not None
    web = backends("web")
    port = free_port()
    await mesh.put("services", "web", {})
    await mesh.put(
        "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
    )
    await mesh.put("gateways", "edge", {"port": port, "address": "127.0.0.1"})
    await mesh.put("routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]})
    await mesh.put("services", "other", {})
    shop = make_server_certificate(make_ca("shop ca"), ["shop.example.com"])
    await mesh.put(
        "tls-certificates", "shop", {"certificate": shop.cert_pem, "private_key": shop.key_pem}
    )
    await mesh.put("tls-certificates", "api", {"issuer": "mesh", "hostnames": ["api.internal"]})
    bootstrap = await mesh.bootstrap(
        role="gateway", gateway="edge", node_id=NODE_ID, admin_port=free_port()
    )
    async with EnvoyProcess(bootstrap) as envoy:
        await wait_until_served(f"http://127.0.0.1:{port}/", lambda r: answered_by(r) == "web")
        poison.armed = True
        # A change to web's settings rebuilds its cluster, now poisoned.
        await mesh.put("services", "web", {"connect_timeout": "3s"})

        # Settled: clusters NACKed, every other type acknowledged; nothing changes after this.
        async def settled() -> bool:
            types = _types(await mesh.proxies())
            clusters = types.get("clusters")
            return (
                clusters is not None
                and clusters["last_nack"] is not None
                and clusters["sent_version"] != clusters["acked_version"]
                and all(_in_sync(t) for name, t in types.items() if name != "clusters")
            )

        await envoy.wait_for(settled)
        types = _types(await mesh.proxies())
        error = types["clusters"]["last_nack"]["error"]
        assert "positive duration" in error

        page = await _render(
            chromium,
            f"{mesh.plane.api_url}/ui#token={ADMIN_TOKEN}",
            profile=tmp_path / "chromium-profile",
            screenshot=screenshot,
            ready=lambda dom: _proxy_row(dom, NODE_ID) is not None,
        )
        print(f"dashboard screenshot: {screenshot}")

    # The proxy is listed, NACKED overall, and each type shows its own state.
    columns = [th.text() for th in _table(page, "proxies").find_all("th")]
    row = _proxy_row(page, NODE_ID)
    assert row is not None
    cells = row.find_all("td")
    assert cells[0].text() == "NACKED"
    states = {
        column: _pill(cell) for column, cell in zip(columns, cells, strict=True) if column in types
    }
    assert set(states) == set(types), columns
    assert states["clusters"] == "NACKED"
    healthy = {name: state for name, state in states.items() if name != "clusters"}
    assert healthy, states
    assert set(healthy.values()) == {"SYNCED"}, states

    # The NACK's error, Envoy's message, is shown under the proxy.
    shown = [pre.raw_text() for pre in _table(page, "proxies").find_all("pre", "nack-error")]
    assert shown == [error]

    # The gateway is listed with what it speaks on its port.
    listens = [td.text() for td in _table(page, "gateways").find_all("td", "mono")]
    assert listens == [f"http 127.0.0.1:{port}"]

    # The edge certificates are listed: hosts, standing, issuer, renewal, gateways using them.
    rows = {
        tr.find_all("td")[0].text(): [td.text() for td in tr.find_all("td")]
        for tr in _table(page, "edge-certificates").find_all("tr")
        if tr.find_all("td")
    }
    assert rows["shop"][1:3] == ["shop.example.com", "valid"]
    assert rows["shop"][3].startswith("CN=shop ca")
    assert rows["shop"][5:] == ["by its operators", "no gateway"]
    assert rows["api"][1:4] == ["api.internal", "valid", "mesh CA"]
    assert rows["api"][5].startswith("in ")  # renewed by the mesh CA, in about 20 days

    # The services are listed, and the page loaded without an API error.
    names = {div.text().split()[0] for div in _table(page, "services").find_all("div", "name")}
    assert names == {"web", "other"}
    assert "hidden" in _by_id(page, "api-error").attrs

    # The screenshot is a real picture of that page.
    data = await asyncio.to_thread(screenshot.read_bytes)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000, len(data)


async def test_dashboard_names_a_stored_service_that_no_longer_validates(
    chromium: str, tmp_path: Path, mesh: Mesh
) -> None:
    assert mesh.plane is not None
    assert mesh.plane.store is not None
    await mesh.put("services", "web", {})
    await mesh.put("services", "other", {})
    await mesh.put("endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": 9})
    version = spoil(mesh.plane.store.database.engine, "services", "web", BAD_VALUE)
    # A hand edit made while running is found when a read meets it.
    assert (await mesh.http.get("/api/v1/services/web")).status_code == 409

    def shown(dom: _Element) -> bool:
        found = [e for e in dom.iter() if e.attrs.get("id") == "invalid-resources"]
        return bool(found) and "hidden" not in found[0].attrs and "service/web" in found[0].text()

    page = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui#token={ADMIN_TOKEN}",
        profile=tmp_path / "chromium-profile",
        screenshot=tmp_path / "dashboard-invalid.png",
        ready=shown,
    )
    banner = _by_id(page, "invalid-resources")
    assert banner.text().startswith("1 stored resource no longer validates")
    [item] = banner.find_all("li")
    assert item.text().startswith(f"service/web (version {version}): protocol: Input should be")
    assert item.text().endswith("; also not sent: endpoint/web-1")
    # web keeps its row, with its endpoint, marked invalid with the reason.
    rows = {div.text(): div for div in _table(page, "services").find_all("div", "name")}
    assert set(rows) == {"web invalid", "other no endpoints"}
    [marker] = rows["web invalid"].find_all("span", "pill")
    assert marker.attrs["title"].startswith("protocol: Input should be")
    assert "hidden" in _by_id(page, "api-error").attrs


async def test_dashboard_asks_for_a_token_and_is_read_only_for_a_viewer(
    chromium: str, tmp_path: Path, mesh: Mesh
) -> None:
    assert mesh.plane is not None
    await mesh.put("services", "web", {})
    await mesh.plane.authority.ensure(["service/web"])  # type: ignore[union-attr]
    signed_out = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui",
        profile=tmp_path / "chromium-signed-out",
        screenshot=tmp_path / "dashboard-signin.png",
        ready=lambda dom: "hidden" not in _by_id(dom, "signin-section").attrs,
    )
    assert "hidden" in _by_id(signed_out, "dashboard").attrs

    revoked = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui#token=not-a-token",
        profile=tmp_path / "chromium-wrong",
        screenshot=tmp_path / "dashboard-wrong.png",
        ready=lambda dom: "hidden" not in _by_id(dom, "signin-message").attrs,
    )
    assert _by_id(revoked, "signin-message").text().startswith("Sign in again:")

    created = await mesh.http.post("/api/v1/tokens", json={"name": "eyes", "role": "viewer"})
    viewer = created.json()["token"]

    def certificates_shown(dom: _Element) -> bool:
        found = [e for e in dom.iter() if e.attrs.get("id") == "certificates"]
        return bool(found) and "service/web" in found[0].text()

    page = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui#token={viewer}",
        profile=tmp_path / "chromium-viewer",
        screenshot=tmp_path / "dashboard-viewer.png",
        ready=certificates_shown,
    )
    assert "hidden" not in _by_id(page, "dashboard").attrs
    assert "read only" in _by_id(page, "who").text()
    rotate = [
        b for b in page.find_all("button") if "data-rotate" in b.attrs and "hidden" not in b.attrs
    ]
    assert rotate == []
    assert "hidden" in _by_id(page, "api-error").attrs


async def test_dashboard_history_lists_revisions_diffs_one_and_offers_rollback_to_editors(
    chromium: str, artifacts: Callable[[str], Path], tmp_path: Path, mesh: Mesh
) -> None:
    assert mesh.plane is not None
    route = {"hosts": ["shop"], "destinations": [{"service": "shop"}], "timeout": "15s"}
    await mesh.put("services", "shop", {})
    batch = [
        {"kind": "service", "name": "cache", "spec": {}},
        {"kind": "route", "name": "shop", "spec": route},
    ]
    applied = await mesh.http.post("/api/v1/apply", json={"documents": batch})
    assert applied.status_code == 200, applied.text
    message = "shop gets <b>5s</b> & no more"  # API text: shown as text, never as markup
    changed = await mesh.http.put(
        "/api/v1/routes/shop",
        json={"spec": {**route, "timeout": "5s"}},
        headers={"X-Change-Message": message},
    )
    assert changed.status_code == 200, changed.text
    revision = changed.json()["version"]
    assert applied.json()["revision"] == revision - 1
    shot = artifacts("dashboard-history.png")

    def diff_shown(dom: _Element) -> bool:
        found = [e for e in dom.iter() if e.attrs.get("id") == "history-detail"]
        return bool(found) and bool(found[0].find_all("div", "diff"))

    # Opened at the newest revision (#revision=N with the token): its row chosen, its diff shown.
    page = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui#token={ADMIN_TOKEN}&revision={revision}",
        profile=tmp_path / "chromium-history",
        screenshot=shot,
        ready=diff_shown,
    )
    print(f"history screenshot: {shot}")
    rows = _history_rows(page)
    assert [r[0] for r in rows] == [str(revision), str(revision - 1), str(revision - 2)]
    assert rows[0][2:] == ["admin", "configured route/shop", message]
    assert rows[1][2:] == ["admin", "created route/shop, created service/cache", "-"]
    assert rows[2][2:] == ["admin", "created service/shop", "-"]
    assert not page.find_all("b")  # the message's <b> stayed text
    chosen = _table(page, "history").find_all("tr", "chosen")
    assert [row.attrs["data-revision"] for row in chosen] == [str(revision)]

    # The diff: route/shop's spec before and after, the timeout line removed and added.
    detail = _by_id(page, "history-detail")
    assert detail.find_all("h3")[0].text().startswith(f"Revision {revision} by admin")
    [resource] = detail.find_all("div", "diff-resource")
    assert resource.attrs["data-resource"] == "routes/shop"
    assert "configured" in resource.find_all("div", "diff-head")[0].text()
    removed = [line.raw_text() for line in resource.find_all("div", "del")]
    added = [line.raw_text() for line in resource.find_all("div", "add")]
    assert removed == ['-  "timeout": "15s",'], removed
    assert added == ['+  "timeout": "5s",'], added
    assert resource.find_all("div", "same"), "unchanged lines around the change are shown"

    # An admin may roll back to the selected revision; the button is there.
    buttons = [b for b in detail.find_all("button") if "data-rollback" in b.attrs]
    assert [b.attrs["data-rollback"] for b in buttons] == [str(revision)]
    assert buttons[0].text() == "Roll back to this revision"
    assert "hidden" in _by_id(page, "api-error").attrs
    data = await asyncio.to_thread(shot.read_bytes)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")

    # A viewer sees the same history and diff, and no rollback button.
    created = await mesh.http.post("/api/v1/tokens", json={"name": "eyes", "role": "viewer"})
    viewer = created.json()["token"]
    page = await _render(
        chromium,
        f"{mesh.plane.api_url}/ui#token={viewer}&revision={revision - 1}",
        profile=tmp_path / "chromium-history-viewer",
        screenshot=tmp_path / "dashboard-history-viewer.png",
        ready=diff_shown,
    )
    assert "read only" in _by_id(page, "who").text()
    assert _history_rows(page)[0][3:] == ["configured route/shop", message]
    # Revision N-1 created two resources: each shown whole, as added lines.
    detail = _by_id(page, "history-detail")
    shown = sorted(r.attrs["data-resource"] for r in detail.find_all("div", "diff-resource"))
    assert shown == ["routes/shop", "services/cache"]
    assert detail.find_all("div", "add")
    assert not detail.find_all("div", "del")
    assert not [b for b in page.find_all("button") if "data-rollback" in b.attrs]
    assert "hidden" in _by_id(page, "api-error").attrs


def _history_rows(page: _Element) -> list[list[str]]:
    """The History table's rows as their cells' text: revision, when, by, what, message."""
    rows = _table(page, "history").find_all("tr")
    return [
        [td.text() for td in row.find_all("td")] for row in rows if "data-revision" in row.attrs
    ]


def _types(proxies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    mine = [p for p in proxies if p["node_id"] == NODE_ID]
    return {t["type"]: t for t in mine[0]["types"]} if mine else {}


def _in_sync(status: dict[str, Any]) -> bool:
    return bool(status["sent_version"] == status["acked_version"])


# ---- Chromium -----------------------------------------------------------------------------------


async def _render(
    binary: str,
    url: str,
    *,
    profile: Path,
    screenshot: Path,
    ready: Callable[[_Element], bool],
) -> _Element:
    """Render `url` until `ready(dom)` holds, saving a screenshot of the same run; the DOM.

    One Chromium run per attempt, each bounded by RENDER_TIMEOUT; AssertionError with the last
    DOM when RENDER_DEADLINE passes first.
    """
    deadline = time.monotonic() + RENDER_DEADLINE
    while True:
        started = time.monotonic()
        dom = await _chromium(
            binary,
            f"--user-data-dir={profile}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        )
        print(f"chromium rendered {url} in {time.monotonic() - started:.1f}s")
        page = _parse(dom)
        if ready(page):
            return page
        if time.monotonic() >= deadline:
            raise AssertionError(f"the dashboard never showed the expected state:\n{dom}")


async def _chromium(binary: str, *args: str) -> str:
    """Run Chromium headless and return its stdout; AssertionError if it fails or hangs.

    Chromium runs in its own process group, so a hung run is ended with all its helpers.
    """
    proc = await asyncio.create_subprocess_exec(
        binary,
        *_FLAGS,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RENDER_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise AssertionError(f"chromium did not finish within {RENDER_TIMEOUT:g}s") from None
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{err.decode()[-4000:]}"
    return out.decode()


# ---- the rendered DOM ---------------------------------------------------------------------------


@dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    children: list[_Element | str] = field(default_factory=list)

    def iter(self) -> Iterator[_Element]:
        for child in self.children:
            if isinstance(child, _Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str, cls: str | None = None) -> list[_Element]:
        return [
            e
            for e in self.iter()
            if e.tag == tag and (cls is None or cls in e.attrs.get("class", "").split())
        ]

    def text(self) -> str:
        """The text inside, with whitespace runs collapsed (as a reader sees it)."""
        return " ".join(self.raw_text().split())

    def raw_text(self) -> str:
        """The text inside, exactly (as a <pre> shows it)."""
        return "".join(c if isinstance(c, str) else c.raw_text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Chromium's --dump-dom output (serialized DOM: every non-void element is closed) as a tree."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(_Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def _parse(html: str) -> _Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def _by_id(page: _Element, element_id: str) -> _Element:
    found = [e for e in page.iter() if e.attrs.get("id") == element_id]
    assert len(found) == 1, f"#{element_id}: {len(found)} elements"
    return found[0]


def _table(page: _Element, section: str) -> _Element:
    tables = _by_id(page, section).find_all("table")
    assert tables, f"#{section} shows no table"
    return tables[0]


def _proxy_row(page: _Element, node_id: str) -> _Element | None:
    """The row of the proxies table whose Node cell names `node_id`."""
    container = [e for e in page.iter() if e.attrs.get("id") == "proxies"]
    if not container:
        return None
    for row in container[0].find_all("tr", "group-start"):
        cells = row.find_all("td")
        if len(cells) > 1 and cells[1].text().split()[:1] == [node_id]:
            return row
    return None


def _pill(cell: _Element) -> str | None:
    pills = cell.find_all("span", "pill")
    return pills[0].text() if pills else None
