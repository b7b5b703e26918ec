"""State-of-the-world ADS: each response carries the whole set of a type the proxy asked for.

Rules (shared/DESIGN.md, "xDS rules"): a request echoing the nonce of the response in flight is its
ACK, or its NACK when it carries error_detail; a request with an older nonce is ignored; a version
the proxy rejected is not sent again, only a different one; the version is a hash of the content,
so nothing is sent when nothing changed, also across a control-plane restart (the proxy's first
request names the version it holds). Clusters and listeners are wildcard (the response is the full
set, an absent resource is deleted); endpoints, routes and secrets are sent by name, and a
response by name waits while a resource it would carry waits on cold clusters.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest

from meshplane.xds import wire
from meshplane.xds.resources import CachedResource, set_digest, set_version, version_of
from meshplane.xds.response_bodies import ResponseBodies
from meshplane.xds.stream_state import StreamState, TypeRecord
from meshplane.xds.type_urls import ENDPOINT, FULL_STATE

__all__ = ["SotwState"]


class SotwState(StreamState):
    """One state-of-the-world stream."""

    def __init__(self, *, bodies: ResponseBodies | None = None) -> None:
        super().__init__(bodies=bodies)
        self._claimed: dict[str, str] = {}  # type URL -> version a reconnecting proxy holds
        # type URL -> (set version of the snapshot's resources, subscribed names) last found
        # covered: the check is O(resources), and neither side changes between most calls.
        self._covered: dict[str, tuple[str, set[str]]] = {}

    def on_request(self, request: DiscoveryRequest) -> None:
        """Apply one request: subscription changes, then ACK/NACK of the response in flight."""
        record = self.record(request.type_url)
        nonce = request.response_nonce
        if nonce and nonce != record.nonce:
            return  # stale: answers a response that a newer one superseded
        self._subscribe(record, list(request.resource_names))
        if not nonce:
            record.must_respond = True
            if request.version_info:
                self._claimed[record.type_url] = request.version_info
            return
        if not record.pending:
            return  # a subscription change riding on an already-answered nonce
        if request.HasField("error_detail"):
            self.nack(record, request.error_detail.message)
        else:
            self.ack(record)

    def _subscribe(self, record: TypeRecord, names: list[str]) -> None:
        if record.type_url in FULL_STATE:
            record.wildcard = not names or "*" in names
        new = set(names) - {"*"}
        if new - record.names:
            record.must_respond = True  # newly asked names are answered even when unchanged
        if new != record.names:  # an ACK repeats the names: keep the object (see _covers)
            record.names = new

    def _covers(self, record: TypeRecord, version: str) -> bool:
        """Whether the proxy subscribed to every resource of the snapshot's type, whose set
        version is `version` (remembered: `record.names` is replaced, never changed in place,
        when the subscription changes, and the version names the resources' names)."""
        if self._covered.get(record.type_url) == (version, record.names):
            return True
        assert self.snapshot is not None
        if self.snapshot.of(record.type_url).keys() <= record.names:
            self._covered[record.type_url] = (version, record.names)
            return True
        return False

    def respond(self, record: TypeRecord, wanted: Mapping[str, CachedResource]) -> bytes | None:
        assert self.snapshot is not None
        whole = wanted is self.snapshot.of(record.type_url)  # nothing held back by the view
        whole_version = self.snapshot.versions.get(record.type_url) or set_version(())
        if record.wildcard:
            scoped = wanted
            version = whole_version if whole else set_version(wanted.values())
        elif whole and self._covers(record, whole_version):
            # Subscribed to every resource of the type (a gateway's endpoints, typically): the
            # snapshot's precomputed set version applies; no per-stream hashing.
            scoped = wanted
            version = whole_version
        else:
            if (record.names - wanted.keys()) & self.snapshot.of(record.type_url).keys():
                # Asked for, known, but held back until its clusters are warm (see
                # make_before_break). A response without it would tell Envoy it does not exist:
                # a route configuration's listener would start serving with no routes.
                return None
            scoped, unasked = _asked(wanted, record.names)
            if scoped is wanted and whole:
                version = whole_version
            elif whole and unasked is not None:  # most of the snapshot's set: its digest less
                digest = self.snapshot.digests.get(record.type_url, 0)
                version = version_of(digest ^ set_digest(wanted[n] for n in unasked))
            else:
                version = set_version(scoped.values())

        claimed = self._claimed.pop(record.type_url, None)
        if claimed is not None and claimed == version:
            # A reconnecting proxy already holds exactly this: adopt it as ACKed, send nothing.
            record.acked = scoped
            record.sent_version = record.acked_version = version
            record.must_respond = False
            return None
        if not record.must_respond and version == record.sent_version:
            return None  # unchanged, or the version the proxy rejected: never resend it

        if self.rewarm(record, scoped):
            self.types[ENDPOINT].must_respond = True  # the same version again, after these
        nonce = self.next_nonce()
        record.nonce = nonce
        record.inflight = scoped
        record.sent_version = version
        record.must_respond = False
        if scoped is wanted and whole:  # the whole set: its body is shared
            body = self.bodies.body(record.type_url, version, scoped, _sotw_frame, "sotw")
            return wire.sotw_with_body(version, record.type_url, nonce, body)
        return wire.sotw_framed(
            version, record.type_url, nonce, [r.sotw_frame for r in scoped.values()]
        )


def _sotw_frame(resource: CachedResource) -> bytes:
    return resource.sotw_frame


def _asked(
    wanted: Mapping[str, CachedResource], names: set[str]
) -> tuple[Mapping[str, CachedResource], set[str] | None]:
    """The resources of `wanted` that `names` asks for (`wanted` itself when it asks for all),
    and, when most are asked for, the names of those that are not (None otherwise). A gateway
    subscribes to thousands of load assignments by name: set operations and a copy of the
    mapping do in C what a walk of the names did in Python, for every stream on every change."""
    unasked = wanted.keys() - names
    if not unasked:
        return wanted, unasked
    if 2 * len(unasked) < len(wanted):
        scoped = dict(wanted)
        for name in unasked:
            del scoped[name]
        return scoped, unasked
    return {n: wanted[n] for n in sorted(names) if n in wanted}, None
