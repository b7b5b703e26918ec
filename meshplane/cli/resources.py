"""`meshplane apply`, `get`, `delete` and `status`: the mesh's resources over the REST API.

Each command is a thin layer over `ApiClient`; its errors print the server's message and exit 1.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiError, describe, format_loc
from meshplane.cli.history import changed, print_batch
from meshplane.cli.output import ApiToken, ApiUrl, CaFile
from meshplane.cli.output import fail as _fail
from meshplane.cli.output import reporting as _reporting
from meshplane.cli.output import table as _table
from meshplane.cli.waiting import (
    RollbackOnNack,
    ValidateWithEnvoy,
    Wait,
    WaitTimeout,
    nacks_now,
    wait_until_held,
)
from meshplane.model import KINDS, NAME_PATTERN, Kind, kind_named

__all__ = ["apply", "delete", "get", "status"]


# Fields `get -o yaml` prints that apply accepts back and ignores: the server owns them.
_READ_ONLY = frozenset({"version", "source", "created_at", "updated_at", "updated_by", "details"})


class Output(StrEnum):
    TABLE = "table"
    YAML = "yaml"
    JSON = "json"


def _kind(word: str) -> Kind:
    try:
        return kind_named(word)
    except KeyError as exc:
        _fail(exc.args[0])


@dataclass(frozen=True, slots=True)
class _Document:
    kind: Kind
    name: str
    spec: dict[str, Any]
    origin: str  # "mesh.yaml document 3": where the user finds it


def _read_documents(text: str, source: str) -> tuple[list[_Document], list[str]]:
    """Parse and check the documents of one file (or stdin): those that pass, and a line per
    problem naming the file and the document (1-based)."""
    try:
        raw = [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc is not None]
    except yaml.YAMLError as exc:
        return [], [f"{source}: not valid YAML: {exc}"]
    documents: list[_Document] = []
    problems: list[str] = []
    for index, doc in enumerate(raw, start=1):
        where = f"{source} document {index}"
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
        try:
            kind.parse(doc["spec"])
        except ValidationError as exc:
            problems.extend(
                f"{where}: {format_loc(('spec', *e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            continue
        documents.append(_Document(kind, name, doc["spec"], where))
    return documents, problems


# libyaml's parser when PyYAML has it: 30,000 documents parse in seconds, not a minute.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SUFFIXES = (".yaml", ".yml", ".json")


def _sources(filenames: Sequence[str]) -> list[tuple[str, str]]:
    """(name, text) of every file: '-' is stdin, a directory its YAML and JSON files (sorted,
    not recursive)."""
    sources: list[tuple[str, str]] = []
    for filename in filenames:
        path = Path(filename)
        try:
            if filename == "-":
                sources.append(("stdin", sys.stdin.read()))
            elif path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
                sources.extend((str(p), p.read_text()) for p in files)
            else:
                sources.append((filename, path.read_text()))
        except OSError as exc:
            _fail(f"cannot read {filename}: {exc.strerror}")
    return sources


def _all_documents(filenames: Sequence[str]) -> list[_Document]:
    """Every document of every file, checked; exit naming each bad one if any is."""
    documents: list[_Document] = []
    problems: list[str] = []
    for source, text in _sources(filenames):
        found, wrong = _read_documents(text, source)
        documents += found
        problems += wrong
    seen: dict[tuple[str, str], str] = {}
    for doc in documents:
        key = (doc.kind.plural, doc.name)
        if key in seen:
            problems.append(f"{doc.origin}: appears again (first in {seen[key]})")
        seen.setdefault(key, doc.origin)
    if problems:
        _fail("nothing applied:\n  " + "\n  ".join(problems))
    return documents


def _valid_name(name: str) -> bool:
    return len(name) <= 63 and re.fullmatch(NAME_PATTERN, name) is not None


_ABOUT_DOCUMENT = re.compile(r"^document (\d+) \(([^)]*)\): ")


def _refusal(exc: ApiError, documents: Sequence[_Document]) -> str:
    """The server's refusal of a batch, each problem named by file and document."""

    def origin(index: object) -> str:
        if isinstance(index, int) and 0 <= index < len(documents):
            return documents[index].origin
        return f"document {index}"

    if isinstance(exc.detail, list):
        lines = []
        for error in exc.detail:
            loc = list(error.get("loc", ())) if isinstance(error, dict) else []
            if loc[:2] != ["body", "documents"] or len(loc) < 3:
                lines.append(describe([error]))
                continue
            message = _ABOUT_DOCUMENT.sub("", str(error.get("msg")))
            field = format_loc(loc[3:])
            lines.append(
                f"{origin(loc[2])}: {field}: {message}" if field else f"{origin(loc[2])}: {message}"
            )
        return "\n  ".join(lines)
    about = _ABOUT_DOCUMENT.match(exc.message)
    if about is None:
        return exc.message
    index, what = int(about.group(1)), about.group(2)
    where = origin(index) if index < len(documents) else f"pruning {what}"
    return f"{where}: {exc.message[about.end() :]}"


