"""The mesh's history through a real Envoy: a canary applied, seen in the history and the
diff, then rolled back until Envoy serves only v1 again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from typer.testing import CliRunner

from meshplane.cli import app
from meshplane.model import ProxyGroup
from meshplane.store import TokenRepo
from meshplane.xds import CLUSTER
from tests.e2e.conftest import Mesh, make_settings, running_mesh
from tests.e2e.edge import EDGE, answered_only_by, gateway
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.tokens import bearer
from tests.support.traffic import hits, wait_until_served

pytestmark = pytest.mark.e2e


def _documents(port: int, v1: HttpBackend, v2: HttpBackend, v2_weight: int) -> list[dict[str, Any]]:
    """The whole mesh as a file holds it: the shop, its two versions, the edge and its route."""
    endpoints = [
        {
            "kind": "endpoint",
            "name": backend.name,
            "spec": {
                "service": "shop",
                "address": backend.address,
                "port": backend.port,
                "labels": {"version": backend.name},
            },
        }
        for backend in (v1, v2)
    ]
    destinations = [
        {"service": "shop", "labels": {"version": "v1"}, "weight": 100 - v2_weight},
        {"service": "shop", "labels": {"version": "v2"}, "weight": v2_weight},
    ]
    return [
        {"kind": "service", "name": "shop", "spec": {}},
        *endpoints,
        {"kind": "gateway", "name": "edge", "spec": {"port": port, "address": "127.0.0.1"}},
        {
            "kind": "route",
            "name": "shop",
            "spec": {
                "gateways": ["edge"],
                "match": {"prefix": "/shop"},
                "destinations": destinations,
            },
        },
    ]


async def test_a_canary_is_in_the_history_and_the_diff_and_rolls_back(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    assert mesh.plane is not None
    assert mesh.plane.store is not None
    deploy = bearer(
        await TokenRepo(mesh.plane.store.database).create(
            "deploy", "editor", expires_at=None, created_by="test", now=datetime.now(UTC)
        )
    )
    v1, v2 = backends("v1"), backends("v2")
    bootstrap, url = await gateway(mesh)
    port = int(url.rsplit(":", 1)[1])

    async def apply(v2_weight: int, message: str, **headers: str) -> int:
        body = {"documents": _documents(port, v1, v2, v2_weight), "message": message}
        answer = await mesh.http.post("/api/v1/apply", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        revision: int = answer.json()["revision"]
        return revision

    a = await apply(0, "shop v1")
    async with EnvoyProcess(bootstrap):
        await wait_until_served(url + "/shop", lambda r: r.status_code == 200)
        await answered_only_by(url + "/shop", {"v1"})
        b = await apply(50, "canary v2 at half", **deploy)
        assert b == a + 1
        await answered_only_by(url + "/shop", {"v1", "v2"})
        assert set(await hits(url + "/shop", 100)) == {"v1", "v2"}

        changes = (await mesh.http.get("/api/v1/changes")).json()["items"]
        by_revision = {c["revision"]: (c["by"], c["message"]) for c in changes}
        assert by_revision[b] == ("deploy", "canary v2 at half")
        assert by_revision[a] == ("admin", "shop v1")

        diff = (await mesh.http.get("/api/v1/diff", params={"from": a, "to": b})).json()
        (change,) = diff["changes"]
        assert (change["kind"], change["name"], change["op"]) == ("routes", "shop", "configured")
        before, after = change["before"]["spec"], change["after"]["spec"]
        assert [d["weight"] for d in before["destinations"]] == [100, 0]
        assert [d["weight"] for d in after["destinations"]] == [50, 50]
        assert {k: v for k, v in before.items() if k != "destinations"} == {
            k: v for k, v in after.items() if k != "destinations"
        }

        rolled = await mesh.http.post("/api/v1/rollback", json={"revision": a})
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["revision"] == b + 1
        assert [(d["name"], d["outcome"]) for d in rolled.json()["documents"]] == [
            ("shop", "configured")
        ]
        await answered_only_by(url + "/shop", {"v1"})
        assert set(await hits(url + "/shop", 100)) == {"v1"}
    await mesh.validate_served(EDGE)


async def _dry_run(mesh: Mesh, documents: list[dict[str, Any]]) -> dict[str, Any]:
    before = (await mesh.http.get("/api/v1/server")).json()["revision"]
    answer = await mesh.http.post(
        "/api/v1/apply", params={"dry_run": True}, json={"documents": documents}
    )
    assert answer.status_code == 200, answer.text
    assert (await mesh.http.get("/api/v1/server")).json()["revision"] == before
    body: dict[str, Any] = answer.json()
    return body


async def _connected(mesh: Mesh, count: int) -> None:
    """Wait (bounded) until `count` proxies hold their routes."""
    for _ in range(200):
        proxies = await mesh.proxies()
        held = [
            p
            for p in proxies
            if any(t["type"] == "routes" and t["acked_version"] for t in p["types"])
        ]
        if len(held) == count:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} proxies never held their routes")


def _by_gateway(answer: dict[str, Any]) -> dict[str, dict[str, dict[str, list[str]]]]:
    return {p["gateway"]: p["changes"] for p in answer["proxies"]}


async def test_a_dry_run_says_what_each_connected_proxy_would_get(
    mesh: Mesh, backends: Callable[[str], HttpBackend]
) -> None:
    assert mesh.plane is not None
    v1, v2 = backends("v1"), backends("v2")
    edge_bootstrap, url = await gateway(mesh)
    port = int(url.rsplit(":", 1)[1])
    for document in _documents(port, v1, v2, 0):
        await mesh.put(document["kind"] + "s", document["name"], document["spec"])
    await mesh.put("gateways", "side", {"port": free_port(), "address": "127.0.0.1"})
    side_bootstrap = await mesh.bootstrap(role="gateway", gateway="side", admin_port=free_port())
    async with EnvoyProcess(edge_bootstrap), EnvoyProcess(side_bootstrap):
        await wait_until_served(url + "/shop", lambda r: r.status_code == 200)
        await _connected(mesh, 2)

        (route,) = [d for d in _documents(port, v1, v2, 30) if d["kind"] == "route"]
        answer = await _dry_run(mesh, [route])
        assert [d["outcome"] for d in answer["documents"]] == ["configured"]
        (edge,) = answer["proxies"]
        assert (edge["role"], edge["gateway"], len(edge["nodes"])) == ("gateway", "edge", 1)
        assert edge["changes"] == {
            "routes": {"added": [], "changed": ["gateway:edge"], "removed": []}
        }

        service = {"kind": "service", "name": "shop", "spec": {"connect_timeout": "3s"}}
        changes = _by_gateway(await _dry_run(mesh, [service]))
        assert set(changes) == {"edge", "side"}
        subsets = ["shop", "shop|version=v1", "shop|version=v2"]
        assert changes["side"]["clusters"]["changed"] == subsets
        assert set(changes["side"]) == {"clusters"}

        moved = {
            "kind": "endpoint",
            "name": "v1",
            "spec": {"service": "shop", "address": "127.0.0.1", "port": free_port()},
        }
        changes = _by_gateway(await _dry_run(mesh, [moved]))
        assert set(changes) == {"edge", "side"}
        assert set(changes["edge"]) == {"endpoints"}
        assert "shop" in changes["edge"]["endpoints"]["changed"]
        # `meshplane apply --dry-run` shows the same, and the diff
        shown = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["apply", "-f", "-", "--dry-run", "--api-url", mesh.plane.api_url],
            input=json.dumps(route),
        )
        assert shown.exit_code == 0, shown.output
        assert "  gateway edge [" in shown.stdout
        assert "]: routes ~gateway:edge\n" in shown.stdout
        assert "+    weight: 30\n" in shown.stdout
        # the routes still serve v1 only: nothing was written
        assert set(await hits(url + "/shop", 20)) == {"v1"}


class _RefuseSlowConnect:
    """Test hook: cluster `web` with a 7 s connect timeout gets a negative one instead, which
    Envoy rejects (a NACK); every other setting passes."""

    def __call__(self, group: ProxyGroup | None, resources: dict[str, list[Message]]) -> None:
        for cluster in resources.get(CLUSTER, []) if group is None else []:
            if cluster.name == "web" and cluster.connect_timeout.seconds == 7:  # type: ignore[attr-defined]
                cluster.connect_timeout.seconds = -1  # type: ignore[attr-defined]


def _cli(mesh: Mesh, *args: str, stdin: str = "") -> Any:
    assert mesh.plane is not None
    command = [*args, "--api-url", mesh.plane.api_url]
    return asyncio.to_thread(CliRunner().invoke, app, command, input=stdin)


async def test_apply_wait_rolls_back_a_change_envoy_refuses(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    async with running_mesh(make_settings(tmp_path), hook=_RefuseSlowConnect()) as mesh:
        await mesh.put("services", "web", {"connect_timeout": "5s"})
        await mesh.put(
            "endpoints", "web-1", {"service": "web", "address": "127.0.0.1", "port": web.port}
        )
        bootstrap, url = await gateway(mesh)
        await mesh.put(
            "routes", "web", {"gateways": ["edge"], "destinations": [{"service": "web"}]}
        )
        async with EnvoyProcess(bootstrap) as envoy:
            await wait_until_served(url, lambda r: r.status_code == 200)
            fine = "kind: service\nname: web\nspec: {connect_timeout: 6s}\n"
            waited = await _cli(mesh, "apply", "-f", "-", "--wait", stdin=fine)
            assert waited.exit_code == 0, waited.output
            assert "1/1 proxies hold revision 5" in waited.stderr

            refused = fine.replace("6s", "7s")
            nacked = await _cli(mesh, "apply", "-f", "-", "--rollback-on-nack", stdin=refused)
            assert nacked.exit_code == 1, nacked.output
            assert "positive duration" in nacked.stderr
            assert "revision 6 was refused by a proxy: rolled back (revision 7)" in nacked.stderr

            history = (await mesh.http.get("/api/v1/changes", params={"limit": 1})).json()
            assert history["items"][0]["message"] == "revision 6 was NACKed"
            # The proxy ends on the previous configuration, and holds the rollback.
            await envoy.wait_for(lambda: _holds(mesh, 7), timeout=10)
            clusters = await envoy.config_dump("dynamic_active_clusters")
            (web_cluster,) = [c for c in clusters["configs"] if c["cluster"]["name"] == "web"]
            assert web_cluster["cluster"]["connect_timeout"] == "6s"
            stored = (await mesh.http.get("/api/v1/services/web")).json()["spec"]
            assert stored["connect_timeout"] == "6s"


async def _holds(mesh: Mesh, revision: int) -> bool:
    return all(p["revision"] == revision for p in await mesh.proxies())


async def test_validate_envoy_refuses_what_envoy_would_reject_before_storing_it(
    tmp_path: Path, backends: Callable[[str], HttpBackend]
) -> None:
    web = backends("web")
    async with running_mesh(make_settings(tmp_path), hook=_RefuseSlowConnect()) as mesh:
        await mesh.put("services", "web", {"connect_timeout": "5s"})
        endpoint = {"service": "web", "address": "127.0.0.1", "port": web.port}
        await mesh.put("endpoints", "web-1", endpoint)
        bootstrap, url = await gateway(mesh)
        route = {"gateways": ["edge"], "destinations": [{"service": "web"}]}
        await mesh.put("routes", "web", route)
        async with EnvoyProcess(bootstrap) as envoy:
            await wait_until_served(url, lambda r: r.status_code == 200)
            await _connected(mesh, 1)
            revision = (await mesh.http.get("/api/v1/server")).json()["revision"]
            refused = "kind: service\nname: web\nspec: {connect_timeout: 7s}\n"

            dry = await _cli(
                mesh, "apply", "-f", "-", "--dry-run", "--validate-envoy", stdin=refused
            )
            assert dry.exit_code == 0, dry.output
            assert "    Envoy would reject it: " in dry.stdout
            assert "positive duration" in dry.stdout

            stopped = await _cli(mesh, "apply", "-f", "-", "--validate-envoy", stdin=refused)
            assert stopped.exit_code == 1, stopped.output
            assert "Envoy would reject the configuration of gateway edge" in stopped.stderr
            assert "positive duration" in stopped.stderr
            assert "nothing was written" in stopped.stderr
            assert (await mesh.http.get("/api/v1/server")).json()["revision"] == revision
            stats = await envoy.stats()
            assert stats.get("cluster_manager.cds.update_rejected", 0) == 0  # never sent

            fine = refused.replace("7s", "6s")
            taken = await _cli(mesh, "apply", "-f", "-", "--validate-envoy", "--wait", stdin=fine)
            assert taken.exit_code == 0, taken.output
            assert f"1/1 proxies hold revision {revision + 1}" in taken.stderr
