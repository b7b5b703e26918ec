"""Per-stream, per-type record of what a proxy was sent, ACKed and NACKed.

State lives with the stream, not the node: one client may open several streams with the same node
id. Protocol loops (sotw.py, delta.py) feed requests and snapshots in and take encoded responses
out; nothing here does I/O, so the state machines are driven directly in unit tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from meshplane.xds.make_before_break import desired_view
from meshplane.xds.resources import CachedResource, Snapshot
from meshplane.xds.response_bodies import ResponseBodies
from meshplane.xds.status import NackRecord, TypeStatus
from meshplane.xds.type_urls import CLUSTER, ENDPOINT, PUSH_ORDER, SHORT_NAMES

__all__ = ["StreamState", "TypeRecord", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TypeRecord:
    """One resource type on one stream.

    `acked`: what the proxy confirmed holding. `inflight`: what it will hold once the response in
    flight applies (None when nothing is in flight); one response per type is in flight at a time,
    which makes every step's effect on the proxy known before the next step is chosen. Both are
    replaced, never changed in place, so either may be a snapshot's own mapping: a stream that
    holds the current one is known to by identity (see make_before_break).
    """

    type_url: str
    wildcard: bool = False
    names: set[str] = field(default_factory=set)
    acked: Mapping[str, CachedResource] = field(default_factory=dict)
    inflight: Mapping[str, CachedResource] | None = None
    nonce: str | None = None
    sent_version: str | None = None
    acked_version: str | None = None
    last_nack: NackRecord | None = None
    must_respond: bool = True  # the client asked for something it has not been answered on

    @property
    def pending(self) -> bool:
        return self.inflight is not None

    @property
    def coming(self) -> Mapping[str, CachedResource]:
        return self.acked if self.inflight is None else self.inflight

    def status(self) -> TypeStatus:
        return TypeStatus(
            type=SHORT_NAMES.get(self.type_url, self.type_url),
            sent_version=self.sent_version,
            acked_version=self.acked_version,
            resources=len(self.acked),
            last_nack=self.last_nack,
        )


class StreamState:
    """What both protocols share: the type records, the snapshot, nonces, and the push order."""

    def __init__(
        self, clock: Callable[[], datetime] = utc_now, *, bodies: ResponseBodies | None = None
    ) -> None:
        self.types: dict[str, TypeRecord] = {}
        self.snapshot: Snapshot | None = None
        # The revision of the last snapshot the proxy held whole (see `settle`); None before.
        self.holds_revision: int | None = None
        self._clock = clock
        self._nonces = itertools.count(1)
        # Whole-set response bodies: the server's, shared by its streams; else this stream's
        # own, which keeps none (every body joined for its response alone, the same bytes).
        self.bodies = bodies if bodies is not None else ResponseBodies(max_bytes=0)

    def record(self, type_url: str) -> TypeRecord:
        record = self.types.get(type_url)
        if record is None:
            record = self.types[type_url] = TypeRecord(type_url)
        return record

    def next_nonce(self) -> str:
        return str(next(self._nonces))

    def nack(self, record: TypeRecord, message: str) -> None:
        """The proxy rejected what is in flight: it keeps `acked`; remember why, do not retry it."""
        record.last_nack = NackRecord(record.sent_version or "", message, self._clock())
        record.inflight = None

    def ack(self, record: TypeRecord) -> None:
        if record.inflight is not None:
            record.acked = record.inflight
            record.acked_version = record.sent_version
            record.inflight = None

    def view(self) -> dict[str, Mapping[str, CachedResource]]:
        """Where every type may go in the next step (see make_before_break)."""
        assert self.snapshot is not None
        acked = {t: r.acked for t, r in self.types.items()}
        coming = {t: r.coming for t, r in self.types.items()}
        return desired_view(self.snapshot, acked, coming)

    def responses(self) -> list[bytes]:
        """Encoded responses to send now, in push order; empty when the proxy is up to date."""
        return [data for _, data in self.typed_responses()]

    @property
    def idle(self) -> bool:
        """Nothing in flight: every response sent so far has been answered."""
        return not any(record.pending for record in self.types.values())

    def settle(self) -> None:
        """Call once nothing more is due: if every response was answered and none refused,
        the proxy holds the current snapshot (`holds_revision`), which `meshplane apply
        --wait` waits for. A NACK leaves it at the revision it held before."""
        if self.snapshot is not None and all(
            not r.pending and r.sent_version == r.acked_version for r in self.types.values()
        ):
            self.holds_revision = self.snapshot.revision

    def typed_responses(self) -> list[tuple[str, bytes]]:
        """`responses`, each with its type URL (for counting pushes by type)."""
        if self.snapshot is None:
            return []
        view: dict[str, Mapping[str, CachedResource]] | None = None
        out: list[tuple[str, bytes]] = []
        for type_url in PUSH_ORDER:
            record = self.types.get(type_url)
            if record is None or record.pending:
                continue
            if view is None:
                view = self.view()
            response = self.respond(record, view.get(type_url, {}))
            if response is not None:
                out.append((type_url, response))
                # What was just sent changes what may follow (e.g. kept clusters).
                view = None
        return out

    def respond(self, record: TypeRecord, wanted: Mapping[str, CachedResource]) -> bytes | None:
        """Protocol-specific: the response that moves `record` toward `wanted`, if any."""
        raise NotImplementedError

    def rewarm(self, record: TypeRecord, sent: Mapping[str, CachedResource]) -> set[str]:
        """Load assignments to send again after clusters `sent` (a response for `record`).

        Envoy warms an updated EDS cluster like a new one: it waits for its load assignment
        even when that did not change, and does not ask again for a name it already watches.
        Unanswered, the update waits for the cluster's initial fetch timeout (15 s by default).
        Returns the names of the changed clusters' load assignments the proxy subscribes to.
        """
        if record.type_url != CLUSTER:
            return set()
        endpoints = self.types.get(ENDPOINT)
        held = record.acked
        if endpoints is None or not held:  # a proxy's first clusters: it asks for endpoints
            return set()
        names = {
            dep
            for name, resource in sent.items()
            if (old := held.get(name)) is not None and old.version != resource.version
            for dep in resource.warm_deps
        }
        return names if endpoints.wildcard else names & endpoints.names

    def statuses(self) -> list[TypeStatus]:
        return [self.types[t].status() for t in PUSH_ORDER if t in self.types]
