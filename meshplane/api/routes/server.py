"""About this control plane: its version, its revision, and where Envoy reaches its xDS port."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from fastapi import APIRouter, Request

from meshplane.api.deps import SettingsDep, StoreDep
from meshplane.api.schemas import ServerInfo, XdsAddress
from meshplane.errors import Unavailable

__all__ = ["meshplane_version", "router"]

router = APIRouter(prefix="/server", tags=["server"])


def meshplane_version() -> str:
    """The installed package's version; create_app reads it once."""
    try:
        return version("meshplane")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


@router.get("", response_model=ServerInfo, operation_id="get_server")
async def server_info(request: Request, store: StoreDep, settings: SettingsDep) -> ServerInfo:
    """meshplane's version, the current revision, and the advertised xDS address.

    Answers while the database is unreachable too (the process still serves Envoy): the revision
    is then the newest this process committed or saw, and `database` says "unreachable".
    """
    database: Literal["reachable", "unreachable"] = "reachable"
    try:
        revision = await store.revision()
    except Unavailable:
        revision, database = store.feed.latest, "unreachable"
    return ServerInfo(
        version=request.app.version,
        revision=revision,
        database=database,
        xds=XdsAddress(host=settings.advertise_address, port=settings.xds_port),
    )
