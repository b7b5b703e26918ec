"""Assemble the REST API from its routers; every dependency comes in through `create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from meshplane.api.auth import Authenticator
from meshplane.api.browser_guard import answered_hosts
from meshplane.api.core_loop import CoreLoop
from meshplane.api.errors import install_error_handlers
from meshplane.api.openapi import include_routers
from meshplane.api.request_checks import RequestChecks
from meshplane.api.routes import (
    API_ROUTERS,
    ROOT_ROUTERS,
    install_metrics,
    meshplane_version,
    resource_router,
)
from meshplane.certs import CertificateAuthority
from meshplane.metrics import Metrics
from meshplane.model import KINDS
from meshplane.settings import Settings
from meshplane.store import Store, TokenRepo
from meshplane.xds import ChangePreview, StatusSource

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
_APPLY_PATH = f"{API_PREFIX}/apply"  # a whole mesh in one body: its own, larger limit


def create_app(
    *,
    store: Store,
    status: StatusSource,
    settings: Settings,
    authority: CertificateAuthority | None = None,
    metrics: Metrics | None = None,
    authenticator: Authenticator | None = None,
    core: CoreLoop | None = None,
    preview: ChangePreview | None = None,
) -> FastAPI:
    """Build the API over `store` (resources), `status` (connected proxies) and `settings`;
    `authority` serves the certificate routes; node tokens for bootstraps are issued in the
    token table, as API tokens are. `core`: the loop `status` and `authority` live on, when the
    app is served on another (see api/core_loop.py); `preview` (on that loop too) tells a dry
    run what it would change on the connected proxies.
    Every operation but the allowlisted ones (the dashboard's files, /api/v1/server, the
    health checks, /metrics, the OpenAPI document) needs an API token from `store`'s table.

    The caller owns `store` and closes it; the app opens nothing and has no lifespan work.
    """
    app = FastAPI(
        title="meshplane",
        version=meshplane_version(),
        summary="A service-mesh control plane for Envoy.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        # A spec reads back as it was written, so one schema per spec model serves both ways.
        separate_input_output_schemas=False,
    )
    app.state.store = store
    app.state.status = status
    app.state.core = core or CoreLoop()
    app.state.preview = preview
    app.state.replica_id = None  # meshplane serve sets it once registered (GET /replicas)
    app.state.settings = settings
    app.state.authority = authority
    app.state.metrics = metrics
    if authenticator is None and store is not None:
        authenticator = Authenticator(TokenRepo(store.database))
    app.state.authenticator = authenticator
    if metrics is not None:
        install_metrics(app, metrics)
    api = [*(resource_router(kind) for kind in KINDS.values()), *API_ROUTERS]
    include_routers(
        app,
        [
            *((r, "") for r in ROOT_ROUTERS),
            *((r, API_PREFIX) for r in api),
        ],
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestChecks,
        hosts=answered_hosts(settings),
        limit_for=lambda path: (
            settings.max_apply_bytes if path == _APPLY_PATH else settings.max_body_bytes
        ),
    )
    return app
