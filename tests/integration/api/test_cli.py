"""The CLI against a real API server (uvicorn on an ephemeral port, in a thread, over SQLite)."""

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from meshplane.api import create_app
from meshplane.cli import ApiClient, app
from meshplane.settings import Settings
from meshplane.store import create_engine, open_store
from meshplane.xds.status import NackRecord, ProxyStatus, TypeStatus
from tests.support.stored import BAD_VALUE, spoil
from tests.support.tokens import store_token

from .fakes import FakeStatus

MANIFEST = """\
kind: Route
name: to-b
spec:
  gateways: [edge]
  destinations: [{service: b, weight: 3}, {service: c}]
---
kind: endpoint
name: b-1
spec: {service: b, address: 10.0.0.1, port: 8080, labels: {version: v1}}
---
kind: gateways
name: edge
spec: {port: 8000}
---
kind: services
name: b
spec: {protocol: http}
---
kind: Service
name: c
spec: {}
"""


@dataclass
class RunningApi:
    url: str
    status: FakeStatus

    def client(self) -> ApiClient:
        return ApiClient(self.url)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningApi]:
    # The socket listens before the server thread starts, so requests simply queue in the
    # backlog until uvicorn accepts them: nothing to wait for.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    status = FakeStatus()
    created = threading.Event()
    servers: list[uvicorn.Server] = []

    async def run() -> None:
        store = await open_store(f"sqlite:///{tmp_path / 'mesh.db'}")
        await store_token(store)
        try:
            settings = Settings(advertise_address="10.1.2.3", xds_port=18123)
            api = create_app(store=store, status=status, settings=settings)
            config = uvicorn.Config(api, log_config=None, access_log=False, lifespan="off")
            servers.append(uvicorn.Server(config))
            created.set()
            await servers[0].serve(sockets=[sock])
        finally:
            created.set()
            await store.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="api-under-test")
    thread.start()
    try:
        yield RunningApi(f"http://127.0.0.1:{sock.getsockname()[1]}", status)
    finally:
        assert created.wait(timeout=10)
        if servers:
            servers[0].should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive()


def meshplane(server: RunningApi | None, *args: str, input: str | None = None):
    runner = CliRunner()
    url = ["--api-url", server.url] if server else []
    return runner.invoke(app, [*args, *url], input=input)


def test_apply_writes_one_revision_and_reports_each(server: RunningApi, tmp_path: Path):
    manifest = tmp_path / "mesh.yaml"
    manifest.write_text(MANIFEST)  # referrers first: the order of the file does not matter
    result = meshplane(server, "apply", "-f", str(manifest))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "route/to-b created",
        "endpoint/b-1 created",
        "gateway/edge created",
        "service/b created",
        "service/c created",
    ]
    with server.client() as client:
        assert client.server()["revision"] == 1
    again = meshplane(
        server, "apply", "-f", "-", input=MANIFEST.replace("port: 8000", "port: 8001")
    )
    assert again.exit_code == 0, again.stderr
    assert "gateway/edge configured" in again.stdout.splitlines()
    assert "route/to-b unchanged" in again.stdout.splitlines()
    with server.client() as client:
        assert client.get("gateways", "edge")["spec"]["port"] == 8001


def test_apply_refuses_the_whole_file_when_one_document_is_bad(server: RunningApi):
    bad = MANIFEST.replace("port: 8080", "port: 99999").replace("kind: Service", "kind: widget")
    result = meshplane(server, "apply", "-f", "-", input=bad)
    assert result.exit_code == 1
    assert "document 2 (endpoint/b-1): spec.port:" in result.stderr
    assert "document 5: unknown kind 'widget'" in result.stderr
    with server.client() as client:
        assert client.server()["revision"] == 0


def test_apply_reports_a_server_refusal(server: RunningApi):
    dangling = "kind: route\nname: r\nspec: {hosts: [x], destinations: [{service: nope}]}\n"
    result = meshplane(server, "apply", "-f", "-", input=dangling)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: nothing applied:\n"
        "  stdin document 1 (route/r): spec.destinations[0].service: "
        "service 'nope' does not exist\n"
    )


