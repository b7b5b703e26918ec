"""The API's view of the stream table (the StatusSource it reads, see status.py).

Each open stream's status, and what a node was last sent, as JSON: the records the API answers
"why is my route not applied" with. Read-only: nothing here changes a stream. A private key is
never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from meshplane.xds.resources import CachedResource
from meshplane.xds.status import ProxyStatus
from meshplane.xds.streams import StreamHandle, StreamTable
from meshplane.xds.type_urls import PUSH_ORDER, SECRET, SHORT_NAMES

__all__ = ["StreamStatus"]


class StreamStatus:
    """Implements StatusSource over a stream table."""

    def __init__(self, streams: StreamTable) -> None:
        self._streams = streams

    def proxies(self) -> list[ProxyStatus]:
        handles = sorted(self._streams, key=lambda h: (h.node_id, h.stream_id))
        return [_status(h) for h in handles]

    def proxy_config(self, node_id: str) -> Mapping[str, list[dict[str, Any]]] | None:
        handles = self._streams.of_node(node_id)
        if not handles:
            return None
        state = handles[0].state
        out: dict[str, list[dict[str, Any]]] = {}
        for type_url in PUSH_ORDER:
            record = state.types.get(type_url)
            if record is not None:
                out[SHORT_NAMES[type_url]] = [_as_json(r) for _, r in sorted(record.coming.items())]
        return out


def _as_json(resource: CachedResource) -> dict[str, Any]:
    body = (
        json_format.MessageToDict(resource.message, preserving_proto_field_name=True)
        if resource.message is not None
        else None
    )
    if body is not None and resource.type_url == SECRET and "tls_certificate" in body:
        body["tls_certificate"]["private_key"] = "[redacted]"  # the API never shows a key
    return {"name": resource.name, "version": resource.version, "resource": body}


def _status(handle: StreamHandle) -> ProxyStatus:
    group = handle.proxy.group if handle.proxy else None
    return ProxyStatus(
        node_id=handle.node_id,
        role=str(group.role) if group else None,
        gateway=group.gateway if group else None,
        service=group.service if group else None,
        address=handle.proxy.address if handle.proxy else None,
        transport=handle.transport,
        stream_id=handle.stream_id,
        connected_since=handle.connected_since,
        types=handle.state.statuses(),
        denied_secrets=len(handle.denied_secrets),
        revision=handle.state.holds_revision,
    )
