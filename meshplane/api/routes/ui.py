"""The dashboard at /ui: static files shipped in the package, and / redirecting to it.

The page is plain HTML, CSS and ES modules read from `meshplane/api/ui/`; it calls the same REST
API as everyone else, so this router serves files and nothing more. Only the files listed in
`_ASSETS` are served: a request can never name another path in the package.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

__all__ = ["router"]

router = APIRouter(tags=["ui"], include_in_schema=False)

_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "history.js": "text/javascript; charset=utf-8",
    "view.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The files change with the installed package, not by the hour: revalidate, never go stale.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard file {name!r}")
    body = resources.files("meshplane.api").joinpath("ui", name).read_bytes()
    return Response(body, media_type=media_type, headers=_HEADERS)


@router.get("/")
def root() -> RedirectResponse:
    """Send a browser that opens the API's address to the dashboard."""
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
@router.get("/ui/")
def page() -> Response:
    """The dashboard page."""
    return _asset("index.html")


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    """A script or style sheet of the page (404 for anything not shipped with it)."""
    return _asset(name)
