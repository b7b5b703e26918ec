"""A translate hook that holds a build in its worker thread until the test lets it go."""

from __future__ import annotations

import threading

from google.protobuf.message import Message

from meshplane.model import ProxyGroup
from meshplane.xds.type_urls import CLUSTER

__all__ = ["HeldBuild"]


class HeldBuild:
    """Once armed, the next translation of shared clusters (a build's: never an endpoint-only
    update's, nor a stream's) waits until `released` is set (at most 30 s); `holding` is set
    meanwhile."""

    def __init__(self) -> None:
        self.armed = False
        self.holding = threading.Event()
        self.released = threading.Event()

    def __call__(self, group: ProxyGroup | None, resources: dict[str, list[Message]]) -> None:
        if group is None and CLUSTER in resources and self.armed:
            self.armed = False
            self.holding.set()
            try:
                self.released.wait(30)
            finally:
                self.holding.clear()
