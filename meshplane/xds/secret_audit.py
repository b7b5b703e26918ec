"""The secret-name audit: a proxy asking for secrets that are not its own is logged and counted.

A proxy's own secrets have fixed names (its identity may just not be issued yet); any other name,
such as another service's SPIFFE ID, is an attempt to get what is not its. Such a name is never
served (translation builds a group only its own secrets, shared/DESIGN.md "SDS must give a node
only its own identity's key"); the audit makes the attempt visible, once per name and stream.
"""

from __future__ import annotations

import logging

from meshplane.metrics import Metrics
from meshplane.xds.streams import StreamHandle
from meshplane.xds.translate import OWN_SECRETS
from meshplane.xds.type_urls import SECRET

__all__ = ["SecretAudit"]

log = logging.getLogger(__name__)


class SecretAudit:
    """Counts (and logs) the secret names streams ask for that are not their proxy's own."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self.denied = 0  # names asked for that are not the proxy's own, over all streams

    def check(self, handle: StreamHandle) -> None:
        """Log and count the new names among those the stream subscribes to as secrets."""
        record = handle.state.types.get(SECRET)
        if record is None or handle.state.snapshot is None:
            return
        given = handle.state.snapshot.resources.get(SECRET, {}).keys()  # an https gateway's too
        for name in sorted(record.names - OWN_SECRETS - given - handle.denied_secrets):
            handle.denied_secrets.add(name)
            self.denied += 1
            if self._metrics is not None:
                self._metrics.denied_secrets.inc()
            log.warning(
                "secret denied node=%s stream=%d subject=%s name=%s",
                handle.node_id,
                handle.stream_id,
                handle.proxy.subject if handle.proxy else None,
                name,
            )
