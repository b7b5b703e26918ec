"""POST /api/v1/apply: a whole set of documents in one transaction, at one revision.

What `meshplane apply -f` sends: every document is validated first (a bad spec is a 422 whose
`loc` is the document's place in the body and the field, and whose `ctx` names the document's
index, kind and name), then all are written together in dependency order, so their order in the
file does not matter, or none is. Proxies see one change. With `prune`, what operators wrote
of the named kinds and the documents do not hold is deleted in the same transaction (a GitOps
sync); with `dry_run`, everything is checked the same way and nothing is written.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshplane.api.deps import (
    MAX_MESSAGE,
    ChangeMessageDep,
    CoreDep,
    DryRun,
    EditorDep,
    MaybeAuthorityDep,
    PreviewDep,
    StoreDep,
    ValidateEnvoy,
)
from meshplane.api.dry_run import batch_answer
from meshplane.api.schemas import BatchOut, ErrorOut
from meshplane.certs import CertificateAuthority, spec_to_store
from meshplane.model import NAME_PATTERN, Kind, kind_named
from meshplane.store import Document, Store

__all__ = ["MAX_DOCUMENTS", "router"]

router = APIRouter(tags=["apply"])

MAX_DOCUMENTS = 100_000


class DocumentIn(BaseModel):
    """One resource: what `meshplane get -o yaml` prints (its read-only fields left out)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="The kind, singular or plural: service, route, ...")
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
    spec: dict[str, Any] = Field(description="The kind's spec, as its PUT takes it.")
    version: int | None = Field(
        None,
        ge=1,
        description="If-Match for this document: the batch is refused (412) unless it is "
        "stored at this version.",
    )


class ApplyIn(BaseModel):
    """The documents to create or replace, in any order."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(max_length=MAX_DOCUMENTS)
    prune: list[str] = Field(
        [],
        description="Kinds (singular or plural) to make equal to the documents: whatever an "
        "operator wrote of these kinds that no document names is deleted in the same "
        "transaction (auto-registered endpoints never are). A deletion that would leave a "
        "reference dangling refuses the whole batch (409).",
    )
    message: str | None = Field(
        None,
        max_length=MAX_MESSAGE,
        description="Why: kept with the revision in the history (the X-Change-Message header "
        "says the same; this wins).",
    )


@router.post(
    "/apply",
    response_model=BatchOut,
    operation_id="apply",
    summary="Create or replace many resources in one transaction",
    responses={
        404: {"model": ErrorOut, "description": "A pruned resource vanished meanwhile"},
        409: {
            "model": ErrorOut,
            "description": "A document breaks a mesh rule (another route hides it), or a "
            "pruned resource is still referred to; the message names it; nothing changed",
        },
        412: {"model": ErrorOut, "description": "A document's version is stale; nothing changed"},
    },
)
async def apply(
    body: ApplyIn,
    store: StoreDep,
    caller: EditorDep,
    header_message: ChangeMessageDep,
    preview: PreviewDep,
    core: CoreDep,
    authority: MaybeAuthorityDep,
    dry_run: DryRun = False,
    validate_envoy: ValidateEnvoy = False,
) -> BatchOut:
    """Create or replace every document in one transaction, at one revision: all or nothing.

    Documents may refer to each other in any order. A document that is invalid, refers to
    what neither the mesh nor the batch holds, or breaks a mesh rule refuses the whole batch
    (422, 409 or 412, naming the document by index, kind and name); nothing is written.
    A document equal to what is stored is `unchanged`; a batch that changes nothing makes no
    revision. Deletions (`prune`) follow the documents in the answer; a dry run also answers
    each changed resource's spec before and after, and per group of connected proxies the
    Envoy resources it would add, change and remove. `validate_envoy` has Envoy check what
    every affected group would be sent before anything is stored.
    """
    documents = await _issued(_documents(body.documents), store, authority)
    prune = [_prune_kind(word, i) for i, word in enumerate(body.prune)]
    write = functools.partial(
        store.apply, documents, by=caller.name, message=body.message or header_message, prune=prune
    )
    return await batch_answer(
        BatchOut,
        lambda dry: write(dry_run=dry),
        dry_run=dry_run,
        validate_envoy=validate_envoy,
        preview=preview,
        core=core,
    )


def _documents(documents: list[DocumentIn]) -> list[Document]:
    """Each document's spec validated as its kind's; every problem of every document at once."""
    parsed: list[Document] = []
    errors: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        kind = _kind(document.kind)
        where = {
            "index": index,
            "kind": kind.plural if kind else document.kind,
            "name": document.name,
        }
        if kind is None:
            errors.append(_error(index, ("kind",), f"unknown kind {document.kind!r}", where))
            continue
        try:
            spec = kind.parse(document.spec)
        except ValidationError as exc:
            errors.extend(
                _error(index, ("spec", *e["loc"]), e["msg"], where, e["type"]) for e in exc.errors()
            )
            continue
        parsed.append(Document(kind.plural, document.name, spec, document.version))
    if errors:
        raise RequestValidationError(errors)
    return parsed


async def _issued(
    documents: list[Document], store: Store, authority: CertificateAuthority | None
) -> list[Document]:
    """The documents with the certificates the mesh issues filled in (see certs/edge.py)."""
    out = []
    for index, d in enumerate(documents):
        loc = ("body", "documents", index, "spec", "issuer")
        spec = await spec_to_store(store, authority, d.name, d.spec, loc)
        out.append(d if spec is d.spec else replace(d, spec=spec))
    return out


def _prune_kind(word: str, index: int) -> str:
    kind = _kind(word)
    if kind is None:
        loc = ("body", "prune", index)
        error = {"loc": loc, "msg": f"unknown kind {word!r}", "type": "value_error"}
        raise RequestValidationError([error])
    return kind.plural


def _kind(word: str) -> Kind | None:
    try:
        return kind_named(word)
    except KeyError:
        return None


def _error(
    index: int,
    loc: tuple[str | int, ...],
    msg: str,
    where: dict[str, Any],
    kind: str = "invalid_document",
) -> dict[str, Any]:
    return {"loc": ("body", "documents", index, *loc), "msg": msg, "type": kind, "ctx": where}
