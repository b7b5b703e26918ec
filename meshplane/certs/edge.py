"""Edge certificates the mesh issues: `tls-certificates` with `issuer: mesh`.

A write names the hostnames only; before it reaches the store the control plane fills in the
certificate, from the mesh CA's issuing root, and its key (which the store seals like any edge
key). A write that asks again for the same hostnames keeps the certificate stored while it is
not due, so applying the same file twice changes nothing. One is due when two thirds of its
lifetime have passed, or when the root that signed it no longer issues: a root rotation has
promoted a new one, and the old one leaves the trust bundle at the end of the overlap, so the
certificate must be signed by the new root before then. The leader renews what is due
(`EdgeRenewals`: every few minutes, and at once when the issuing root changes), as a write of
its own that proxies pick up over SDS like any replaced certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from pydantic import SecretStr

from meshplane.certs.authority import CertificateAuthority
from meshplane.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from meshplane.model import IdentityState, Spec, TlsCertificateSpec
from meshplane.store import Store

__all__ = ["RENEWED_BY", "EdgeRenewals", "issued_spec", "renew_edge_certificates", "spec_to_store"]

log = logging.getLogger(__name__)

RENEWED_BY = "mesh-ca"  # who the change log says renewed a certificate
_KIND = "tls-certificates"


async def issued_spec(
    spec: Spec,
    stored: Spec | None,
    authority: CertificateAuthority | None,
    now: dt.datetime,
    loc: tuple[str | int, ...] = ("body", "spec", "issuer"),
) -> Spec:
    """`spec` as it is to be stored: a certificate for the mesh to issue gets the stored one
    while that serves the same hostnames and is not due for renewal, else a new one with its
    key. Any other spec comes back as it is. InvalidRequest at `loc` without a CA."""
    if not _to_issue(spec):
        return spec
    assert isinstance(spec, TlsCertificateSpec)
    if (
        isinstance(stored, TlsCertificateSpec)
        and stored.issuer == "mesh"
        and stored.issued
        and set(stored.hostnames) == set(spec.hostnames)
        and not _due(stored, authority, now)
    ):
        return spec.model_copy(update={"certificate": stored.certificate})
    if authority is None:
        raise InvalidRequest("this control plane runs without a certificate authority", loc)
    made = await authority.issue_edge(spec.hostnames)
    return spec.model_copy(
        update={
            "certificate": made.cert_chain_pem,
            "private_key": SecretStr(made.key_pem.decode()),
        }
    )


async def spec_to_store(
    store: Store,
    authority: CertificateAuthority | None,
    name: str,
    spec: Spec,
    loc: tuple[str | int, ...] = ("body", "spec", "issuer"),
) -> Spec:
    """What a write of `spec` as `name` stores (see `issued_spec`): the stored certificate is
    read only for one the mesh is to issue."""
    if not _to_issue(spec):
        return spec
    return await issued_spec(spec, await _stored(store, name), authority, _now(), loc)


async def _stored(store: Store, name: str) -> Spec | None:
    """The certificate stored under `name`, if any (and valid)."""
    try:
        return (await store.get(_KIND, name)).spec
    except NotFound:
        return None


def _to_issue(spec: Spec) -> bool:
    return isinstance(spec, TlsCertificateSpec) and spec.issuer == "mesh" and not spec.issued


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def renew_edge_certificates(
    store: Store, authority: CertificateAuthority, now: dt.datetime
) -> list[str]:
    """Re-issue every certificate the mesh issued that is due (see `_due`); the names
    renewed. A renewal that lost a race with another write is left for the next round."""
    renewed = []
    for stored in await store.list(_KIND):
        spec = stored.spec
        if not isinstance(spec, TlsCertificateSpec) or spec.issuer != "mesh" or not spec.issued:
            continue
        if not _due(spec, authority, now):
            continue
        asked = TlsCertificateSpec(issuer="mesh", hostnames=spec.hostnames)
        fresh = await issued_spec(asked, None, authority, now)
        try:
            await store.put(
                _KIND,
                stored.name,
                fresh,
                if_match=stored.version,
                by=RENEWED_BY,
                message="renewed by the mesh CA",
            )
        except (PreconditionFailed, Conflict):
            continue
        renewed.append(stored.name)
        log.info("renewed edge certificate name=%s", stored.name)
    return renewed


def _due(
    spec: TlsCertificateSpec, authority: CertificateAuthority | None, now: dt.datetime
) -> bool:
    """Whether the mesh CA issues `spec`'s certificate again now: past two thirds of its
    lifetime, or signed by a root that no longer issues (known only with the CA at hand)."""
    assert spec.certificate is not None
    if spec.renewal_due(now):
        return True
    return authority is not None and not authority.issues_now(spec.certificate)


class EdgeRenewals:
    """The leader's job renewing what the mesh issued: every `every` seconds, and at once when
    the issuing root changes (a rotation promoted a new root, or an abort went back), so that
    a certificate is signed by the new root well before the old one leaves the trust bundle,
    however short the rotation's overlap. Make one per control plane (it listens to the CA
    from then on); `run` it while this replica leads."""

    def __init__(
        self,
        store: Store,
        authority: CertificateAuthority,
        every: float,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._store = store
        self._authority = authority
        self._every = every
        self._clock = clock
        self._issuing = authority.issuing_serial()
        self._root_changed = asyncio.Event()
        authority.subscribe(self._heard)

    def _heard(self, _state: IdentityState) -> None:
        serial = self._authority.issuing_serial()
        if serial != self._issuing:
            self._issuing = serial
            self._root_changed.set()

    async def run(self) -> None:
        """Renew what is due, then again at the next turn or root change, until cancelled; a
        failed round (the database away: the store reports it) waits for the next."""
        while True:
            try:
                await renew_edge_certificates(self._store, self._authority, self._clock())
            except Exception as exc:
                log.debug("edge renewals failed error=%s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._root_changed.wait(), self._every)
            self._root_changed.clear()
