"""Health checks at the root, for orchestrators: is the process alive, and can it serve.

`/healthz` (liveness) never touches the database: a database outage is no reason to restart
the control plane, which keeps serving Envoy from memory meanwhile. `/readyz` (readiness) asks
the database for a trivial answer within a short bound; docker-compose waits on it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from meshplane.api.deps import StoreDep
from meshplane.api.errors import UNAVAILABLE

__all__ = ["READY_TIMEOUT_SECONDS", "router"]

router = APIRouter(tags=["health"])

# How long /readyz waits for the database's answer before it answers 503.
READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["alive", "ready"] = Field(description="What the check found.")


@router.get("/healthz", response_model=Health, operation_id="get_liveness")
async def liveness() -> Health:
    """200 while the process serves HTTP; touches nothing else, the database included."""
    return Health(status="alive")


@router.get("/readyz", response_model=Health, operation_id="get_readiness", responses=UNAVAILABLE)
async def readiness(store: StoreDep) -> Health:
    """200 when the database answers a trivial query within 2 s, else 503 with Retry-After."""
    await store.database.ping(READY_TIMEOUT_SECONDS)
    return Health(status="ready")
