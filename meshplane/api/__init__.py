"""The REST API (FastAPI) under /api/v1, with its OpenAPI document at /docs."""

from meshplane.api.app import API_PREFIX, create_app
from meshplane.api.core_loop import CoreLoop
from meshplane.api.http_server import ApiServer, ApiThread
from meshplane.api.schemas import proxy_json

__all__ = ["API_PREFIX", "ApiServer", "ApiThread", "CoreLoop", "create_app", "proxy_json"]
