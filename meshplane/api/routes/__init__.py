"""One router per resource: the kinds' CRUD, a batch apply, the change history, proxies,
bootstrap, server info, explain, API tokens, and the health checks."""

from meshplane.api.routes import (
    apply,
    bootstrap,
    certificates,
    changes,
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
    "apply",
    "bootstrap",
    "certificates",
    "changes",
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
