"""Identities in the mesh: who a proxy speaks for, written one way everywhere.

A subject is a kind and a name: "service/orders", "gateway/edge", or the control plane's own
"control-plane/xds". Its text is what certificates, node tokens and the store key identities by;
its SPIFFE ID (spiffe://<trust domain>/<kind>/<name>) is what peers verify. Only this module
formats or parses either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from meshplane.model.names import NAME_PATTERN

__all__ = ["API_SERVER", "XDS_SERVER", "Subject", "SubjectKind"]

SubjectKind = Literal["service", "gateway", "control-plane"]
_KINDS: tuple[str, ...] = get_args(SubjectKind)
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True, order=True)
class Subject:
    """One identity: a service's sidecars, a gateway, or the control plane."""

    kind: SubjectKind
    name: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"{self.kind!r} is not a kind of identity ({', '.join(_KINDS)})")
        if not _NAME.match(self.name) or len(self.name) > 63:
            raise ValueError(f"{self.name[:70]!r} is not a valid name (pattern {NAME_PATTERN})")

    @classmethod
    def service(cls, name: str) -> Subject:
        return cls("service", name)

    @classmethod
    def gateway(cls, name: str) -> Subject:
        return cls("gateway", name)

    @classmethod
    def parse(cls, text: str) -> Subject:
        """Read "service/orders" back; ValueError for anything that is not a subject."""
        kind, sep, name = text.partition("/")
        if not sep or kind not in _KINDS:
            raise ValueError(
                f"{text[:70]!r} is not an identity ('service/<name>', 'gateway/<name>')"
            )
        return cls(kind, name)  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """ "service/orders": how certificates, node tokens and the store name it."""
        return f"{self.kind}/{self.name}"

    def spiffe_id(self, trust_domain: str) -> str:
        """spiffe://<trust domain>/service/orders: the URI SAN peers verify."""
        return f"spiffe://{trust_domain}/{self.text}"

    def __str__(self) -> str:
        return self.text


# The control plane's own identities: in the xDS server's certificate (when xDS serves TLS) and
# in the REST API's (with --api-tls).
XDS_SERVER = Subject("control-plane", "xds")
API_SERVER = Subject("control-plane", "api")
