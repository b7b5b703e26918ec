"""GET /api/v1/changes: the mesh's history, from the change log: per resource each revision
changed, when, who (the API token's name), what it did (created, configured, deleted) and the
message given with it."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from meshplane.api.deps import KindFilterDep, StoreDep, ViewerDep
from meshplane.errors import InvalidRequest
from meshplane.model import NAME_PATTERN

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
    outcome: Literal["created", "configured", "deleted"] | None = Field(
        description="What it did to the resource (None: logged before this was kept)."
    )
    by: str | None = Field(
        description="The API token that wrote it ('auto': auto-registration; None: before "
        "this was kept)."
    )
    source: str
    message: str | None = Field(
        description="Why, as given with the write (X-Change-Message, `meshplane apply -m`)."
    )


class ChangeList(BaseModel):
    items: list[ChangeOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as `before` for the next page; None when this one was the last."
    )


@router.get("", response_model=ChangeList, operation_id="list_changes")
async def list_changes(
    store: StoreDep,
    _caller: ViewerDep,
    plural: KindFilterDep,
    name: Annotated[
        str | None, Query(pattern=NAME_PATTERN, max_length=63, description="Only this name.")
    ] = None,
    by: Annotated[
        str | None, Query(pattern=NAME_PATTERN, max_length=63, description="Only this token's.")
    ] = None,
    before: Annotated[int | None, Query(ge=1, description="Only revisions below this.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only changes committed at or after this time.")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Only changes committed at or before this time.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangeList:
    """What changed, newest first: per resource each revision changed (a batch apply changes
    several at one revision), when, the token that did it, what it did and the message
    given with it. The log keeps the newest MESHPLANE_HISTORY_REVISIONS revisions. A page
    holds whole revisions: one that alone changed more than `limit` resources comes whole in
    a page of its own (up to 100,000)."""
    since, until = _aware(since, "since"), _aware(until, "until")
    history = functools.partial(
        store.history, kind=plural, name=name, by=by, since=since, until=until
    )
    entries = await history(before=before, limit=limit + 1)
    if len(entries) <= limit:
        return ChangeList(items=[ChangeOut.model_validate(e) for e in entries], next_before=None)
    cut = entries[limit].revision
    page = [e for e in entries[:limit] if e.revision != cut]  # never split a revision...
    if not page:  # ...one that alone holds more than `limit` comes whole (up to a cap)
        page = await history(before=cut + 1, limit=_WHOLE_REVISION)
        page = [e for e in page if e.revision == cut]
    return ChangeList(
        items=[ChangeOut.model_validate(e) for e in page], next_before=page[-1].revision
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    """A time with its zone; a time without one is refused rather than guessed."""
    if value is not None and value.tzinfo is None:
        raise InvalidRequest(
            "give a time zone (2026-11-30T10:00:00Z, or +01:00)", loc=("query", field)
        )
    return value