def test_get_in_each_format_and_yaml_applies_back(server: RunningApi):
    assert meshplane(server, "apply", "-f", "-", input=MANIFEST).exit_code == 0
    table = meshplane(server, "get", "endpoints")
    assert table.exit_code == 0
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "SERVICE", "ADDRESS", "WEIGHT", "LABELS", "VERSION", "SOURCE"]
    assert row.split() == ["b-1", "b", "10.0.0.1:8080", "1", "version=v1", "1", "api"]
    routes = meshplane(server, "get", "route").stdout
    assert "b:3,c:1" in routes
    assert "prefix=/" in routes

    one = json.loads(meshplane(server, "get", "Service", "b", "-o", "json").stdout)
    assert (one["kind"], one["name"], one["spec"]["protocol"]) == ("service", "b", "http")
    listing = json.loads(meshplane(server, "get", "services", "-o", "json").stdout)
    assert [item["name"] for item in listing["items"]] == ["b", "c"]

    exported = meshplane(server, "get", "services", "-o", "yaml").stdout
    assert [doc["name"] for doc in yaml.safe_load_all(exported)] == ["b", "c"]
    reapplied = meshplane(server, "apply", "-f", "-", input=exported)
    assert reapplied.stdout.splitlines() == ["service/b unchanged", "service/c unchanged"]


def test_get_missing_and_unknown_kind_fail_with_the_message(server: RunningApi):
    missing = meshplane(server, "get", "services", "nope")
    assert (missing.exit_code, missing.stderr) == (1, "error: service 'nope' not found\n")
    unknown = meshplane(server, "get", "widgets")
    assert unknown.exit_code == 1
    assert "unknown kind 'widgets'" in unknown.stderr


def test_delete(server: RunningApi):
    assert meshplane(server, "apply", "-f", "-", input=MANIFEST).exit_code == 0
    refused = meshplane(server, "delete", "service", "b")
    assert refused.exit_code == 1
    assert "still referenced by endpoints/b-1, routes/to-b" in refused.stderr
    deleted = meshplane(server, "delete", "routes", "to-b")
    assert (deleted.exit_code, deleted.stdout) == (0, "route/to-b deleted\n")
    with server.client() as client:
        assert [r["name"] for r in client.list("routes")] == []


def test_bootstrap_prints_or_writes_the_server_rendered_config(server: RunningApi, tmp_path: Path):
    printed = meshplane(server, "bootstrap", "--role", "gateway", "--gateway", "edge")
    assert printed.exit_code == 0, printed.stderr
    document = yaml.safe_load(printed.stdout)
    assert document["node"]["id"] == "gateway-edge-9901"
    target = tmp_path / "envoy.json"
    written = meshplane(
        server,
        *("bootstrap", "--role", "sidecar", "--service", "b", "--inbound-port", "15001"),
        *("--app-port", "8080", "--outbound-port", "15002", "--delta", "--admin-port", "9902"),
        *("--format", "json", "-o", str(target)),
    )
    assert written.exit_code == 0, written.stderr
    document = json.loads(target.read_text())
    assert document["node"]["id"] == "sidecar-b-9902"
    assert document["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"


def test_bootstrap_names_missing_options(server: RunningApi):
    result = meshplane(server, "bootstrap", "--role", "sidecar", "--service", "b")
    assert result.exit_code == 1
    assert "inbound_port: required when role is sidecar" in result.stderr


def _sidecar_b(since: datetime, *types: TypeStatus) -> ProxyStatus:
    """The status of sidecar-b-9901's stream, holding no revision yet."""
    return ProxyStatus(
        node_id="sidecar-b-9901",
        role="sidecar",
        gateway=None,
        service="b",
        address="10.0.0.1",
        transport="sotw",
        stream_id=1,
        connected_since=since,
        types=list(types),
    )


def test_status_shows_versions_and_nacks(server: RunningApi):
    assert meshplane(server, "status").stdout == "no proxies connected\n"
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    nack = NackRecord("bbbbbbbb2222", "unknown cluster 'x'", since)
    server.status.streams.append(
        _sidecar_b(
            since,
            TypeStatus("clusters", "aaaaaaaa1111", "aaaaaaaa1111", 2, None),
            TypeStatus("routes", "bbbbbbbb2222", "cccccccc3333", 1, nack),
        )
    )
    result = meshplane(server, "status")
    assert result.exit_code == 0, result.stderr
    header, row, nack_line = result.stdout.splitlines()
    assert header.split() == [
        "NODE", "ROLE", "FOR", "TRANSPORT", "REPLICA", "CONNECTED", "REVISION", "CLUSTERS", "ROUTES"
    ]  # fmt: skip
    assert row.split() == [
        "sidecar-b-9901",
        "sidecar",
        "b",
        "sotw",
        "-",
        "2026-01-02T03:04:05Z",
        "-",
        "aaaaaaaa",
        "bbbbbbbb/cccccccc",
        "NACK",
    ]
    assert nack_line == "NACK sidecar-b-9901 routes bbbbbbbb: unknown cluster 'x'"


def test_status_and_get_name_stored_resources_that_no_longer_validate(
    server: RunningApi, tmp_path: Path
):
    assert meshplane(server, "apply", "-f", "-", input=MANIFEST).exit_code == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'mesh.db'}")
    try:
        version = spoil(engine, "services", "c", BAD_VALUE)
    finally:
        engine.dispose()
    result = meshplane(server, "status")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no proxies connected",
        f"INVALID service/c version {version}: protocol: Input should be 'http', 'http2', "
        "'grpc' or 'tcp'; also left out: route/to-b; PUT a valid spec or DELETE it",
    ]
    listed = meshplane(server, "get", "services")
    assert listed.exit_code == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NAME", "b"]
    assert listed.stderr.startswith(f"INVALID service/c version {version}: protocol: ")
    one = meshplane(server, "get", "service", "c")
    assert one.exit_code == 1
    assert "PUT a valid spec over it or DELETE it" in one.stderr


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = CliRunner().invoke(
            app, ["get", "services", "--api-url", f"http://127.0.0.1:{port}"]
        )
    assert result.exit_code == 1
    assert f"cannot reach meshplane at http://127.0.0.1:{port}" in result.stderr


