"""The mesh at a retained revision, and what differs between two: GET /api/v1/revisions/{rev}
and GET /api/v1/diff, rebuilt from the change log (store/revisions.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from meshplane.api.deps import KindFilterDep, StoreDep, ViewerDep
from meshplane.api.schemas import ErrorOut
from meshplane.errors import InvalidRequest
from meshplane.model import NAME_PATTERN
from meshplane.store import StateAt

__all__ = ["router"]

router = APIRouter(tags=["history"])

_OUT_OF_RANGE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "The revision is not in the retained history"}
}


class StateOut(BaseModel):
    """A resource as it was at a revision."""

    kind: str = Field(description="The kind, plural.")
    name: str
    spec: dict[str, Any]
    source: str = Field(description="'api', or 'auto' for an auto-registered endpoint.")

    @classmethod
    def of(cls, state: StateAt) -> StateOut:
        return cls(kind=state.kind, name=state.name, spec=state.spec, source=state.source)


class RevisionOut(BaseModel):
    revision: int
    history_start: int = Field(description="The oldest revision the history can rebuild.")
    resources: list[StateOut] = Field(description="By kind, then name.")


class DifferenceOut(BaseModel):
    kind: str = Field(description="The kind, plural.")
    name: str
    op: Literal["created", "configured", "deleted"]
    before: StateOut | None = Field(description="At the older revision (None: absent).")
    after: StateOut | None = Field(description="At the newer revision (None: absent).")


class DiffOut(BaseModel):
    from_revision: int
    to_revision: int
    changes: list[DifferenceOut] = Field(description="By kind, then name.")


@router.get(
    "/revisions/{revision}",
    response_model=RevisionOut,
    operation_id="get_revision",
    summary="The mesh as it was at a revision",
    responses=_OUT_OF_RANGE,
)
async def get_revision(
    revision: Annotated[int, Path(ge=0)],
    store: StoreDep,
    _caller: ViewerDep,
    plural: KindFilterDep,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=63)] = None,
) -> RevisionOut:
    """Every resource (or those of `kind`, named `name`) as it was at `revision`: rebuilt
    from the resources and the change log, exact anywhere from `history_start` on (the log
    keeps MESHPLANE_HISTORY_REVISIONS revisions)."""
    states = await store.mesh_at(revision, kind=plural, name=name)
    start, _ = await store.history_range()
    return RevisionOut(
        revision=revision, history_start=start, resources=[StateOut.of(s) for s in states]
    )


@router.get(
    "/diff",
    response_model=DiffOut,
    operation_id="diff_revisions",
    summary="What differs between two revisions",
    responses=_OUT_OF_RANGE,
)
async def diff(
    store: StoreDep,
    _caller: ViewerDep,
    from_revision: Annotated[
        int | None,
        Query(alias="from", ge=0, description="The older revision (default: `to` - 1)."),
    ] = None,
    to_revision: Annotated[
        int | None, Query(alias="to", ge=0, description="The newer revision (default: now).")
    ] = None,
) -> DiffOut:
    """The resources that differ between two retained revisions, each as it was at both
    (default: what the last change did). A resource changed and put back in between is no
    difference."""
    newer = to_revision if to_revision is not None else (await store.history_range())[1]
    older = from_revision if from_revision is not None else max(newer - 1, 0)
    if older > newer:
        raise InvalidRequest(f"from ({older}) is after to ({newer})", loc=("query", "from"))
    found = [] if older == newer else await store.differences(older, newer)
    return DiffOut(
        from_revision=older,
        to_revision=newer,
        changes=[
            DifferenceOut(
                kind=d.kind,
                name=d.name,
                op=d.op,
                before=None if d.before is None else StateOut.of(d.before),
                after=None if d.after is None else StateOut.of(d.after),
            )
            for d in found
        ],
    )
