"""Small protobuf values several translate modules build the same way.

xds-protos ships no type stubs, so these helpers also keep the untyped constructors behind typed
signatures.
"""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2, config_source_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

__all__ = ["ads_config_source", "duration", "packed", "socket_address"]


def duration(seconds: float) -> duration_pb2.Duration:
    """Convert seconds to a protobuf Duration, exact to the nanosecond (no float drift)."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(seconds * 1_000_000_000))
    return value


def ads_config_source() -> config_source_pb2.ConfigSource:
    """Say "fetch it over the ADS stream you already have", which is how every meshplane proxy
    receives dynamic resources (one stream keeps the make-before-break ordering ours)."""
    return config_source_pb2.ConfigSource.FromString(_ADS_CONFIG_SOURCE)


# Parsed per call rather than built: one of these goes into every cluster and SDS reference, and
# parsing four bytes is several times cheaper than constructing two messages and an enum.
_ADS_CONFIG_SOURCE = config_source_pb2.ConfigSource(
    ads=config_source_pb2.AggregatedConfigSource(),
    resource_api_version=config_source_pb2.ApiVersion.V3,
).SerializeToString()


def packed(message: Message) -> any_pb2.Any:
    """Wrap a typed extension config in an Any, as Envoy's `typed_config` fields expect."""
    # Deterministic bytes: maps inside (RBAC policies, JSON log formats, ...) otherwise come out
    # in a per-process hash order, and an unchanged resource would get a new version after a
    # restart.
    return any_pb2.Any(
        type_url=f"type.googleapis.com/{message.DESCRIPTOR.full_name}",
        value=message.SerializeToString(deterministic=True),
    )


def socket_address(address: str, port: int) -> address_pb2.Address:
    """Address a TCP socket (listeners, endpoints and static hosts all take this shape)."""
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )
