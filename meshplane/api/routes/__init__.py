"""One router per resource: the kinds' CRUD, proxies, bootstrap, server info and explain."""

from meshplane.api.routes import bootstrap, explain, proxies, server
from meshplane.api.routes.resources import resource_router

__all__ = ["bootstrap", "explain", "proxies", "resource_router", "server"]
