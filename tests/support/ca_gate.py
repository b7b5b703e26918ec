"""A stand-in for the CA's `converged`: the test decides when proxies "acknowledge"."""

from __future__ import annotations

__all__ = ["Gate"]


class Gate:
    """A `converged` the test opens: proxies "acknowledge" only while it is open."""

    def __init__(self, is_open: bool = False) -> None:
        self.open = is_open

    async def __call__(self, version: int) -> bool:
        return self.open
