"""CRUD routes for every kind in `meshplane.model.KINDS`, one router per kind.

Handlers are built per kind so that each PUT body and response is that kind's own model in the
OpenAPI document. This module deliberately does not use `from __future__ import annotations`:
FastAPI must see the per-kind model objects in the signatures, not names it cannot resolve.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from meshplane.api.deps import (
    ChangeMessageDep,
    EditorDep,
    IfMatchDep,
    MaybeAuthorityDep,
    StoreDep,
    ViewerDep,
)
from meshplane.api.schemas import ErrorOut, resource_models
from meshplane.certs import spec_to_store
from meshplane.errors import InvalidRequest
from meshplane.model import NAME_PATTERN, Key, Kind, Spec
from meshplane.store import Store, StoredResource

__all__ = ["resource_router"]


Name = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Lower-case letters, digits, '-' and '.'; at most 63 characters.",
    ),
]


_CERTIFICATES = "tls-certificates"
_STORED_INVALID: dict[str, Any] = {
    "model": ErrorOut,
    "description": "Stored, but its spec no longer validates (the reason is given); "
    "PUT a valid spec over it or DELETE it",
}


def _etag(stored: StoredResource) -> str:
    return f'"{stored.version}"'


def _answering(model: Any, operation_id: str, summary: str, **more: Any) -> dict[str, Any]:
    """The decorator arguments of an operation whose answer is `model`: its None fields are
    left out (a list's `invalid`, an older resource's `updated_by`)."""
    return {
        "response_model": model,
        "response_model_exclude_none": True,
        "operation_id": operation_id,
        "summary": summary,
        **more,
    }


async def _users(store: Store, keys: list[Key]) -> dict[Key, list[Key]] | None:
    """Who refers to these certificates (an answer shows the gateways presenting each); None,
    and no query, for the other kinds."""
    if not keys or keys[0][0] != _CERTIFICATES:
        return None
    return await store.referrers(keys)


def resource_router(kind: Kind) -> APIRouter:
    """GET list, GET one, PUT and DELETE for `kind` under `/<plural>`."""
    models = resource_models(kind)
    put_model, out_model, list_model = models.put, models.out, models.listing
    singular, plural = kind.singular, kind.plural
    router = APIRouter(prefix=f"/{plural}", tags=[plural])
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}

    @router.get("", **_answering(list_model, f"list_{plural}", f"List {plural}"))
    async def list_resources(store: StoreDep, _caller: ViewerDep) -> Any:
        """Every resource of this kind, ordered by name. Any whose stored spec no longer
        validates is listed apart, under `invalid`, with the reason."""
        valid, invalid = await store.listing(plural)
        users = await _users(store, [(r.kind, r.name) for r in valid])
        return models.listing_of(valid, invalid, singular, users)

    @router.get(
        "/{name}",
        **_answering(
            out_model,
            f"get_{singular}",
            f"Get a {singular}",
            responses={**not_found, 409: _STORED_INVALID},
        ),
    )
    async def get_resource(
        name: Name, store: StoreDep, response: Response, _caller: ViewerDep
    ) -> Any:
        """One resource; its ETag header is its version. 409 when it is stored but its spec no
        longer validates: the answer says why; PUT a valid spec over it, or DELETE it."""
        stored = await store.get(plural, name)
        response.headers["ETag"] = _etag(stored)
        return models.out_of(stored, singular, await _users(store, [(stored.kind, stored.name)]))

    @router.put(
        "/{name}",
        **_answering(
            out_model,
            f"put_{singular}",
            f"Create or replace a {singular}",
            responses={
                201: {"model": out_model, "description": "Created"},
                409: {
                    "model": ErrorOut,
                    "description": "The spec breaks a mesh rule (another route hides this one) or "
                    "met a concurrent write; nothing changed",
                },
                412: {"model": ErrorOut, "description": "If-Match is stale; nothing changed"},
            },
        ),
    )
    async def put_resource(
        name: Name,
        body: put_model,  # type: ignore[valid-type]
        store: StoreDep,
        if_match: IfMatchDep,
        response: Response,
        caller: EditorDep,
        message: ChangeMessageDep,
        authority: MaybeAuthorityDep,
    ) -> Any:
        """Create (201) or replace (200) a resource.

        Putting the stored spec again changes nothing: same version, no new revision. 422 also
        when the spec refers to a resource that does not exist (its `loc` names the field).
        """
        spec: Spec = body.spec  # type: ignore[attr-defined]
        if kind.only_name is not None and name != kind.only_name:
            raise InvalidRequest(
                f"there is one {singular} resource, named {kind.only_name!r}", loc=("path", "name")
            )
        spec = await spec_to_store(store, authority, name, spec)
        stored, created = await store.put(
            plural, name, spec, if_match=if_match, by=caller.name, message=message
        )
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        response.headers["ETag"] = _etag(stored)
        return models.out_of(stored, singular, await _users(store, [(stored.kind, stored.name)]))

    @router.delete(
        "/{name}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        operation_id=f"delete_{singular}",
        summary=f"Delete a {singular}",
        responses={
            **not_found,
            409: {"model": ErrorOut, "description": "Other resources still refer to it"},
            412: {"model": ErrorOut, "description": "If-Match is stale; nothing changed"},
        },
    )
    async def delete_resource(
        name: Name,
        store: StoreDep,
        if_match: IfMatchDep,
        caller: EditorDep,
        message: ChangeMessageDep,
    ) -> None:
        """Delete a resource; 409 lists whatever still refers to it."""
        await store.delete(plural, name, if_match=if_match, by=caller.name, message=message)

    return router
