"""About this control plane: its version, its revision, where Envoy reaches its xDS port, and
which stored resources no longer validate."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from fastapi import APIRouter, Request

from meshplane.api.deps import SettingsDep, StoreOrMemoryDep
from meshplane.api.schemas import InvalidResourceOut, ServerInfo, XdsAddress
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
async def server_info(
    request: Request, store: StoreOrMemoryDep, settings: SettingsDep
) -> ServerInfo:
    """meshplane's version, the current revision, the advertised xDS address, and the stored
    resources whose spec no longer validates (left out of what proxies are sent).

    Answers while the database is unreachable too (the process still serves Envoy): the revision
    is then the newest this process committed or saw, `database` says "unreachable", and the
    invalid resources cannot be listed.
    """
    database: Literal["reachable", "unreachable"] = "reachable"
    try:
        revision = await store.revision()
        invalid = [InvalidResourceOut.of_report(r) for r in await store.invalid_resources()]
    except Unavailable:
        revision, database, invalid = store.feed.latest, "unreachable", []
    return ServerInfo(
        version=request.app.version,
        revision=revision,
        database=database,
        xds=XdsAddress(host=settings.advertise_address, port=settings.xds_port),
        invalid_resources=invalid,
    )
