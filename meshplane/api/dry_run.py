"""The answer of a batch write (apply, rollback), and what a dry run adds to it: each changed
resource's spec before and after, and, per group of connected proxies, the Envoy resources the
batch would add, change and remove (built on the control plane's loop, see xds/preview.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from meshplane.api.core_loop import CoreLoop
from meshplane.api.schemas import AppliedOut, BatchOut, ProxyChangesOut
from meshplane.model import Change
from meshplane.store import Applied
from meshplane.xds import ChangePreview

__all__ = ["batch_answer"]

Out = TypeVar("Out", bound=BatchOut)


async def batch_answer(
    out: type[Out],
    revision: int,
    applied: Sequence[Applied],
    *,
    dry_run: bool,
    preview: ChangePreview | None,
    core: CoreLoop,
) -> Out:
    """`out` for a batch that made (or, `dry_run`, would make) `revision`."""
    answer = out(
        revision=revision,
        dry_run=dry_run,
        documents=[AppliedOut.of(a, dry_run=dry_run) for a in applied],
    )
    changes = [
        Change(revision, a.kind, a.name, None if a.resource is None else a.resource.spec)
        for a in applied
        if a.outcome != "unchanged"
    ]
    if dry_run and preview is not None:
        groups = await core.run(lambda: preview.preview(changes)) if changes else []
        answer.proxies = [ProxyChangesOut.of(g) for g in groups]
    return answer
