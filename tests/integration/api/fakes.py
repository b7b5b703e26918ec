"""Test doubles for the API's collaborators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshplane.xds.status import ProxyStatus


@dataclass
class FakeStatus:
    """A StatusSource whose answers the test sets."""

    streams: list[ProxyStatus] = field(default_factory=list)
    configs: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def proxies(self) -> list[ProxyStatus]:
        return list(self.streams)

    def proxy_config(self, node_id: str) -> Mapping[str, list[dict[str, Any]]] | None:
        return self.configs.get(node_id)
