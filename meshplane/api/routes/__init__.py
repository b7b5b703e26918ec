"""One router per resource: the kinds' CRUD, proxies, bootstrap and server info."""

from meshplane.api.routes import bootstrap, proxies, server
from meshplane.api.routes.resources import resource_router

__all__ = ["bootstrap", "proxies", "resource_router", "server"]