def test_serve_refuses_bad_settings():
    result = CliRunner().invoke(app, ["serve", "--api-port", "70000"])
    assert result.exit_code == 1
    assert "api_port" in result.stderr


@pytest.mark.parametrize(
    "command", ["serve", "apply", "get", "delete", "status", "bootstrap", "explain"]
)
def test_every_command_has_help(command: str):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--help" in result.stdout


TRAFFIC = """\
kind: service
name: shop
spec: {lb_policy: ring_hash}
---
kind: endpoint
name: shop-1
spec: {service: shop, address: 10.0.0.1, port: 80, zone: a}
---
kind: gateway
name: edge
spec: {port: 8000}
---
kind: route
name: api
spec:
  gateways: [edge]
  match: {prefix: /api/, headers: [{name: x-user, present: true}]}
  rewrite: {prefix: /}
  sticky: {header: x-user}
  retries: {attempts: 2}
  destinations: [{service: shop}]
---
kind: route
name: root
spec: {gateways: [edge], destinations: [{service: shop}]}
"""


def test_explain_prints_the_route_why_not_the_others_and_where_it_goes(server: RunningApi):
    applied = meshplane(server, "apply", "-f", "-", input=TRAFFIC)
    assert applied.exit_code == 0, applied.stderr
    args = ["explain", "--gateway", "edge", "--host", "shop.example", "--path", "/api/items"]
    result = meshplane(server, *args, "--header", "x-user=alice")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "gateway 'edge', host 'shop.example' (virtual host '*'):"
    assert lines[1] == "  route 'api' forwards /items: 100% to shop"
    assert any(line.startswith("root") and "'api' comes first" in line for line in lines)
    assert "  100% shop (ring_hash): 10.0.0.1:80" in lines
    assert any(line.startswith("  retries:") for line in lines)

    without = meshplane(server, *args, "-o", "json")
    assert without.exit_code == 0, without.stderr
    answer = json.loads(without.stdout)
    assert answer["route"] == "root"
    assert answer["candidates"][0]["reasons"] == ["header 'x-user' is absent (it must be present)"]

    both = meshplane(server, "explain", "--gateway", "edge", "--from", "shop", "--host", "x")
    assert both.exit_code == 1
    assert "give --gateway NAME or --from SERVICE" in both.stderr
    missing = meshplane(server, "explain", "--gateway", "nope", "--host", "x")
    assert missing.stderr == "error: gateway: gateway 'nope' does not exist\n"


