"""Field types every spec module shares, and the frozen base class of every spec.

They live apart from the specs so that the policy modules (route and service policies) and the
kinds' specs can all use them without importing one another. Each validator accepts exactly what
Envoy accepts, so a bad value is a 422 naming the field instead of a NACK later.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

import re2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "HeaderName",
    "HeaderValue",
    "Host",
    "HttpStatus",
    "IpAddress",
    "Labels",
    "Method",
    "Path",
    "Percent",
    "Port",
    "Regex",
    "Spec",
]

Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
Port = Annotated[int, Field(ge=1, le=65535)]
# Envoy's fractional percentages are exact to a millionth; 0.0001 % is the finest share.
Percent = Annotated[float, Field(ge=0, le=100, multiple_of=0.0001)]
HttpStatus = Annotated[int, Field(ge=200, le=599)]

LabelKey = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$")
]
LabelValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{0,63}$")]
Labels = dict[LabelKey, LabelValue]

_HOST = re.compile(r"^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$")
_HEADER_NAME = re.compile(r"^:?[a-z0-9!#$%&'*+.^_`|~-]+$")
# Printable ASCII and tabs: what an HTTP/1.1 and HTTP/2 header value may carry.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")


def _check_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _check_host(value: str) -> str:
    lowered = value.lower()
    if len(lowered) > 253 or not _HOST.match(lowered):
        raise ValueError(f"{value!r} is not a host name ('*', '*.example.com' or 'example.com')")
    return lowered


def _check_regex(value: str) -> str:
    """Accept exactly what Envoy's RE2 accepts, so a bad regex is a 422, not a NACK."""
    try:
        re2.compile(value)
    except re2.error as exc:
        raise ValueError(f"not a valid RE2 regular expression: {exc}") from None
    return value


def _check_header_name(value: str) -> str:
    lowered = value.lower()
    if not _HEADER_NAME.match(lowered):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return lowered


def _check_header_value(value: str) -> str:
    if not _HEADER_VALUE.match(value):
        raise ValueError("a header value holds printable ASCII only (no newlines)")
    return value


def _check_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value


IpAddress = Annotated[str, AfterValidator(_check_address)]
Host = Annotated[str, AfterValidator(_check_host)]
Regex = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_check_regex)]
HeaderName = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_header_name)]
HeaderValue = Annotated[str, Field(max_length=4096), AfterValidator(_check_header_value)]
Path = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_check_path)]


class Spec(BaseModel):
    """Base of every kind's spec: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
