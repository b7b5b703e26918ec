"""Host names as HTTP's Host header writes them: `name`, `name:port`, `[v6]` or `[v6]:port`.

One parser for the header the API receives and for the names it is configured to answer to
(MESHPLANE_ALLOWED_HOSTS, the API and advertised addresses), so both compare alike: lower case,
without a final dot, an IPv6 address in brackets.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["Host", "is_loopback", "parse_host"]

Host = tuple[str, int | None]  # (lower-case name or [IPv6], port or None)

_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^\[\]:/@\s]+)(?::(\d{1,5}))?")


def parse_host(text: str, *, bare_ipv6: bool = False) -> Host | None:
    """`text` as (name, port); None if it is no host[:port].

    `bare_ipv6` also takes an IPv6 address without brackets ("::1", as a listen address is
    written; never valid in a Host header, where "::1" would read as a name and a port)."""
    text = text.strip().lower()
    if bare_ipv6 and text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"
    match = _HOST.fullmatch(text)
    if match is None:
        return None
    return match[1].removesuffix("."), int(match[2]) if match[2] else None


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: 127.0.0.0/8, ::1 (also IPv4-mapped) or the
    name localhost. A wildcard (0.0.0.0, ::) or any other name is reachable from the network."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