def test_apply_takes_directories_and_files_as_one_batch(server: RunningApi, tmp_path: Path):
    mesh = tmp_path / "mesh"
    mesh.mkdir()
    (mesh / "a-routes.yaml").write_text(MANIFEST.split("---\n")[0])  # read first: refers ahead
    (mesh / "b-rest.yml").write_text("---\n".join(MANIFEST.split("---\n")[1:]))
    (mesh / "notes.txt").write_text("not a manifest")
    extra = tmp_path / "extra.yaml"
    extra.write_text("kind: service\nname: d\nspec: {}\n")
    result = meshplane(server, "apply", "-f", str(mesh), "-f", str(extra))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "route/to-b created"
    assert result.stdout.splitlines()[-1] == "service/d created"
    with server.client() as client:
        assert client.server()["revision"] == 1

    hidden = (
        "kind: route\nname: also-to-b\nspec: {gateways: [edge], destinations: [{service: b}]}\n"
    )
    refused = meshplane(server, "apply", "-f", str(extra), "-f", "-", input=hidden)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: nothing applied:\n  stdin document 1 (route/also-to-b): "
    )
    assert "can never match" in refused.stderr
    with server.client() as client:
        assert client.server()["revision"] == 1


def test_history_shows_who_changed_what_and_why(server: RunningApi):
    applied = meshplane(server, "apply", "-f", "-", "-m", "first mesh", input=MANIFEST)
    assert applied.exit_code == 0, applied.stderr
    assert applied.stderr == "revision 1\n"
    assert meshplane(server, "delete", "route", "to-b").exit_code == 0
    shown = meshplane(server, "history")
    assert shown.exit_code == 0, shown.stderr
    header, deleted, created = shown.stdout.splitlines()
    assert header.split() == ["REVISION", "AT", "BY", "CHANGES", "MESSAGE"]
    assert deleted.split()[0] == "2"
    assert deleted.split()[-3:] == ["admin", "deleted", "route/to-b"]
    assert created.split()[0] == "1"
    assert "created endpoint/b-1, created gateway/edge, created route/to-b, +2 more" in created
    assert created.endswith("first mesh")
    only = meshplane(server, "history", "service", "c")
    assert (
        only.stdout.splitlines()[1].split()[-2:] == ["service/c", "first"]
        or "service/c" in only.stdout
    )


