"""Whether every proxy holds the secrets of an identity version: what a CA rotation waits on.

A root rotation moves in steps (certs/authority.py); each step may start only once every proxy
that takes secrets has acknowledged those of the previous step, or a proxy would meet a peer's
certificate it cannot verify yet. Read from the stream table: a stream converged when its
snapshot is of at least that identity version, nothing of SDS is in flight, and each secret it
subscribes to is acknowledged at the snapshot's version.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshplane.xds.stream_state import StreamState
from meshplane.xds.type_urls import SECRET

__all__ = ["secrets_converged"]


def secrets_converged(states: Iterable[StreamState], identity_version: int) -> bool:
    """True when every stream that takes secrets holds those of at least `identity_version`."""
    for state in states:
        record = state.types.get(SECRET)
        if record is None or state.snapshot is None:
            continue
        if state.snapshot.identity_version < identity_version or record.pending:
            return False
        wanted = state.snapshot.of(SECRET)
        for name in record.names:
            want, have = wanted.get(name), record.acked.get(name)
            if want is not None and (have is None or have.version != want.version):
                return False
    return True
