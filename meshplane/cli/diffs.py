"""Unified diffs of resources as YAML documents, for `meshplane diff`, and for `apply` and
`rollback` with --dry-run: what an operator reviews before and after a change.

Each resource is the document `meshplane get -o yaml` prints and `apply -f` takes ({kind,
name, spec}), so a diff reads like a diff of the files. Colour goes through click, which
drops it when the output is not a terminal.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import typer
import yaml

from meshplane.model import kind_named

__all__ = ["ResourceChange", "render_diff"]


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource before and after (a spec; None: absent)."""

    kind: str
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


_COLOURS = {"+": "green", "-": "red", "@": "cyan"}


def render_diff(changes: Iterable[ResourceChange], *, before: str, after: str) -> str:
    """A unified diff per changed resource, labelled `before` and `after` (e.g. "revision
    7"); empty when nothing differs."""
    parts: list[str] = []
    for change in changes:
        old, new = _document(change, change.before), _document(change, change.after)
        if old == new:
            continue
        label = f"{kind_named(change.kind).singular}/{change.name}"
        lines = difflib.unified_diff(
            old, new, f"{label} ({before})", f"{label} ({after})", lineterm=""
        )
        parts += [_coloured(line) for line in lines]
    return "\n".join(parts)


def _document(change: ResourceChange, spec: dict[str, Any] | None) -> list[str]:
    if spec is None:
        return []
    document = {"kind": kind_named(change.kind).singular, "name": change.name, "spec": spec}
    return yaml.safe_dump(document, sort_keys=False).splitlines()


def _coloured(line: str) -> str:
    if line.startswith(("+++", "---")):
        return typer.style(line, bold=True)
    colour = _COLOURS.get(line[:1])
    return typer.style(line, fg=colour) if colour else line