def test_diff_get_at_a_revision_and_rollback(server: RunningApi):
    assert meshplane(server, "apply", "-f", "-", input=MANIFEST).exit_code == 0
    canary = MANIFEST.replace("weight: 3}, {service: c}", "weight: 1}, {service: c, weight: 9}")
    assert meshplane(server, "apply", "-f", "-", "-m", "canary", input=canary).exit_code == 0
    shown = meshplane(server, "diff")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:2] == ["--- route/to-b (revision 1)", "+++ route/to-b (revision 2)"]
    changed = [line for line in lines[2:] if line[:1] in "+-"]
    assert changed == ["-    weight: 3", "+    weight: 1", "-    weight: 1", "+    weight: 9"]
    as_json = json.loads(meshplane(server, "diff", "0", "2", "-o", "json").stdout)
    assert {(c["kind"], c["name"], c["op"]) for c in as_json["changes"]} == {
        (kind, name, "created")
        for kind, name in [
            ("routes", "to-b"),
            ("endpoints", "b-1"),
            ("gateways", "edge"),
            ("services", "b"),
            ("services", "c"),
        ]
    }

    then = meshplane(server, "get", "route", "to-b", "--revision", "1", "-o", "yaml")
    assert then.exit_code == 0, then.stderr
    (document,) = yaml.safe_load_all(then.stdout)
    assert [d["weight"] for d in document["spec"]["destinations"]] == [3, 1]
    missing = meshplane(server, "get", "route", "to-b", "--revision", "0")
    assert missing.stderr == "error: route 'to-b' did not exist at revision 0\n"

    dry = meshplane(server, "rollback", "1", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "route/to-b configured (dry run)" in dry.stdout
    assert dry.stdout.startswith("--- route/to-b (now)\n+++ route/to-b (after)\n")
    assert "+    weight: 3\n" in dry.stdout
    rolled = meshplane(server, "rollback", "1")
    assert rolled.exit_code == 0, rolled.stderr
    assert rolled.stdout.splitlines()[0] == "route/to-b configured"
    assert "auto-registered endpoints are not rolled back" in rolled.stdout
    assert rolled.stderr == "revision 3\n"
    with server.client() as client:
        weights = [d["weight"] for d in client.get("routes", "to-b")["spec"]["destinations"]]
    assert weights == [3, 1]
    again = meshplane(server, "rollback", "1")
    assert again.stdout == "nothing to do: the mesh is as it was at revision 1\n"
    gone = meshplane(server, "rollback", "7")
    assert gone.exit_code == 1
    assert "revision 7 does not exist yet" in gone.stderr


def test_apply_prune_makes_the_mesh_equal_to_the_files(server: RunningApi, tmp_path: Path):
    assert meshplane(server, "apply", "-f", "-", input=MANIFEST).exit_code == 0
    without_c = MANIFEST.replace("weight: 3}, {service: c}]", "weight: 3}]")
    without_c = without_c[: without_c.index("---\nkind: Service\nname: c")]
    dry = meshplane(server, "apply", "-f", "-", "--prune", "--dry-run", input=without_c)
    assert dry.exit_code == 0, dry.stderr
    assert "service/c deleted (dry run)" in dry.stdout
    assert "--- service/c (now)" in dry.stdout
    with server.client() as client:
        assert client.server()["revision"] == 1
    refused = meshplane(
        server,
        "apply",
        "-f",
        "-",
        "--prune-kinds",
        "service",
        "--prune",
        input=MANIFEST.split("---\n")[3],
    )
    assert refused.exit_code == 1
    assert "is still referenced by" in refused.stderr
    pruned = meshplane(server, "apply", "-f", "-", "--prune", input=without_c)
    assert pruned.exit_code == 0, pruned.stderr
    assert pruned.stdout.splitlines()[-1] == "service/c deleted"
    with server.client() as client:
        assert [s["name"] for s in client.list("services")] == ["b"]


def test_apply_prune_deletes_a_route_removed_from_the_directory(server: RunningApi, tmp_path: Path):
    mesh = tmp_path / "mesh"
    mesh.mkdir()
    documents = MANIFEST.split("---\n")
    for i, document in enumerate(documents):
        (mesh / f"{i}.yaml").write_text(document)
    (mesh / "5.yaml").write_text(
        "kind: route\nname: to-c\nspec: {gateways: [edge], match: {prefix: /c}, "
        "destinations: [{service: c}]}\n"
    )
    assert meshplane(server, "apply", "-f", str(mesh)).exit_code == 0
    (mesh / "5.yaml").unlink()
    synced = meshplane(server, "apply", "-f", str(mesh), "--prune", "-m", "sync")
    assert synced.exit_code == 0, synced.stderr
    assert synced.stdout.splitlines()[-1] == "route/to-c deleted"
    with server.client() as client:
        assert [r["name"] for r in client.list("routes")] == ["to-b"]

    (mesh / "3.yaml").unlink()  # service b: still referred to by route to-b and endpoint b-1
    refused = meshplane(server, "apply", "-f", str(mesh), "--prune")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: nothing applied:\n  pruning services/b: service 'b' is still referenced by "
        "endpoints/b-1, routes/to-b\n"
    )
    with server.client() as client:
        assert [s["name"] for s in client.list("services")] == ["b", "c"]


def test_wait_does_not_blame_a_change_for_an_earlier_nack(server: RunningApi):
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    nack = NackRecord("bbbb", "unknown cluster 'x'", since)
    # stuck on the NACK since before the change: it holds no revision
    stuck = _sidecar_b(since, TypeStatus("routes", "bbbb", "cccc", 1, nack))
    server.status.streams.append(stuck)
    manifest = "kind: service\nname: d\nspec: {}\n"
    waited = meshplane(
        server, "apply", "-f", "-", "--rollback-on-nack", "--timeout", "1", input=manifest
    )
    assert waited.exit_code == 1
    assert "NACK" not in waited.stderr
    assert "not every proxy holds revision 1 after 1s: sidecar-b-9901" in waited.stderr
    with server.client() as client:
        assert client.server()["revision"] == 1  # not rolled back
