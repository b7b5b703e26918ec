"""Incremental (delta) ADS: responses carry only what changed and the names that went away.

Rules (shared/DESIGN.md): subscription changes apply even when the request's nonce is stale; the
first request's initial_resource_versions tell what a reconnecting proxy holds, so only what
differs is sent; `*` (or an empty first subscription for clusters and listeners) is the wildcard;
a resource version the proxy rejected is not sent again; newly subscribed names are answered even
when unchanged, since the proxy does not hold them.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest

from meshplane.xds import wire
from meshplane.xds.resources import CachedResource, placeholder, set_version
from meshplane.xds.response_bodies import ResponseBodies
from meshplane.xds.stream_state import StreamState, TypeRecord
from meshplane.xds.type_urls import ENDPOINT, FULL_STATE

__all__ = ["DeltaState"]

_REMOVAL = ""  # stands for "the removal of this name" among rejected versions


class DeltaState(StreamState):
    """One delta stream."""

    def __init__(self, *, bodies: ResponseBodies | None = None) -> None:
        super().__init__(bodies=bodies)
        self._rejected: dict[str, dict[str, str]] = {}  # type URL -> name -> NACKed version
        self._resend: set[str] = set()  # load assignments to send again (see rewarm)

    def on_request(self, request: DeltaDiscoveryRequest) -> None:
        """Apply one request: initial versions, subscription changes, then ACK/NACK."""
        first = request.type_url not in self.types
        record = self.record(request.type_url)
        if first:
            self._adopt(record, dict(request.initial_resource_versions))
            subscribe = list(request.resource_names_subscribe)
            if record.type_url in FULL_STATE and not subscribe:
                record.wildcard = True  # legacy wildcard: an empty first subscription
        self._subscribe(record, list(request.resource_names_subscribe))
        self._unsubscribe(record, list(request.resource_names_unsubscribe))

        nonce = request.response_nonce
        if not nonce or nonce != record.nonce or not record.pending:
            return
        if request.HasField("error_detail"):
            inflight = record.inflight or {}
            rejected = {n: r.version for n, r in inflight.items() if record.acked.get(n) is not r}
            rejected.update((n, _REMOVAL) for n in record.acked if n not in inflight)
            self._rejected[record.type_url] = rejected
            self.nack(record, request.error_detail.message)
        else:
            self.ack(record)

    def _adopt(self, record: TypeRecord, versions: dict[str, str]) -> None:
        known = self.snapshot.of(record.type_url) if self.snapshot else {}
        acked = dict(record.acked)
        for name, version in versions.items():
            current = known.get(name)
            acked[name] = (
                current
                if current is not None and current.version == version
                else placeholder(record.type_url, name, version)
            )
        record.acked = acked
        record.acked_version = record.sent_version = set_version(record.acked.values())
        record.must_respond = not versions

    def _subscribe(self, record: TypeRecord, names: list[str]) -> None:
        for name in names:
            if name == "*":
                record.wildcard = True
                continue
            record.names.add(name)
            if name not in record.acked:
                record.must_respond = True

    def _unsubscribe(self, record: TypeRecord, names: list[str]) -> None:
        dropped: set[str] = set()
        for name in names:
            if name == "*":
                record.wildcard = False
                continue
            record.names.discard(name)
            if not record.wildcard:
                dropped.add(name)
        if dropped:  # replaced, not changed in place: they may be a snapshot's mappings
            record.acked = _without(record.acked, dropped)
            if record.inflight is not None:
                record.inflight = _without(record.inflight, dropped)

    def respond(self, record: TypeRecord, wanted: Mapping[str, CachedResource]) -> bytes | None:
        assert self.snapshot is not None
        if record.wildcard:
            scoped: Mapping[str, CachedResource] = wanted
            watched = None
        else:
            scoped = {n: wanted[n] for n in record.names if n in wanted}
            watched = record.names
        held = record.acked
        rejected = self._rejected.get(record.type_url, {})
        resend = self._resend if record.type_url == ENDPOINT else set()
        if scoped is held and not resend and not record.must_respond:
            return None  # holds the snapshot's own mapping: nothing to compare
        updates = [
            r
            for name, r in scoped.items()
            if (held.get(name) is None or held[name].version != r.version or name in resend)
            and rejected.get(name) != r.version
        ]
        removed = [
            name
            for name in held
            if name not in scoped
            and (watched is None or name in watched)
            and rejected.get(name) != _REMOVAL
        ]
        if not updates and not removed and not record.must_respond:
            return None
        if record.type_url == ENDPOINT:
            self._resend = set()
        elif rewarm := self.rewarm(record, {r.name: r for r in updates}):
            self._resend |= rewarm
            self.types[ENDPOINT].must_respond = True
        nonce = self.next_nonce()
        record.nonce = nonce
        record.must_respond = False
        whole = self.snapshot.of(record.type_url)
        if not held and scoped is whole and len(updates) == len(whole):
            # A first answer with the whole set (a new proxy): its body is shared.
            version = self.snapshot.versions.get(record.type_url) or set_version(())
            record.inflight = whole
            record.sent_version = version
            body = self.bodies.body(record.type_url, version, whole, _delta_frame, "delta")
            return wire.delta_with_body(str(self.snapshot.revision), record.type_url, nonce, body)
        inflight = dict(held)
        for name in removed:
            del inflight[name]
        for resource in updates:
            inflight[resource.name] = resource
        # All of a wildcard set that nothing rejected: hold the snapshot's mapping itself.
        whole_set = record.wildcard and not rejected and len(inflight) == len(scoped)
        record.inflight = scoped if whole_set else inflight
        record.sent_version = set_version(inflight.values())
        return wire.delta_framed(
            str(self.snapshot.revision),
            record.type_url,
            nonce,
            [r.delta_frame for r in sorted(updates, key=lambda r: r.name)],
            sorted(removed),
        )


def _without(
    resources: Mapping[str, CachedResource], names: set[str]
) -> Mapping[str, CachedResource]:
    if names.isdisjoint(resources):
        return resources
    return {name: r for name, r in resources.items() if name not in names}


def _delta_frame(resource: CachedResource) -> bytes:
    return resource.delta_frame
