"""Free TCP ports on 127.0.0.1 for listeners the tests start (Envoy, backends, xDS servers)."""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["free_port", "free_ports"]


def free_port() -> int:
    """Return a port nothing listens on right now (the kernel's pick for a bind to port 0)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """Return `n` distinct free ports.

    All sockets stay bound until every port is picked, so the kernel cannot hand out one twice.
    Another process may still take a port before the caller binds it; ephemeral picks make that
    rare enough for tests.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports
