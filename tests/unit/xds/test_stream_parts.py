"""The parts the registry composes, driven without a server: the stream table, the secret
audit and rotation convergence."""

from __future__ import annotations

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest

from meshplane.model import Proxy, ProxyGroup, Role
from meshplane.xds.convergence import secrets_converged
from meshplane.xds.resources import Snapshot, pack
from meshplane.xds.secret_audit import SecretAudit
from meshplane.xds.sotw import SotwState
from meshplane.xds.streams import StreamTable
from meshplane.xds.translate.transport_sockets import TRUST_SECRET
from meshplane.xds.type_urls import SECRET

_GATEWAY = Proxy("gw-1", ProxyGroup(Role.GATEWAY, gateway="edge"))


def _taking_secrets(identity_version: int, *names: str) -> SotwState:
    """A stream subscribed to `names` of SDS, sent the trust bundle of `identity_version`."""
    state = SotwState()
    trust = pack(SECRET, secret_pb2.Secret(name=TRUST_SECRET))
    state.snapshot = Snapshot.build(1, [trust], identity_version)
    state.on_request(DiscoveryRequest(type_url=SECRET, resource_names=list(names)))
    assert state.responses()
    return state


def _ack(state: SotwState) -> None:
    record = state.types[SECRET]
    state.on_request(
        DiscoveryRequest(
            type_url=SECRET,
            resource_names=sorted(record.names),
            response_nonce=record.nonce,
            version_info=record.sent_version,
        )
    )


def test_the_table_tells_which_nodes_are_connected() -> None:
    table = StreamTable()
    one = table.open(_GATEWAY, "gw-1", "sotw", SotwState())
    two = table.open(_GATEWAY, "gw-1", "delta", SotwState())
    assert (one.stream_id, two.stream_id) == (1, 2)
    table.close(one)
    assert table.connected("gw-1")
    assert table.of_node("gw-1") == [two]
    table.close(two)
    assert not table.connected("gw-1")
    assert list(table) == []


def test_secrets_converge_once_every_stream_acknowledged_the_version() -> None:
    state = _taking_secrets(2, TRUST_SECRET)
    assert secrets_converged([], 2)
    assert not secrets_converged([state], 2)  # in flight
    _ack(state)
    assert secrets_converged([state, SotwState()], 2)  # a stream without SDS does not count
    assert not secrets_converged([state], 3)


def test_the_audit_counts_each_foreign_secret_name_once_per_stream() -> None:
    audit = SecretAudit()
    table = StreamTable()
    state = _taking_secrets(1, TRUST_SECRET, "spiffe://meshplane.local/service/other")
    handle = table.open(_GATEWAY, "gw-1", "sotw", state)
    audit.check(handle)
    audit.check(handle)
    assert audit.denied == 1
    assert handle.denied_secrets == {"spiffe://meshplane.local/service/other"}
