"""Envoy's matching, evaluated in Python against one request, with the reason each part fails.

The semantics follow what the translator tells Envoy (translate/route_matches.py): path
conditions see the path without its query string, case-sensitively; `regex` conditions must match
the whole value (RE2); a header condition looks at the header's value as sent; a query condition
looks at the parameter's first value, percent-decoded. Virtual hosts are chosen like Envoy does:
an exact host first, then the longest `*.suffix` wildcard, then `*`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

import re2

from meshplane.model import HeaderMatch, QueryMatch, RouteMatch

__all__ = ["Request", "failed_conditions", "normalise_host", "pick_virtual_host"]


@dataclass(frozen=True, slots=True)
class Request:
    """A request as route matching sees it."""

    host: str
    path: str  # without the query string
    query: Mapping[str, str]  # first value of each parameter, decoded
    method: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    raw_query: str = ""  # as sent, for the forwarded path

    @classmethod
    def of(cls, host: str, target: str, method: str, headers: Mapping[str, str]) -> Request:
        path, _, query = target.partition("?")
        return cls(
            host=normalise_host(host),
            path=path,
            query=_parse_query(query),
            method=method.upper(),
            headers={name.lower(): value for name, value in headers.items()},
            raw_query=query,
        )


def normalise_host(host: str) -> str:
    """Lower-case the host and strip a port, as the connection manager does before matching."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]", 1)[0] + "]"
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def pick_virtual_host(host: str, names: Iterable[str]) -> str | None:
    """The virtual host Envoy picks for `host` among virtual hosts named by their one domain."""
    known = set(names)
    if host in known:
        return host
    suffixes = [n for n in known if n.startswith("*.") and host.endswith(n[1:]) and host != n[1:]]
    if suffixes:
        return max(suffixes, key=len)
    return "*" if "*" in known else None


def failed_conditions(match: RouteMatch, request: Request) -> list[str]:
    """Every condition of `match` the request does not meet, in words (empty: it matches)."""
    failures = []
    if match.path is not None and request.path != match.path:
        failures.append(f"path {request.path!r} is not {match.path!r}")
    elif match.regex is not None and not re2.fullmatch(match.regex, request.path):
        failures.append(f"path {request.path!r} does not match regex {match.regex!r}")
    elif match.prefix is not None and not request.path.startswith(match.prefix):
        failures.append(f"path {request.path!r} does not start with {match.prefix!r}")
    if match.methods and request.method not in match.methods:
        failures.append(f"method {request.method} is not one of {', '.join(match.methods)}")
    failures += [
        reason
        for header in match.headers
        if (reason := _condition("header", header, request.headers.get(header.name)))
    ]
    failures += [
        reason
        for query in match.query
        if (reason := _condition("query parameter", query, request.query.get(query.name)))
    ]
    return failures


def _condition(what: str, condition: HeaderMatch | QueryMatch, value: str | None) -> str | None:
    """Why `value` (None: absent) fails `condition`; None when it meets it."""
    name = f"{what} {condition.name!r}"
    if condition.present is not None:
        if condition.present and value is None:
            return f"{name} is absent (it must be present)"
        if not condition.present and value is not None:
            return f"{name} is present (it must be absent)"
        return None
    if value is None:
        wanted = condition.exact if condition.exact is not None else condition.regex
        return f"{name} is absent (wanted {'exactly' if condition.exact else 'regex'} {wanted!r})"
    if condition.exact is not None and value != condition.exact:
        return f"{name} is {value!r}, not {condition.exact!r}"
    if condition.regex is not None and not re2.fullmatch(condition.regex, value):
        return f"{name} {value!r} does not match regex {condition.regex!r}"
    return None


def _parse_query(query: str) -> dict[str, str]:
    """First value of each parameter; `?flag` counts as present with an empty value."""
    values: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        values.setdefault(unquote(key), unquote(value))
    return values
