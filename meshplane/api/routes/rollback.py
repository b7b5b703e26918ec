"""POST /api/v1/rollback: the mesh as it was at a retained revision, as one new revision."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from meshplane.api.deps import (
    MAX_MESSAGE,
    ChangeMessageDep,
    CoreDep,
    DryRun,
    EditorDep,
    PreviewDep,
    StoreDep,
    ValidateEnvoy,
)
from meshplane.api.dry_run import batch_answer
from meshplane.api.schemas import BatchOut, ErrorOut
from meshplane.errors import InvalidRequest, NotFound
from meshplane.store import Applied

__all__ = ["NOT_ROLLED_BACK", "router"]

router = APIRouter(tags=["history"])

NOT_ROLLED_BACK = (
    "certificates, API and node tokens, and auto-registered endpoints are not rolled back"
)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: int = Field(ge=0, description="The retained revision to return to.")
    cascade: bool = Field(
        False,
        description="Also remove the auto-registered endpoints of services the rollback "
        "removes (else such a rollback is refused, 409).",
    )
    message: str | None = Field(
        None,
        max_length=MAX_MESSAGE,
        description="Why (default: 'rollback to revision N'); kept in the history.",
    )


class RollbackOut(BatchOut):
    not_rolled_back: str = Field(NOT_ROLLED_BACK, description="What a rollback never touches.")


@router.post(
    "/rollback",
    response_model=RollbackOut,
    operation_id="rollback",
    summary="Make the mesh what it was at a revision",
    responses={
        409: {
            "model": ErrorOut,
            "description": "The result breaks a reference or a mesh rule (the message says "
            "which, and whether cascade helps); nothing changed",
        },
    },
)
async def rollback(
    body: RollbackIn,
    store: StoreDep,
    caller: EditorDep,
    header_message: ChangeMessageDep,
    preview: PreviewDep,
    core: CoreDep,
    dry_run: DryRun = False,
    validate_envoy: ValidateEnvoy = False,
) -> RollbackOut:
    """Make every resource operators write equal to what it was at `revision`: puts back what
    changed or was deleted since, deletes what was created since, in one transaction at one
    new revision (history is never rewritten), checked as any write is. Nothing to do: the
    current revision and no documents."""

    async def write(dry: bool) -> tuple[int, list[Applied]]:
        try:
            return await store.rollback(
                body.revision,
                cascade=body.cascade,
                by=caller.name,
                message=body.message or header_message,
                dry_run=dry,
            )
        except NotFound as exc:
            if exc.document is not None:
                raise
            raise InvalidRequest(str(exc), loc=("body", "revision")) from None

    return await batch_answer(
        RollbackOut,
        write,
        dry_run=dry_run,
        validate_envoy=validate_envoy,
        preview=preview,
        core=core,
    )
