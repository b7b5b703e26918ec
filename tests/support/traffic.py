"""Send requests through Envoy and see which backend answered.

Both helpers reuse one keep-alive connection (see DESIGN.md "Measurement hygiene"), ignore proxy
environment variables (everything is on 127.0.0.1), and never sleep longer than a poll interval.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping

import httpx

__all__ = ["answered_by", "client", "hits", "wait_until_served"]

_POLL_INTERVAL = 0.005
_REQUEST_TIMEOUT = 5.0


def client() -> httpx.AsyncClient:
    """A keep-alive client suited to talking to Envoy on loopback."""
    return httpx.AsyncClient(timeout=_REQUEST_TIMEOUT, trust_env=False)


def answered_by(response: httpx.Response) -> str:
    """The backend named in `x-backend`, or `status <code>` when Envoy answered itself (503 "no
    healthy upstream", 404 "no route")."""
    return response.headers.get("x-backend") or f"status {response.status_code}"


async def hits(
    url: str, n: int, headers: Mapping[str, str] | None = None, *, method: str = "GET"
) -> Counter[str]:
    """Send `n` requests one after another and count who answered each (see `answered_by`)."""
    counts: Counter[str] = Counter()
    async with client() as http:
        for _ in range(n):
            response = await http.request(method, url, headers=headers)
            counts[answered_by(response)] += 1
    return counts


async def wait_until_served(
    url: str,
    predicate: Callable[[httpx.Response], bool],
    timeout: float = 10.0,
    *,
    headers: Mapping[str, str] | None = None,
    interval: float = _POLL_INTERVAL,
) -> httpx.Response:
    """Poll `url` until a response satisfies `predicate`, and return that response.

    Connection errors (the listener is not there yet) count as "not yet". Raises TimeoutError
    naming the last answer when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with client() as http:
        while True:
            try:
                response = await http.get(url, headers=headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if predicate(response):
                    return response
                last = f"{response.status_code} from {answered_by(response)}: {response.text[:200]}"
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{url} not served as expected within {timeout:g}s; last: {last}"
                )
            await asyncio.sleep(interval)
