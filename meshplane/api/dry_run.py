"""The answer of a batch write (apply, rollback), and what a dry run adds to it: each changed
resource's spec before and after, and, per group of connected proxies, the Envoy resources the
batch would add, change and remove, and (validate_envoy) whether Envoy would take them; built
on the control plane's loop (xds/preview.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from meshplane.api.core_loop import CoreLoop
from meshplane.api.schemas import AppliedOut, BatchOut, ProxyChangesOut
from meshplane.errors import InvalidMesh, InvalidRequest
from meshplane.model import Role
from meshplane.store import Applied
from meshplane.xds import ChangePreview, GroupPreview

__all__ = ["Batch", "batch_answer", "checked_by_envoy"]

Out = TypeVar("Out", bound=BatchOut)
# A batch write: dry_run in, its revision and outcomes out.
Batch = Callable[[bool], Awaitable[tuple[int, list[Applied]]]]


async def batch_answer(
    out: type[Out],
    write: Batch,
    *,
    dry_run: bool,
    validate_envoy: bool,
    preview: ChangePreview | None,
    core: CoreLoop,
) -> Out:
    """`out` for the batch `write` makes (or, `dry_run`, would make); with `validate_envoy`, a
    dry run first asks Envoy about every affected group, and a real write is refused if Envoy
    would reject one."""
    if validate_envoy and (preview is None or preview.envoy is None):
        raise InvalidRequest(
            "this control plane has no Envoy binary to validate with (MESHPLANE_ENVOY_BINARY)",
            loc=("query", "validate_envoy"),
        )
    if validate_envoy and not dry_run:
        assert preview is not None
        _, would = await write(True)
        await checked_by_envoy(would, preview=preview, core=core)
    revision, applied = await write(dry_run)
    answer = out(
        revision=revision,
        dry_run=dry_run,
        documents=[AppliedOut.of(a, dry_run=dry_run) for a in applied],
    )
    if dry_run and preview is not None:
        groups = await _preview(applied, preview, core, validate=validate_envoy)
        answer.proxies = [ProxyChangesOut.of(g) for g in groups]
    return answer


async def checked_by_envoy(
    applied: Sequence[Applied], *, preview: ChangePreview, core: CoreLoop
) -> None:
    """InvalidMesh with Envoy's error if it would refuse what a group would be sent."""
    for group in await _preview(applied, preview, core, validate=True):
        if group.envoy_error is not None:
            raise InvalidMesh(
                f"Envoy would reject the configuration of {_label(group)} "
                f"(envoy --mode validate): {group.envoy_error}; nothing was written"
            )


async def _preview(
    applied: Sequence[Applied],
    preview: ChangePreview,
    core: CoreLoop,
    *,
    validate: bool,
) -> list[GroupPreview]:
    changes = [change for a in applied if (change := a.change) is not None]
    if not changes:
        return []
    return await core.run(lambda: preview.preview(changes, validate=validate))


def _label(preview: GroupPreview) -> str:
    group = preview.group
    name = group.gateway if group.role == Role.GATEWAY else group.service
    return f"{group.role.value} {name or '-'} ({', '.join(preview.nodes)})"
