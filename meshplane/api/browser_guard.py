"""Refuse the requests a web page can make a browser send to the API behind its user's back.

A browser sends some requests to any address without asking the server first: a form POST
(Content-Type application/x-www-form-urlencoded, multipart/form-data or text/plain, with or
without a body) and a simple GET or POST from a script. A page on any site could then end a CA
overlap through a user's browser on the same host as the API. And a site whose name re-resolves
to 127.0.0.1 (DNS rebinding) is, to the browser, the API's own origin: its page may read answers,
a bootstrap and its node token included. So, before the app sees a request (`browser_refusal`,
the first of the request checks in request_checks.py):

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

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

from meshplane.api.json_body import is_json
from meshplane.host_names import Host, parse_host
from meshplane.settings import Settings

__all__ = ["WRITES", "answered_hosts", "answers", "browser_refusal"]

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


def browser_refusal(
    scope: Scope, headers: Headers, hosts: frozenset[Host] | None
) -> tuple[int, str] | None:
    """The status and sentence refusing a foreign Host (400), a foreign Origin (403) or a write
    that is not JSON (415), as the module doc explains; None lets the request pass.
    `hosts` are those `answered_hosts` gives (None: any)."""
    scheme = scope["scheme"]
    host_header = headers.get("host", "")
    host = parse_host(host_header)
    if host is None or not _answers_to(hosts, host, scheme):
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
            f"a {scope['method']} takes Content-Type application/json, not {_excerpt(content_type)}"
        )
    return None


def _answers_to(hosts: frozenset[Host] | None, host: Host, scheme: str) -> bool:
    if hosts is None:
        return True
    name, port = host
    port = port or _DEFAULT_PORTS.get(scheme)
    return (name, None) in hosts or (name, port) in hosts


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
