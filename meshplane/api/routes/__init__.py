"""One router per resource: the kinds' CRUD, proxies, bootstrap, server info, explain, and the
health checks."""

from meshplane.api.routes import bootstrap, explain, health, proxies, server
from meshplane.api.routes.resources import resource_router

__all__ = ["bootstrap", "explain", "health", "proxies", "resource_router", "server"]
