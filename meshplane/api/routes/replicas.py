"""The control plane's replicas: every `meshplane serve` on this mesh's database that beats
(see store/replicas.py), and which of them answered."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from meshplane.api.deps import StoreDep, ViewerDep
from meshplane.api.schemas import ReplicaList, ReplicaOut, XdsAddress
from meshplane.store import ReplicaRepo

__all__ = ["router"]

router = APIRouter(prefix="/replicas", tags=["replicas"])


@router.get("", response_model=ReplicaList, operation_id="list_replicas")
async def list_replicas(request: Request, store: StoreDep, _caller: ViewerDep) -> ReplicaList:
    """Every live replica (a heartbeat within the last 10 s), oldest first; `this` marks the
    one that answered, `leader` the one running the singleton jobs."""
    this: str | None = request.app.state.replica_id
    live = await ReplicaRepo(store.database).live(datetime.now(UTC))
    return ReplicaList(
        items=[
            ReplicaOut(
                id=r.id,
                xds=XdsAddress(host=r.xds_host, port=r.xds_port),
                api_url=r.api_url,
                started_at=r.started_at,
                heartbeat_at=r.heartbeat_at,
                this=r.id == this,
                leader=r.leading,
                identity_generation=r.identity_generation,
            )
            for r in live
        ]
    )
