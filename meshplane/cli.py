"""The `meshplane` command: run the control plane, or manage a running one over its REST API.

The composition root: `serve` builds Settings (flags over MESHPLANE_* variables), configures
logging (the only place that does) and hands over to `meshplane.serve`. Every other command is
a thin layer over `ApiClient`; its errors print the server's message and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from meshplane.cli_certs import ca_app, certs_app
from meshplane.cli_demo import demo_app
from meshplane.cli_explain import explain as explain_command
from meshplane.cli_output import ApiUrl
from meshplane.cli_output import fail as _fail
from meshplane.cli_output import reporting as _reporting
from meshplane.cli_output import table as _table
from meshplane.cli_proxy import proxy as proxy_command
from meshplane.client import DEFAULT_API_URL, ApiClient, format_loc
from meshplane.logs import configure_logging
from meshplane.model import KINDS, NAME_PATTERN, Kind, kind_named

__all__ = ["app", "main"]

app = typer.Typer(
    name="meshplane",
    help="A service-mesh control plane for Envoy.",
    no_args_is_help=True,
    add_completion=False,
)


# apply writes kinds in this order so that whatever a resource refers to exists first.
APPLY_ORDER = ("meshes", "services", "gateways", "endpoints", "routes", "authorization-policies")
# Fields `get -o yaml` prints that apply accepts back and ignores: the server owns them.
_READ_ONLY = frozenset({"version", "source", "created_at", "updated_at"})


class Output(StrEnum):
    TABLE = "table"
    YAML = "yaml"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class BootstrapRole(StrEnum):
    GATEWAY = "gateway"
    SIDECAR = "sidecar"


class BootstrapFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


def _kind(word: str) -> Kind:
    try:
        return kind_named(word)
    except KeyError as exc:
        _fail(exc.args[0])


@app.command()
def serve(
    database_url: Annotated[
        str | None,
        typer.Option(
            help="sqlite:///FILE or postgresql://USER@HOST/DB. (default: sqlite:///meshplane.db)"
        ),
    ] = None,
    api_host: Annotated[
        str | None, typer.Option(help="Address the REST API listens on. (default: 127.0.0.1)")
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the REST API; 0 picks a free one. (default: 8080)")
    ] = None,
    xds_host: Annotated[
        str | None, typer.Option(help="Address the xDS (ADS) server listens on. (default: 0.0.0.0)")
    ] = None,
    xds_port: Annotated[
        int | None,
        typer.Option(help="Port of the xDS server; 0 picks a free one. (default: 18000)"),
    ] = None,
    advertise_address: Annotated[
        str | None,
        typer.Option(help="Host generated bootstraps point Envoy at. (default: 127.0.0.1)"),
    ] = None,
    trust_domain: Annotated[
        str | None,
        typer.Option(help="SPIFFE trust domain of the mesh. (default: meshplane.local)"),
    ] = None,
    xds_tls: Annotated[
        bool | None,
        typer.Option(
            "--xds-tls/--no-xds-tls",
            help="Serve xDS over TLS with a certificate from the mesh CA. (default: off)",
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="Log verbosity.")] = LogLevel.INFO,
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one object per line with the key=value pairs as fields.",
            envvar="MESHPLANE_LOG_FORMAT",
        ),
    ] = "text",
) -> None:
    """Run the control plane (REST API and xDS server) until interrupted.

    Each option left out falls back to its MESHPLANE_* environment variable (e.g.
    MESHPLANE_DATABASE_URL), then to the default shown.
    """
    # Imported here: only serve needs gRPC, uvicorn and the xDS machinery.
    from meshplane.serve import serve as run
    from meshplane.settings import Settings

    given: dict[str, Any] = {
        "database_url": database_url,
        "api_host": api_host,
        "api_port": api_port,
        "xds_host": xds_host,
        "xds_port": xds_port,
        "advertise_address": advertise_address,
        "trust_domain": trust_domain,
        "xds_tls": xds_tls,
    }
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        _fail("; ".join(f"{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()))
    if log_format not in ("text", "json"):
        _fail(f"--log-format must be text or json, not {log_format!r}")
    configure_logging(log_level, log_format)
    with suppress(KeyboardInterrupt):
        asyncio.run(run(settings))


@dataclass(frozen=True, slots=True)
class _Document:
    kind: Kind
    name: str
    spec: dict[str, Any]


def _read_documents(text: str) -> list[_Document]:
    """Parse and validate every document; exit naming each bad one (1-based) if any is."""
    try:
        raw = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        _fail(f"not valid YAML: {exc}")
    documents: list[_Document] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for index, doc in enumerate(raw, start=1):
        where = f"document {index}"
        if not isinstance(doc, dict):
            problems.append(f"{where}: must be a mapping with kind, name and spec")
            continue
        missing = [key for key in ("kind", "name", "spec") if key not in doc]
        unknown = sorted(set(doc) - {"kind", "name", "spec"} - _READ_ONLY)
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if unknown:
            problems.append(f"{where}: unknown field {', '.join(map(str, unknown))}")
            continue
        try:
            kind = kind_named(str(doc["kind"]))
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]}")
            continue
        name = doc["name"]
        where = f"{where} ({kind.singular}/{name})"
        if not isinstance(name, str) or not _valid_name(name):
            problems.append(f"{where}: name must match {NAME_PATTERN}")
            continue
        if (kind.plural, name) in seen:
            problems.append(f"{where}: appears more than once")
        seen.add((kind.plural, name))
        try:
            kind.parse(doc["spec"])
        except ValidationError as exc:
            problems.extend(
                f"{where}: {format_loc(('spec', *e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            continue
        documents.append(_Document(kind, name, doc["spec"]))
    if problems:
        _fail("nothing applied:\n  " + "\n  ".join(problems))
    last = len(APPLY_ORDER)
    return sorted(
        documents,
        key=lambda d: APPLY_ORDER.index(d.kind.plural) if d.kind.plural in APPLY_ORDER else last,
    )


def _valid_name(name: str) -> bool:
    return len(name) <= 63 and re.fullmatch(NAME_PATTERN, name) is not None


@app.command()
def apply(
    filename: Annotated[
        str,
        typer.Option(
            "-f", "--filename", help="YAML file of documents {kind, name, spec}; '-' reads stdin."
        ),
    ],
    api_url: ApiUrl = DEFAULT_API_URL,
) -> None:
    """Create or update every resource in a YAML file, in dependency order.

    All documents are checked first; if any is invalid nothing is sent. Then services,
    gateways, endpoints and routes are written in that order, each printed as created,
    configured or unchanged. A server-side refusal stops there (earlier writes stay).
    """
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as exc:
        _fail(f"cannot read {filename}: {exc.strerror}")
    documents = _read_documents(text)
    with ApiClient(api_url) as client, _reporting():
        # Versions before the writes: a PUT that leaves the version alone changed nothing.
        before = {
            (plural, item["name"]): item["version"]
            for plural in {doc.kind.plural for doc in documents}
            for item in client.list(plural)
        }
        for doc in documents:
            stored, created = client.put(doc.kind.plural, doc.name, doc.spec)
            if created:
                outcome = "created"
            elif before.get((doc.kind.plural, doc.name)) == stored["version"]:
                outcome = "unchanged"
            else:
                outcome = "configured"
            typer.echo(f"{doc.kind.singular}/{doc.name} {outcome}")


def _join(values: Iterable[object]) -> str:
    return ",".join(map(str, values)) or "-"


def _route_match(match: dict[str, Any]) -> str:
    path = next(f"{key}={match[key]}" for key in ("prefix", "path", "regex") if key in match)
    extra = len(match.get("headers", [])) + len(match.get("query", []))
    extra += 1 if match.get("methods") else 0
    return f"{path} (+{extra})" if extra else path


def _route_action(spec: dict[str, Any]) -> str:
    """Where a route sends requests: weighted services, or what it answers itself."""
    if "redirect" in spec:
        return f"redirect {spec['redirect']['status']}"
    if "direct_response" in spec:
        return f"answer {spec['direct_response']['status']}"
    return _join(f"{d['service']}:{d['weight']}" for d in spec["destinations"])


# Per kind: the spec columns `get` shows in a table.
_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {
    "services": (
        ("PROTOCOL", lambda s: s["protocol"]),
        ("LB", lambda s: s["lb_policy"]),
        ("CONNECT-TIMEOUT", lambda s: s["connect_timeout"]),
    ),
    "endpoints": (
        ("SERVICE", lambda s: s["service"]),
        ("ADDRESS", lambda s: f"{s['address']}:{s['port']}"),
        ("WEIGHT", lambda s: s["weight"]),
        ("LABELS", lambda s: _join(f"{k}={v}" for k, v in sorted(s["labels"].items()))),
    ),
    "gateways": (
        ("ADDRESS", lambda s: f"{s['address']}:{s['port']}"),
        ("HOSTS", lambda s: _join(s["hosts"])),
    ),
    "routes": (
        ("GATEWAYS", lambda s: _join(s["gateways"])),
        ("HOSTS", lambda s: _join(s["hosts"])),
        ("MATCH", lambda s: _route_match(s["match"])),
        ("DESTINATIONS", _route_action),
    ),
}


def _resources_table(kind: Kind, items: Sequence[dict[str, Any]]) -> str:
    columns = _COLUMNS.get(kind.plural, (("SPEC", lambda s: json.dumps(s, sort_keys=True)),))
    headers = ["NAME", *(title for title, _ in columns), "VERSION", "SOURCE"]
    rows = [
        [
            item["name"],
            *(str(cell(item["spec"])) for _, cell in columns),
            str(item["version"]),
            item["source"],
        ]
        for item in items
    ]
    return _table(headers, rows)


@app.command()
def get(
    kind: Annotated[str, typer.Argument(help=f"Kind, singular or plural: {', '.join(KINDS)}.")],
    name: Annotated[
        str | None, typer.Argument(help="One resource's name; all when left out.")
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.TABLE,
    api_url: ApiUrl = DEFAULT_API_URL,
) -> None:
    """Show one resource or every resource of a kind.

    `-o yaml` prints documents that `meshplane apply -f` accepts back. A stored resource whose
    spec no longer validates is not shown; an INVALID line on stderr names it and says why.
    """
    resolved = _kind(kind)
    invalid: list[dict[str, Any]] = []
    with ApiClient(api_url) as client, _reporting():
        if name:
            items = [client.get(resolved.plural, name)]
        else:
            listing = client.listing(resolved.plural)
            items, invalid = listing["items"], listing.get("invalid") or []
    for resource in invalid:
        typer.echo(_invalid_line({**resource, "kind": resolved.singular}), err=True)
    if output is Output.JSON:
        typer.echo(json.dumps(items[0] if name else {"items": items}, indent=2))
    elif output is Output.YAML:
        typer.echo(yaml.safe_dump_all(items, sort_keys=False), nl=False)
    elif items:
        typer.echo(_resources_table(resolved, items))
    else:
        typer.echo(f"no {resolved.plural}", err=True)


@app.command()
def delete(
    kind: Annotated[str, typer.Argument(help=f"Kind, singular or plural: {', '.join(KINDS)}.")],
    name: Annotated[str, typer.Argument(help="The resource's name.")],
    api_url: ApiUrl = DEFAULT_API_URL,
) -> None:
    """Delete a resource; refused while other resources still refer to it."""
    resolved = _kind(kind)
    with ApiClient(api_url) as client, _reporting():
        client.delete(resolved.plural, name)
    typer.echo(f"{resolved.singular}/{name} deleted")


def _short(version: str | None) -> str:
    return version[:8] if version else "-"


def _type_cell(status: dict[str, Any]) -> str:
    sent, acked = status["sent_version"], status["acked_version"]
    cell = _short(sent) if sent == acked else f"{_short(sent)}/{_short(acked)}"
    return f"{cell} NACK" if status.get("last_nack") else cell


@app.command()
def status(api_url: ApiUrl = DEFAULT_API_URL) -> None:
    """List connected proxies and where each resource type stands on each.

    Per type: the version sent, then "/" and the version ACKed when they differ (first 8
    characters each), and NACK when Envoy rejected a version; the NACK errors follow the table.
    Last, one INVALID line per stored resource whose spec no longer validates (not sent to
    proxies, with whatever refers to it, until a PUT of a valid spec or a DELETE fixes it).
    """
    with ApiClient(api_url) as client, _reporting():
        proxies = client.proxies()
        invalid = client.server().get("invalid_resources", [])
    _proxies_table(proxies)
    for resource in invalid:
        typer.echo(_invalid_line(resource))


def _invalid_line(resource: dict[str, Any]) -> str:
    line = f"INVALID {resource['kind']}/{resource['name']} version {resource['version']}: "
    line += resource["reason"]
    if resource.get("left_out"):
        line += f"; also left out: {', '.join(resource['left_out'])}"
    return f"{line}; PUT a valid spec or DELETE it"


def _proxies_table(proxies: list[dict[str, Any]]) -> None:
    if not proxies:
        typer.echo("no proxies connected")
        return
    types = sorted({t["type"] for p in proxies for t in p["types"]}, key=_type_order)
    headers = ["NODE", "ROLE", "FOR", "TRANSPORT", "CONNECTED", *(t.upper() for t in types)]
    rows = []
    nacks = []
    for proxy in proxies:
        by_type = {t["type"]: t for t in proxy["types"]}
        target = proxy["gateway"] or proxy["service"] or "-"
        cells = [_type_cell(by_type[t]) if t in by_type else "-" for t in types]
        rows.append(
            [
                proxy["node_id"],
                proxy["role"] or "-",
                target,
                proxy["transport"],
                proxy["connected_since"],
                *cells,
            ]
        )
        for t in proxy["types"]:
            if nack := t.get("last_nack"):
                version = _short(nack["version"])
                nacks.append(f"NACK {proxy['node_id']} {t['type']} {version}: {nack['error']}")
    typer.echo(_table(headers, rows))
    for line in nacks:
        typer.echo(line)


def _type_order(name: str) -> tuple[int, str]:
    order = ("clusters", "endpoints", "listeners", "routes", "secrets")
    return (order.index(name) if name in order else len(order), name)


@app.command()
def bootstrap(
    role: Annotated[
        BootstrapRole, typer.Option(help="gateway: an edge Envoy; sidecar: one per instance.")
    ],
    gateway: Annotated[str | None, typer.Option(help="gateway: the gateway it serves.")] = None,
    service: Annotated[str | None, typer.Option(help="sidecar: the service it belongs to.")] = None,
    inbound_port: Annotated[int | None, typer.Option(help="sidecar: where peers reach it.")] = None,
    app_port: Annotated[
        int | None, typer.Option(help="sidecar: where its app listens on 127.0.0.1.")
    ] = None,
    outbound_port: Annotated[
        int | None, typer.Option(help="sidecar: where its app sends outgoing requests.")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="sidecar: the IP peers reach it at. (default: the address it connects to "
            "the control plane from)"
        ),
    ] = None,
    node_id: Annotated[
        str | None,
        typer.Option(help="Envoy's node id. (default: <role>-<gateway or service>-<admin port>)"),
    ] = None,
    admin_port: Annotated[
        int | None, typer.Option(help="Envoy's admin port, on 127.0.0.1. (default: 9901)")
    ] = None,
    xds_host: Annotated[
        str | None,
        typer.Option(help="Where Envoy reaches xDS. (default: the server's advertised address)"),
    ] = None,
    xds_port: Annotated[
        int | None, typer.Option(help="The xDS port. (default: the server's xDS port)")
    ] = None,
    delta: Annotated[
        bool, typer.Option("--delta", help="Use delta xDS instead of state of the world.")
    ] = False,
    format: Annotated[
        BootstrapFormat, typer.Option("--format", help="Output format.")
    ] = BootstrapFormat.YAML,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="sidecar: KEY=VALUE label of its endpoint (repeatable)."),
    ] = None,
    zone: Annotated[
        str | None,
        typer.Option(
            help="Where it runs: it prefers endpoints in this zone, fails over to others."
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
) -> None:
    """Print (or write) an Envoy bootstrap that points Envoy at this control plane.

    It carries the node token the control plane issued for the service or gateway: without it
    the xDS server refuses the proxy. Treat the file like a credential.

    Run Envoy with it: `envoy -c bootstrap.yaml`. The named gateway or service need not exist yet.
    """
    with ApiClient(api_url) as client, _reporting():
        text = client.bootstrap(
            role=role.value,
            gateway=gateway,
            service=service,
            inbound_port=inbound_port,
            app_port=app_port,
            outbound_port=outbound_port,
            address=address,
            node_id=node_id,
            admin_port=admin_port,
            xds_host=xds_host,
            xds_port=xds_port,
            delta=delta,
            format="json" if format is BootstrapFormat.JSON else "yaml",
            labels=label or (),
            zone=zone,
        )
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    typer.echo(f"wrote {output}", err=True)


app.add_typer(certs_app, name="certs")
app.add_typer(ca_app, name="ca")
app.add_typer(demo_app, name="demo")
app.command("proxy")(proxy_command)
app.command("explain")(explain_command)


def main() -> None:
    """The `meshplane` console script."""
    app()
