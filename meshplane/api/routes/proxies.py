"""What the xDS side knows about connected proxies: the "why is my route not applied" view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from meshplane.api.deps import CoreDep, StatusDep, ViewerDep
from meshplane.api.schemas import ErrorOut, ProxyConfig, ProxyList, ProxyStatusOut
from meshplane.errors import NotFound, excerpt

__all__ = ["router"]

router = APIRouter(prefix="/proxies", tags=["proxies"])


@router.get("", response_model=ProxyList, operation_id="list_proxies")
async def list_proxies(status: StatusDep, core: CoreDep, _caller: ViewerDep) -> ProxyList:
    """Every open xDS stream: per type, the version sent, the version ACKed, and the last NACK."""
    proxies = await core.call(status.proxies)
    return ProxyList(
        items=[ProxyStatusOut.model_validate(p, from_attributes=True) for p in proxies]
    )


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
    """The resources currently served to a proxy, by type, as JSON."""
    config = await core.call(lambda: status.proxy_config(node_id))
    if config is None:
        raise NotFound(f"no proxy with node id {excerpt(node_id)!r} is connected")
    return dict(config)
