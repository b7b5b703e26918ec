"""`meshplane history`, `diff` and `rollback`: the mesh's history over the REST API.

What changed, who changed it and how to put it back: each revision with its author, its
changes and its message; the resources that differ between two revisions as a diff of their
YAML documents; and a rollback that makes the mesh what it was, as a new revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.diffs import ResourceChange, render_diff
from meshplane.cli.output import ApiToken, ApiUrl, CaFile
from meshplane.cli.output import fail as _fail
from meshplane.cli.output import reporting as _reporting
from meshplane.cli.output import table as _table
from meshplane.cli.waiting import (
    ValidateWithEnvoy,
    Wait,
    WaitTimeout,
    nacks_now,
    wait_until_held,
)
from meshplane.model import KINDS, kind_named

__all__ = ["changed", "diff", "history", "print_batch", "rollback"]

_NAMED = 3  # changes named per revision in `history`; the rest are counted


class DiffOutput(StrEnum):
    DIFF = "diff"
    JSON = "json"


def history(
    kind: Annotated[str | None, typer.Argument(help=f"Only this kind: {', '.join(KINDS)}.")] = None,
    name: Annotated[str | None, typer.Argument(help="Only this resource.")] = None,
    by: Annotated[str | None, typer.Option(help="Only the changes of this token.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only changes from this time on (2026-11-30T08:00:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only changes until this time.")] = None,
    limit: Annotated[int, typer.Option(help="How many changes at most.", min=1, max=1000)] = 50,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """What changed, newest first: per revision when, who (the API token that wrote it;
    auto: auto-registration), what it created, configured or deleted, and why (the message
    given with `apply -m` or X-Change-Message). `meshplane diff REV-1 REV` shows a revision's
    changes whole; `meshplane rollback REV` goes back to one."""
    filters: dict[str, str | int] = {"limit": limit}
    given = {"kind": _plural(kind), "name": name, "by": by, "since": since, "until": until}
    filters |= {key: value for key, value in given.items() if value is not None}
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
        items = client.changes(**filters)["items"]
    if not items:
        typer.echo("no changes", err=True)
        return
    typer.echo(_table(("REVISION", "AT", "BY", "CHANGES", "MESSAGE"), _revisions(items)))


def _plural(kind: str | None) -> str | None:
    if kind is None:
        return None
    try:
        return kind_named(kind).plural
    except KeyError as exc:
        _fail(exc.args[0])


def _revisions(items: Sequence[dict[str, Any]]) -> Iterable[tuple[str, ...]]:
    """One row per revision (the API lists one entry per resource, newest first)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault(item["revision"], []).append(item)
    for revision, changes in grouped.items():
        first = changes[0]
        what = [f"{_did(c)} {kind_named(c['kind']).singular}/{c['name']}" for c in changes]
        if len(what) > _NAMED:
            what = [*what[:_NAMED], f"+{len(what) - _NAMED} more"]
        yield (
            str(revision),
            (first["at"] or "-").replace("T", " ")[:19],
            first["by"] or "-",
            ", ".join(what),
            first.get("message") or "",
        )


def _did(change: dict[str, Any]) -> str:
    return change.get("outcome") or ("deleted" if change["op"] == "delete" else "wrote")


