"""What the xDS side knows about connected proxies: the "why is my route not applied" view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request

from meshplane.api.deps import CoreDep, StatusDep, StoreOrMemoryDep, ViewerDep
from meshplane.api.schemas import ErrorOut, ProxyConfig, ProxyList, ProxyStatusOut
from meshplane.errors import NotFound, Unavailable, excerpt
from meshplane.store import ReplicaProxies

__all__ = ["router"]

router = APIRouter(prefix="/proxies", tags=["proxies"])


@router.get("", response_model=ProxyList, operation_id="list_proxies")
async def list_proxies(
    request: Request,
    status: StatusDep,
    core: CoreDep,
    store: StoreOrMemoryDep,
    _caller: ViewerDep,
) -> ProxyList:
    """Every open xDS stream of every live replica: per type, the version sent, the version
    ACKed, and the last NACK; `replica` names the replica holding it. This replica's streams
    are as they are; the others' as their replica last wrote them (every 2 s). While the
    database is unreachable, this replica's streams only."""
    this: str | None = request.app.state.replica_id
    items = [
        ProxyStatusOut.model_validate(p, from_attributes=True).model_copy(update={"replica": this})
        for p in await core.call(status.proxies)
    ]
    if this is not None and store.database.postgres:  # one SQLite server: no other replica
        try:
            others = await ReplicaProxies(store.database).of_others(this, datetime.now(UTC))
        except Unavailable:
            others = []
        items += [
            ProxyStatusOut.model_validate(status_json | {"replica": replica})
            for replica, status_json in others
        ]
    items.sort(key=lambda p: (p.node_id, p.replica or "", p.stream_id))
    return ProxyList(items=items)


@router.get(
    "/{node_id}/config",
    response_model=ProxyConfig,
    operation_id="get_proxy_config",
    responses={404: {"model": ErrorOut}},
)
async def proxy_config(
    node_id: Annotated[str, Path(description="The proxy's node id.")],
    status: StatusDep,
    core: CoreDep,
    _caller: ViewerDep,
) -> ProxyConfig:
    """The resources currently served to a proxy, by type, as JSON: a proxy of this replica
    (another replica's answers through that replica's API)."""
    config = await core.call(lambda: status.proxy_config(node_id))
    if config is None:
        raise NotFound(f"no proxy with node id {excerpt(node_id)!r} is connected")
    return dict(config)
