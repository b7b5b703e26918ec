"""Resource names: one grammar for every kind, as names become Envoy cluster names and Hosts."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

NAME_PATTERN = r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"

# A DNS-1123 subdomain label set, at most 63 characters: safe as a Host header, a cluster name
# and a URL path segment.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
