"""One router per resource: the kinds' CRUD, a batch apply, the change history, the mesh at a
revision and rollback, proxies, replicas, bootstrap, server info, explain, API tokens, and
the health checks."""

from meshplane.api.routes import (
    apply,
    bootstrap,
    certificates,
    changes,
    explain,
    health,
    metrics,
    proxies,
    replicas,
    revisions,
    rollback,
    server,
    tokens,
    ui,
)
from meshplane.api.routes.metrics import install_metrics
from meshplane.api.routes.resources import resource_router
from meshplane.api.routes.server import meshplane_version

__all__ = ["API_ROUTERS", "ROOT_ROUTERS", "install_metrics", "meshplane_version", "resource_router"]

API_ROUTERS = (
    proxies.router,
    bootstrap.router,
    server.router,
    certificates.router,
    explain.router,
    tokens.router,
    apply.router,
    changes.router,
    revisions.router,
    rollback.router,
    replicas.router,
)
"""Served under /api/v1, beside one `resource_router` per kind."""
ROOT_ROUTERS = (metrics.router, ui.router, health.router)
"""Served at the root: /metrics, the dashboard, the health checks."""
