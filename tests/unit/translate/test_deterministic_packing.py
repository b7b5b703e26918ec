"""Typed configs pack to the same bytes whatever order their maps were filled in.

Resource versions are content hashes: if a nested map (RBAC policies, a JSON log format) packed in
hash order, an unchanged listener would get a new version after a control-plane restart and every
Envoy would be pushed the same config again.
"""

from __future__ import annotations

from google.protobuf import struct_pb2

from meshplane.xds.translate.proto_values import packed


def test_map_order_does_not_change_the_bytes() -> None:
    keys = [f"field_{i}" for i in range(50)]
    forward, backward = struct_pb2.Struct(), struct_pb2.Struct()
    for key in keys:
        forward.fields[key].string_value = key
    for key in reversed(keys):
        backward.fields[key].string_value = key
    assert packed(forward).value == packed(backward).value
    assert packed(forward).type_url == "type.googleapis.com/google.protobuf.Struct"
