"""The client side: the `meshplane` commands and the HTTP client they share.

`app` assembles the commands (app.py); `ApiClient` (api_client.py) is the REST API's client that
every command but `serve` goes through; output.py holds what the commands print and how they fail.
"""

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient, ApiError, format_loc
from meshplane.cli.app import app, main

__all__ = ["DEFAULT_API_URL", "ApiClient", "ApiError", "app", "format_loc", "main"]
