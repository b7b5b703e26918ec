"""Health checks at the root, for orchestrators: is the process alive, and can it serve.

`/healthz` (liveness) never touches the database: a database outage is no reason to restart
the control plane, which keeps serving Envoy from memory meanwhile. `/readyz` (readiness) asks
the database for a trivial answer within a short bound; docker-compose waits on it.
"""

from __future__ import annotations

from fastapi import APIRouter

from meshplane.api.deps import StoreDep
from meshplane.api.schemas import Health

__all__ = ["READY_TIMEOUT_SECONDS", "router"]

router = APIRouter(tags=["health"])

# How long /readyz waits for the database's answer before it answers 503.
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_model=Health, operation_id="get_liveness")
async def liveness() -> Health:
    """200 while the process serves HTTP; touches nothing else, the database included."""
    return Health(status="alive")


@router.get(
    "/readyz",
    response_model=Health,
    operation_id="get_readiness",
    description=f"200 when the database answers a trivial query within "
    f"{READY_TIMEOUT_SECONDS:g} s, else 503 with Retry-After.",
)
async def readiness(store: StoreDep) -> Health:
    """Ready when the database answers (see the route's description)."""
    await store.database.ping(READY_TIMEOUT_SECONDS)
    return Health(status="ready")
