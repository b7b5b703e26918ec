"""Edge certificates' private keys: sealed with the control plane's secret, kept by fingerprint.

A `tls-certificates` spec carries its key only on the way in (`private_key`, never dumped). The
store seals it (`sealed_keys`), and in the write's transaction, for each certificate written,
keeps the sealed key under the certificate's fingerprint, or finds one kept before when the
write leaves the key out; a certificate already expired, or with no key anywhere, is refused
naming the field. The xDS side reads keys back opened (`open_keys`), only for the certificates
its gateways present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from meshplane.errors import InvalidMesh
from meshplane.model import Spec, TlsCertificateSpec
from meshplane.store.tables import EdgeKeyRow

__all__ = ["KeySealer", "keep_edge_key", "keyless", "open_keys", "sealed_keys"]


class KeySealer(Protocol):
    """Encrypts keys for the database (the CA's SecretBox)."""

    def seal(self, plaintext: bytes) -> bytes: ...

    def open(self, sealed: bytes) -> bytes: ...


def sealed_keys(specs: Iterable[Spec], sealer: KeySealer | None) -> dict[str, bytes]:
    """The keys the certificates among `specs` carry, sealed, by certificate fingerprint."""
    sealed = {}
    for spec in specs:
        if isinstance(spec, TlsCertificateSpec) and spec.private_key is not None:
            if sealer is None:
                raise InvalidMesh(
                    "this control plane has no secret key to seal private keys with",
                    field="private_key",
                )
            key = spec.private_key.get_secret_value().encode()
            sealed[spec.info.fingerprint] = sealer.seal(key)
    return sealed


def keyless(spec: Spec) -> Spec:
    """`spec` without the key it carried in (once sealed): what the resource, the change feed
    and the mesh hold, so the plaintext key lives no longer than the write."""
    if isinstance(spec, TlsCertificateSpec) and spec.private_key is not None:
        return spec.model_copy(update={"private_key": None})
    return spec


def keep_edge_key(
    connection: Connection, spec: TlsCertificateSpec, sealed: Mapping[str, bytes], now: datetime
) -> None:
    """In a certificate write's transaction: refuse an expired certificate, and keep its sealed
    key (from `sealed`), or make sure one was kept before."""
    if not spec.issued:
        raise InvalidMesh(
            "the mesh CA has not issued it: write it through the API, which asks the CA",
            field="certificate",
        )
    info = spec.info
    if info.expired(now):
        raise InvalidMesh(
            f"the certificate expired at {info.not_after.isoformat()}", field="certificate"
        )
    key = sealed.get(info.fingerprint)
    if key is None:
        if not _known(connection, info.fingerprint):
            raise InvalidMesh(
                "required: no key was stored for this certificate before", field="private_key"
            )
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    values = {"fingerprint": info.fingerprint, "key_sealed": key, "created_at": now}
    connection.execute(dialect.insert(EdgeKeyRow).values(values).on_conflict_do_nothing())


def _known(connection: Connection, fingerprint: str) -> bool:
    found = connection.execute(
        select(EdgeKeyRow.fingerprint).where(EdgeKeyRow.fingerprint == fingerprint)
    )
    return found.first() is not None


def open_keys(
    connection: Connection, fingerprints: Iterable[str], sealer: KeySealer
) -> dict[str, bytes]:
    """The keys of the certificates with these fingerprints (PEM), opened; missing ones left out."""
    wanted = sorted(set(fingerprints))
    if not wanted:
        return {}
    rows = connection.execute(
        select(EdgeKeyRow.fingerprint, EdgeKeyRow.key_sealed).where(
            EdgeKeyRow.fingerprint.in_(wanted)
        )
    )
    return {fingerprint: sealer.open(sealed) for fingerprint, sealed in rows}
