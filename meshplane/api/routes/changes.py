"""GET /api/v1/changes: the mesh's history, from the change log: per resource each revision
changed, when, who (the API token's name) and whether it was written or deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from meshplane.api.deps import StoreDep, ViewerDep
from meshplane.errors import InvalidRequest
from meshplane.model import kind_named

__all__ = ["router"]

router = APIRouter(prefix="/changes", tags=["changes"])

_WHOLE_REVISION = 100_000  # a batch apply takes at most as many documents


class ChangeOut(BaseModel):
    """One resource one revision changed (read from a `HistoryEntry`)."""

    model_config = ConfigDict(from_attributes=True)

    revision: int
    at: datetime | None = Field(description="When it was committed (None: before this was kept).")
    kind: str = Field(description="The kind, plural.")
    name: str
    op: Literal["put", "delete"]
    by: str | None = Field(
        description="The API token that wrote it ('auto': auto-registration; None: before "
        "this was kept)."
    )
    source: str


class ChangeList(BaseModel):
    items: list[ChangeOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as `before` for the next page; None when this one was the last."
    )


@router.get("", response_model=ChangeList, operation_id="list_changes")
async def list_changes(
    store: StoreDep,
    _caller: ViewerDep,
    kind: Annotated[str | None, Query(description="Only this kind (singular or plural).")] = None,
    name: Annotated[str | None, Query(max_length=63, description="Only this name.")] = None,
    by: Annotated[str | None, Query(max_length=63, description="Only this token's.")] = None,
    before: Annotated[int | None, Query(ge=1, description="Only revisions below this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangeList:
    """What changed, newest first: per resource each revision changed (a batch apply changes
    several at one revision), when, and the token that did it. The log keeps the newest
    10,000 revisions. A page holds whole revisions: one that alone changed more than `limit`
    resources comes whole in a page of its own (up to 100,000)."""
    plural = _plural(kind) if kind is not None else None
    entries = await store.history(kind=plural, name=name, by=by, before=before, limit=limit + 1)
    if len(entries) <= limit:
        return ChangeList(items=[ChangeOut.model_validate(e) for e in entries], next_before=None)
    cut = entries[limit].revision
    page = [e for e in entries[:limit] if e.revision != cut]  # never split a revision...
    if not page:  # ...one that alone holds more than `limit` comes whole (up to a cap)
        page = await store.history(
            kind=plural, name=name, by=by, before=cut + 1, limit=_WHOLE_REVISION
        )
        page = [e for e in page if e.revision == cut]
    return ChangeList(
        items=[ChangeOut.model_validate(e) for e in page], next_before=page[-1].revision
    )


def _plural(kind: str) -> str:
    try:
        return kind_named(kind).plural
    except KeyError as exc:
        raise InvalidRequest(exc.args[0], loc=("query", "kind")) from None
