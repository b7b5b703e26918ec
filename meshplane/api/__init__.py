"""The REST API (FastAPI) under /api/v1, with its OpenAPI document at /docs."""

from meshplane.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
