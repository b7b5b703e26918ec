"""Hand-assembled DiscoveryResponse bytes: a resource is serialized once, shared by every stream.

Protobuf's wire format lets a message be written as the concatenation of its fields, so a
response is its few small scalar fields followed by each resource's pre-serialized bytes behind
a field tag. Building a DiscoveryResponse message per stream instead would copy and re-serialize
every resource for every proxy (the "per-proxy re-serialization" smell). Field numbers are from
envoy/service/discovery/v3/discovery.proto; tests check the bytes parse back into the real message.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

__all__ = [
    "any_bytes",
    "delta_framed",
    "delta_resource_bytes",
    "delta_response",
    "delta_with_body",
    "field",
    "frame",
    "sotw_framed",
    "sotw_response",
    "sotw_with_body",
]

_LEN = 2  # wire type: length-delimited


def _varint(value: int) -> bytes:
    if value < 0x80:  # lengths of names and versions: most varints written here are one byte
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
_TAGS = [_varint(number << 3 | _LEN) for number in range(16)]  # field numbers 0 to 15


def _field(number: int, payload: bytes) -> bytes:
    return b"".join((_TAGS[number], _varint(len(payload)), payload))


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a message, bytes or a string) of any message, ready to
    concatenate with the others in field-number order (route configurations are assembled from
    their routes' bytes this way, see translate/route_configs.py)."""
    return _field(number, payload)


@functools.lru_cache(maxsize=64)
def _text_cached(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode()) if value else b""


def frame(payload: bytes) -> bytes:
    """`payload` as field 2 (`resources`) of a discovery response, ready to concatenate."""
    return _field(2, payload)


def sotw_framed(version: str, type_url: str, nonce: str, frames: Iterable[bytes]) -> bytes:
    """A DiscoveryResponse from resources already framed by `frame` (see CachedResource)."""
    return sotw_with_body(version, type_url, nonce, b"".join(frames))


def sotw_with_body(version: str, type_url: str, nonce: str, body: bytes) -> bytes:
    """A DiscoveryResponse from framed resources already joined (see response_bodies.py)."""
    return b"".join((_text(1, version), _text(4, type_url), _text(5, nonce), body))


def delta_framed(
    system_version: str, type_url: str, nonce: str, frames: Iterable[bytes], removed: Iterable[str]
) -> bytes:
    """A DeltaDiscoveryResponse from Resource messages already framed by `frame`."""
    head = _text(1, system_version) + _text(4, type_url) + _text(5, nonce)
    return head + b"".join(frames) + b"".join(_field(6, name.encode()) for name in removed)


def delta_with_body(system_version: str, type_url: str, nonce: str, body: bytes) -> bytes:
    """A DeltaDiscoveryResponse from framed Resource messages already joined, nothing removed."""
    return b"".join((_text(1, system_version), _text(4, type_url), _text(5, nonce), body))


def any_bytes(type_url: str, value: bytes) -> bytes:
    """google.protobuf.Any{type_url=1, value=2}."""
    return b"".join((_text_cached(1, type_url), _field(2, value)))


def delta_resource_bytes(name: str, version: str, packed_any: bytes) -> bytes:
    """discovery.v3.Resource{version=1, resource=2, name=3}."""
    return _text(1, version) + _field(2, packed_any) + _text(3, name)


def sotw_response(version: str, type_url: str, nonce: str, resources: Iterable[bytes]) -> bytes:
    """DiscoveryResponse{version_info=1, resources=2 (Any bytes), type_url=4, nonce=5}."""
    head = _text(1, version) + _text(4, type_url) + _text(5, nonce)
    return head + b"".join(_field(2, r) for r in resources)


def delta_response(
    system_version: str,
    type_url: str,
    nonce: str,
    resources: Iterable[bytes],
    removed: Iterable[str],
) -> bytes:
    """DeltaDiscoveryResponse{system_version_info=1, resources=2 (Resource bytes), type_url=4,
    nonce=5, removed_resources=6}."""
    head = _text(1, system_version) + _text(4, type_url) + _text(5, nonce)
    body = b"".join(_field(2, r) for r in resources)
    return head + body + b"".join(_field(6, name.encode()) for name in removed)
