"""One router per resource: the kinds' CRUD, proxies, bootstrap, server info, explain, API
tokens, and the health checks."""

from meshplane.api.routes import (
    bootstrap,
    certificates,
    explain,
    health,
    metrics,
    proxies,
    server,
    tokens,
    ui,
)
from meshplane.api.routes.metrics import install_metrics
from meshplane.api.routes.resources import resource_router

__all__ = [
    "bootstrap",
    "certificates",
    "explain",
    "health",
    "install_metrics",
    "metrics",
    "proxies",
    "resource_router",
    "server",
    "tokens",
    "ui",
]
