"""POST /explain: which route a request takes at a gateway or a sidecar, and why."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from meshplane.api.deps import StoreDep, ViewerDep
from meshplane.explain import ExplainRequest, Explanation, UnknownProxy, explain

__all__ = ["router"]

router = APIRouter(prefix="/explain", tags=["explain"])


@router.post("", response_model=Explanation, operation_id="explain", summary="Explain a request")
async def explain_request(body: ExplainRequest, store: StoreDep, _caller: ViewerDep) -> Explanation:
    """Which route the proxy uses for this request, why each of its other routes is not used
    (the condition that failed, or the precedence rule that put another first), and where the
    request goes: destinations with their share, endpoints and protections, the rewritten path,
    and the route's timeout, retries, faults, rate limit, mirrors and header changes.

    Read from the latest committed mesh with the same ordering the proxies are given. 422 when
    the gateway or source service does not exist.
    """
    mesh = await store.load_mesh()
    try:
        return explain(mesh, body)
    except UnknownProxy as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", exc.field), "msg": str(exc)}]
        ) from None
