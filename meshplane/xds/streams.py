"""The stream table: every open ADS stream, by id, with the proxy and state behind it.

State lives with the stream, not the node (shared/DESIGN.md rule 6b): one node id may hold
several streams at once, each with its own handle. The table is the one place that knows which
streams are open; what follows a stream's opening or closing (auto-registration) and what is read
from them (the API's status, the CA's convergence, the secret audit) is in modules of its own.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from meshplane.model import Proxy
from meshplane.xds.stream_state import StreamState, utc_now

__all__ = ["StreamHandle", "StreamTable"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class StreamHandle:
    """One open ADS stream as the rest of the control plane sees it."""

    stream_id: int
    proxy: Proxy | None
    node_id: str
    transport: str
    state: StreamState
    connected_since: datetime = field(default_factory=utc_now)
    denied_secrets: set[str] = field(default_factory=set)


class StreamTable:
    """The open streams; ids count up from 1 and are never reused."""

    def __init__(self) -> None:
        self._streams: dict[int, StreamHandle] = {}
        self._ids = itertools.count(1)

    def open(
        self, proxy: Proxy | None, node_id: str, transport: str, state: StreamState
    ) -> StreamHandle:
        handle = StreamHandle(next(self._ids), proxy, node_id, transport, state)
        self._streams[handle.stream_id] = handle
        log.info("stream open node=%s stream=%d transport=%s", node_id, handle.stream_id, transport)
        return handle

    def close(self, handle: StreamHandle) -> None:
        self._streams.pop(handle.stream_id, None)
        log.info("stream closed node=%s stream=%d", handle.node_id, handle.stream_id)

    def connected(self, node_id: str) -> bool:
        """Whether any stream of `node_id` is open."""
        return any(h.node_id == node_id for h in self._streams.values())

    def of_node(self, node_id: str) -> list[StreamHandle]:
        """The open streams of `node_id`, oldest first."""
        return [h for h in self._streams.values() if h.node_id == node_id]

    def __iter__(self) -> Iterator[StreamHandle]:
        """The open streams, oldest first (a snapshot: the table may change meanwhile)."""
        return iter(list(self._streams.values()))