def apply(
    filenames: Annotated[
        list[str],
        typer.Option(
            "-f",
            "--filename",
            help="A YAML file of documents {kind, name, spec}, a directory of them, or '-' "
            "for stdin; repeat for more.",
        ),
    ],
    message: Annotated[
        str | None,
        typer.Option("-m", "--message", help="Why: kept with the revision in the history."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check everything as a real apply would; show the diff; write nothing.",
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete what operators wrote of the kinds in the files (or of "
            "--prune-kinds) that the files no longer hold, in the same transaction.",
        ),
    ] = False,
    prune_kinds: Annotated[
        list[str] | None,
        typer.Option("--prune-kinds", help="With --prune: the kinds to prune (repeat, or k1,k2)."),
    ] = None,
    validate_envoy: ValidateWithEnvoy = False,
    wait: Wait = False,
    rollback_on_nack: RollbackOnNack = False,
    timeout: WaitTimeout = 60.0,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Create or update every resource in the files, in one transaction: all or nothing.

    All documents are checked here first, then sent together; the server checks them against
    the mesh as it will be after the whole batch (so their order does not matter) and writes
    them at one revision, or refuses them all, naming the document. Each is printed as
    created, configured or unchanged (deleted, for what --prune removes). With --prune the
    mesh becomes equal to the files, kind by kind (auto-registered endpoints are never
    pruned): what GitOps runs on every merge. With --wait it returns once every connected
    proxy holds the change, or fails on the first NACK with Envoy's reason.
    """
    documents = _all_documents(filenames)
    kinds = _prune_kinds(documents, prune_kinds) if prune else []
    if prune_kinds and not prune:
        _fail("--prune-kinds needs --prune")
    batch = [{"kind": d.kind.plural, "name": d.name, "spec": d.spec} for d in documents]
    following = (wait or rollback_on_nack) and not dry_run
    with ApiClient(api_url, ca_file=ca_file, token=token) as client:
        with _reporting():
            earlier = nacks_now(client) if following else frozenset()
        try:
            answer = client.apply(
                batch,
                message=message,
                prune=kinds,
                dry_run=dry_run,
                validate_envoy=validate_envoy,
            )
        except ApiError as exc:
            if exc.unanswered:  # sent: the server may have applied it, or may still
                _fail(f"{exc.message}: see `meshplane history` for what was applied")
            _fail("nothing applied:\n  " + _refusal(exc, documents))
        print_batch(answer, dry_run=dry_run)
        if following and changed(answer):
            with _reporting():
                wait_until_held(
                    client,
                    answer["revision"],
                    timeout=timeout,
                    rollback_on_nack=rollback_on_nack,
                    earlier=earlier,
                )


def _prune_kinds(documents: Sequence[_Document], given: list[str] | None) -> list[str]:
    """The kinds --prune makes equal to the files: those named, else those the files hold."""
    if not given:
        if not documents:
            _fail("--prune with no documents needs --prune-kinds (it would delete everything)")
        return sorted({d.kind.plural for d in documents})
    return sorted({_kind(word.strip()).plural for words in given for word in words.split(",")})


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
        ("PROTOCOL", lambda s: s["protocol"]),
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


# Per kind: columns read from the whole answer (a certificate's details), not its spec.
_DETAIL_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {
    "tls-certificates": (
        ("HOSTS", lambda i: _join(i["details"]["dns_names"])),
        ("NOT-AFTER", lambda i: i["details"]["not_after"]),
        ("USED-BY", lambda i: _join(i["details"]["used_by"])),
    ),
}


def _of_spec(cell: Callable[[dict[str, Any]], object], item: dict[str, Any]) -> object:
    return cell(item["spec"])


def _resources_table(kind: Kind, items: Sequence[dict[str, Any]]) -> str:
    columns = _COLUMNS.get(kind.plural, (("SPEC", lambda s: json.dumps(s, sort_keys=True)),))
    cells = _DETAIL_COLUMNS.get(kind.plural) or tuple(
        (title, functools.partial(_of_spec, cell)) for title, cell in columns
    )
    headers = ["NAME", *(title for title, _ in cells), "VERSION", "SOURCE"]
    rows = [
        [
            item["name"],
            *(str(cell(item)) for _, cell in cells),
            str(item["version"]),
            item["source"],
        ]
        for item in items
    ]
    return _table(headers, rows)


def get(
    kind: Annotated[str, typer.Argument(help=f"Kind, singular or plural: {', '.join(KINDS)}.")],
    name: Annotated[
        str | None, typer.Argument(help="One resource's name; all when left out.")
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.TABLE,
    revision: Annotated[
        int | None,
        typer.Option(
            "--revision", min=0, help="As it was at this revision (see `meshplane history`)."
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Show one resource or every resource of a kind, now or at an earlier revision.

    `-o yaml` prints documents that `meshplane apply -f` accepts back (so `get --revision N
    -o yaml` restores one resource as it was). A stored resource whose spec no longer
    validates is not shown; an INVALID line on stderr names it and says why.
    """
    resolved = _kind(kind)
    invalid: list[dict[str, Any]] = []
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
        if revision is not None:
            items = _at_revision(client, revision, resolved, name)
        elif name:
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


def _at_revision(
    client: ApiClient, revision: int, kind: Kind, name: str | None
) -> list[dict[str, Any]]:
    """The resources as `get` shows them, as they were at `revision`."""
    states = client.revision(revision, kind=kind.plural, name=name)["resources"]
    if name and not states:
        _fail(f"{kind.singular} {name!r} did not exist at revision {revision}")
    return [
        {
            "kind": kind.singular,
            "name": s["name"],
            "spec": s["spec"],
            "version": f"@{revision}",
            "source": s["source"],
        }
        for s in states
    ]


def delete(
    kind: Annotated[str, typer.Argument(help=f"Kind, singular or plural: {', '.join(KINDS)}.")],
    name: Annotated[str, typer.Argument(help="The resource's name.")],
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Delete a resource; refused while other resources still refer to it."""
    resolved = _kind(kind)
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
        client.delete(resolved.plural, name)
    typer.echo(f"{resolved.singular}/{name} deleted")


def _short(version: str | None) -> str:
    return version[:8] if version else "-"


def _type_cell(status: dict[str, Any]) -> str:
    sent, acked = status["sent_version"], status["acked_version"]
    cell = _short(sent) if sent == acked else f"{_short(sent)}/{_short(acked)}"
    return f"{cell} NACK" if status.get("last_nack") else cell


def status(
    api_url: ApiUrl = DEFAULT_API_URL, ca_file: CaFile = None, token: ApiToken = None
) -> None:
    """List the proxies connected to every replica, and where each resource type stands on each.

    REVISION is the mesh revision whose configuration the proxy holds whole (see `apply
    --wait`). Per type: the version sent, then "/" and the version ACKed when they differ (first 8
    characters each), and NACK when Envoy rejected a version; the NACK errors follow the table.
    Last, one INVALID line per stored resource whose spec no longer validates (not sent to
    proxies, with whatever refers to it, until a PUT of a valid spec or a DELETE fixes it).
    """
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
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
    headers = ["NODE", "ROLE", "FOR", "TRANSPORT", "REPLICA", "CONNECTED", "REVISION"]
    headers += [t.upper() for t in types]
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
                proxy.get("replica") or "-",
                proxy["connected_since"],
                str(proxy.get("revision") or "-"),
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