def diff(
    older: Annotated[
        int | None, typer.Argument(help="The older revision (default: NEWER - 1).", min=0)
    ] = None,
    newer: Annotated[
        int | None, typer.Argument(help="The newer revision (default: the current one).", min=0)
    ] = None,
    output: Annotated[
        DiffOutput, typer.Option("-o", "--output", help="A unified diff, or JSON.")
    ] = DiffOutput.DIFF,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """What differs between two revisions, as a unified diff of the resources' YAML documents
    (what `get -o yaml` prints); with no revision, what the last change did."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
        answer = client.diff(older, newer)
    if output is DiffOutput.JSON:
        typer.echo(json.dumps(answer, indent=2))
        return
    changes = [
        ResourceChange(c["kind"], c["name"], _spec(c["before"]), _spec(c["after"]))
        for c in answer["changes"]
    ]
    old, new = f"revision {answer['from_revision']}", f"revision {answer['to_revision']}"
    text = render_diff(changes, before=old, after=new)
    typer.echo(text if text else f"no difference between {old} and {new}")


def _spec(state: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if state is None else state["spec"]


def rollback(
    revision: Annotated[int, typer.Argument(help="The revision to return to.", min=0)],
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade",
            help="Also remove the auto-registered endpoints of services the rollback removes.",
        ),
    ] = False,
    message: Annotated[
        str | None,
        typer.Option("-m", "--message", help="Why (default: 'rollback to revision N')."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what it would change; change nothing.")
    ] = False,
    validate_envoy: ValidateWithEnvoy = False,
    wait: Wait = False,
    timeout: WaitTimeout = 60.0,
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Make the mesh what it was at REVISION, as one new revision: what changed since is put
    back, what was created since is deleted, checked as any write is. The history is kept
    (a rollback is itself a revision, and can be rolled back). Certificates, tokens and
    auto-registered endpoints are not rolled back."""
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, _reporting():
        earlier = nacks_now(client) if wait and not dry_run else frozenset()
        answer = client.rollback(
            revision,
            cascade=cascade,
            message=message,
            dry_run=dry_run,
            validate_envoy=validate_envoy,
        )
        if not answer["documents"]:
            typer.echo(f"nothing to do: the mesh is as it was at revision {revision}")
            return
        print_batch(answer, dry_run=dry_run)
        typer.echo(f"note: {answer['not_rolled_back']}")
        if wait and not dry_run:
            revision = answer["revision"]
            wait_until_held(
                client, revision, timeout=timeout, rollback_on_nack=False, earlier=earlier
            )


def _print_proxies(groups: Sequence[dict[str, Any]]) -> None:
    """Per group of connected proxies, the Envoy resources the batch would add (+), change
    (~) and remove (-)."""
    if not groups:
        typer.echo("no connected proxy would get a new configuration")
        return
    typer.echo("the connected proxies would get:")
    for group in groups:
        who = f"{group['role']} {group['gateway'] or group['service'] or '-'}"
        if group.get("zone"):
            who += f" (zone {group['zone']})"
        nodes = _some(group["nodes"])
        what = "; ".join(f"{kind} {_marked(c)}" for kind, c in group["changes"].items())
        typer.echo(f"  {who} [{nodes}]: {what}")
        if group.get("envoy_error"):
            typer.echo(f"    Envoy would reject it: {group['envoy_error']}")


def _marked(changes: dict[str, list[str]]) -> str:
    marks = (("+", "added"), ("~", "changed"), ("-", "removed"))
    return " ".join(f"{mark}{_some(changes[key])}" for mark, key in marks if changes[key])


def _some(names: Sequence[str]) -> str:
    """The first few of `names`, and how many more."""
    shown = ",".join(names[:_NAMED])
    return f"{shown},+{len(names) - _NAMED} more" if len(names) > _NAMED else shown


def changed(answer: dict[str, Any]) -> bool:
    """Whether a batch's answer changed (or would change) anything."""
    return any(d["outcome"] != "unchanged" for d in answer["documents"])


def print_batch(answer: dict[str, Any], *, dry_run: bool) -> None:
    """A batch's answer (apply, rollback): the diff of what it would change and on which
    proxies (dry run), then a line per resource and its outcome, then (on stderr) the
    revision it made."""
    documents = answer["documents"]
    if dry_run:
        changes = [
            ResourceChange(d["kind"], d["name"], d.get("before"), d.get("after"))
            for d in documents
            if d["outcome"] != "unchanged"
        ]
        if text := render_diff(changes, before="now", after="after"):
            typer.echo(text)
    if dry_run and answer.get("proxies") is not None:
        _print_proxies(answer["proxies"])
    would = " (dry run)" if dry_run else ""
    for document in documents:
        typer.echo(
            f"{kind_named(document['kind']).singular}/{document['name']} "
            f"{document['outcome']}{would}"
        )
    if dry_run:
        written = "nothing was written" if changed(answer) else "nothing would change"
        typer.echo(f"dry run: {written}")
    elif changed(answer):
        typer.echo(f"revision {answer['revision']}", err=True)
