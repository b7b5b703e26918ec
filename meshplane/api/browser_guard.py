"""Refuse the requests a web page can make a browser send to the API behind its user's back.

A browser sends some requests to any address without asking the server first: a form POST
(Content-Type application/x-www-form-urlencoded, multipart/form-data or text/plain, with or
without a body) and a simple GET or POST from a script. A page on any site could then end a CA
overlap through a user's browser on the same host as the API. And a site whose name re-resolves
to 127.0.0.1 (DNS rebinding) is, to the browser, the API's own origin: its page may read answers,
a bootstrap and its node token included. So, before the app sees a request:

- its Host header must name one of the hosts the server answers to (400), which a rebound
  name is not (as Django's ALLOWED_HOSTS);
- an `Origin` header, which browsers add to every cross-origin request except a plain GET, must
  be the API's own (403); a client that is not a browser (the CLI, curl, Prometheus) sends none;
- a write (POST, PUT, PATCH, DELETE) with a Content-Type takes only JSON (415), the one type a
  page cannot send elsewhere without the server's consent (a CORS preflight, which this API never
  grants). A write without a body and without a Content-Type (the CLI's POST /ca/finish) passes.

Every refusal is the one error shape, `{"detail": "a sentence"}`, and happens before a byte of
the body is read or anything is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from meshplane.api.json_body import is_json
from meshplane.host_names import Host, parse_host
from meshplane.settings import Settings

__all__ = ["WRITES", "BrowserGuard", "answered_hosts", "answers"]

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = frozenset({"0.0.0.0", "[::]"})  # listen addresses that name no host
_DEFAULT_PORTS = {"http": 80, "https": 443}
_EXCERPT = 80


def answers(method: str) -> dict[int, str]:
    """The error answers this guard can give to an operation, for the OpenAPI document."""
    out = {
        400: "The Host header names a host this server does not answer to "
        "(MESHPLANE_ALLOWED_HOSTS); nothing changed.",
        403: "The request comes from a web page of another origin (its Origin header); "
        "nothing changed.",
    }
    if method.upper() in WRITES:
        out[415] = "The Content-Type is not application/json; nothing changed."
    return out


def answered_hosts(settings: Settings) -> frozenset[Host] | None:
    """The hosts the API answers to; None answers to any (`MESHPLANE_ALLOWED_HOSTS=*`).

    Unset, they are the loopback names and the API's listen and advertised addresses, when
    those name one host (not 0.0.0.0 or ::). Settings has checked that every entry is a host."""
    names: Iterable[str] = settings.allowed_hosts
    if "*" in names:
        return None
    if not names:
        names = (*LOOPBACK, settings.api_host, settings.advertise_address)
    hosts = (parse_host(name, bare_ipv6=True) for name in names)
    return frozenset(h for h in hosts if h is not None and h[0] not in _WILDCARDS)


class BrowserGuard:
    """ASGI middleware: refuse a foreign Host (400), a foreign Origin (403) and a write that is
    not JSON (415), as the module doc explains."""

    def __init__(self, app: ASGIApp, hosts: frozenset[Host] | None) -> None:
        self._app = app
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self._app(scope, receive, send)
            return
        status, detail = refusal
        log.info("refused method=%s path=%.200s status=%d", scope["method"], scope["path"], status)
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        scheme = scope["scheme"]
        host_header = headers.get("host", "")
        host = parse_host(host_header)
        if host is None or not self._answers_to(host, scheme):
            return 400, (
                f"this server does not answer to the host {_excerpt(host_header)} "
                "(MESHPLANE_ALLOWED_HOSTS)"
            )
        origin = headers.get("origin")
        if origin is not None and _origin(origin) != _normal(scheme, host):
            return 403, (
                f"the API refuses requests from web pages of other origins, "
                f"here {_excerpt(origin)}; call it from its own page or without a browser"
            )
        content_type = headers.get("content-type")
        if scope["method"] in WRITES and content_type is not None and not is_json(content_type):
            return 415, (
                f"a {scope['method']} takes Content-Type application/json, "
                f"not {_excerpt(content_type)}"
            )
        return None

    def _answers_to(self, host: Host, scheme: str) -> bool:
        if self._hosts is None:
            return True
        name, port = host
        port = port or _DEFAULT_PORTS.get(scheme)
        return (name, None) in self._hosts or (name, port) in self._hosts


def _origin(origin: str) -> tuple[str, str, int | None] | None:
    """An Origin header ("scheme://host[:port]") in the form `_normal` gives; None for "null"."""
    scheme, separator, authority = origin.partition("://")
    host = parse_host(authority) if separator else None
    return None if host is None else _normal(scheme.lower(), host)


def _normal(scheme: str, host: Host) -> tuple[str, str, int | None]:
    name, port = host
    return scheme, name, port or _DEFAULT_PORTS.get(scheme)


def _excerpt(text: str) -> str:
    return repr(text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else ""))
