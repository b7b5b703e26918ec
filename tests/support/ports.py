"""Free TCP ports on 127.0.0.1 for listeners the tests start (Envoy, backends, xDS servers).

The ports handed out lie below the kernel's ephemeral range (`ip_local_port_range`), where a
bind to port 0 never lands: a port picked here for an Envoy listener cannot be taken meanwhile
by a server of the same test that binds port 0 (the control plane's API, say), which is what
happens now and then with a port the kernel picked and gave back. Within this process no port
is handed out twice until the range is used up.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from contextlib import ExitStack
from pathlib import Path

__all__ = ["free_port", "free_ports"]

_SPAN = 12_000


def _below_ephemeral() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    start = max(1024, low - _SPAN)
    return range(start, low)


_PORTS = _below_ephemeral()
# A start of its own per process, so concurrent test processes rarely walk the same ports.
_START = random.Random(os.getpid()).randrange(len(_PORTS))
_CANDIDATES = itertools.cycle([*_PORTS[_START:], *_PORTS[:_START]])
_HANDED: set[int] = set()


def free_port() -> int:
    """Return a port nothing listens on right now (see the module's docstring)."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """Return `n` distinct free ports, none handed out before by this process (until all of
    the range has been).

    Each candidate is bound once to check nothing holds it; all stay bound until every port is
    picked. Another process may still take a port before the caller binds it.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(len(_PORTS)):
            if len(ports) == n:
                break
            candidate = next(_CANDIDATES)
            if candidate in _HANDED or candidate in ports:
                continue
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            ports.append(candidate)
        if len(ports) < n:
            _HANDED.clear()  # the range is used up: start over
            return ports + free_ports(n - len(ports))
        _HANDED.update(ports)
        return ports
