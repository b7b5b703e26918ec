"""Joined resource frames, by content version, shared by every stream that sends the same set.

A proxy that is sent every resource of a type (all clusters, a gateway's endpoints) gets the same
bytes as every other such proxy of any group whose set has the same content version. Joining a
thousand frames per stream costs a list, a copy and, for large sets, fresh pages; joined once,
each stream only prefixes its version and nonce. The version is a hash of the set's content
(resources.set_digest), so a body can never be served for a different set; the order of the
frames inside it, which a state-of-the-world response does not give meaning to, is the first
asker's. Bounded in bytes: the least recently used bodies go first. The ADS server owns one and
hands it to the state machine of each stream it serves; a state machine given none (unit tests)
makes one that keeps nothing (max_bytes 0), so it joins per response: the same bytes, unshared.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

from meshplane.xds.resources import CachedResource

__all__ = ["ResponseBodies"]

_MAX_BYTES = 64 * 1024 * 1024


class ResponseBodies:
    """A byte-bounded LRU of joined frames keyed by (type URL, set version, frame kind)."""

    def __init__(self, max_bytes: int = _MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bodies: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._bytes = 0

    def body(
        self,
        type_url: str,
        version: str,
        resources: Mapping[str, CachedResource],
        frame: Callable[[CachedResource], bytes],
        kind: str,
    ) -> bytes:
        """The frames of `resources` (whose set version is `version`) joined, once per version."""
        key = (type_url, version, kind)
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
            return body
        body = b"".join([frame(r) for r in resources.values()])
        if 0 < len(body) <= self._max_bytes:
            self._bodies[key] = body
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                _, evicted = self._bodies.popitem(last=False)
                self._bytes -= len(evicted)
        return body

    @property
    def size(self) -> tuple[int, int]:
        """(bodies held, their bytes)."""
        return len(self._bodies), self._bytes
