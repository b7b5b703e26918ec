"""Edge certificates the mesh issues: `tls-certificates` with `issuer: mesh`.

A write names the hostnames only; before it reaches the store the control plane fills in the
certificate, from the mesh CA's issuing root, and its key (which the store seals like any edge
key). A write that asks again for the same hostnames keeps the certificate stored while it is
not due, so applying the same file twice changes nothing. The leader renews each one when two
thirds of its lifetime have passed (`renew_edge_certificates`), as a write of its own that
proxies pick up over SDS like any replaced certificate.
"""

from __future__ import annotations

import datetime as dt
import logging

from pydantic import SecretStr

from meshplane.certs.authority import CertificateAuthority
from meshplane.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from meshplane.model import Spec, TlsCertificateSpec
from meshplane.store import Store

__all__ = ["RENEWED_BY", "issued_spec", "renew_edge_certificates", "stored_spec"]

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
    if not isinstance(spec, TlsCertificateSpec) or spec.issuer != "mesh" or spec.issued:
        return spec
    if (
        isinstance(stored, TlsCertificateSpec)
        and stored.issuer == "mesh"
        and stored.issued
        and set(stored.hostnames) == set(spec.hostnames)
        and not stored.renewal_due(now)
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


async def stored_spec(store: Store, name: str) -> Spec | None:
    """The certificate stored under `name`, if any (and valid)."""
    try:
        return (await store.get(_KIND, name)).spec
    except NotFound:
        return None


async def renew_edge_certificates(
    store: Store, authority: CertificateAuthority, now: dt.datetime
) -> list[str]:
    """Re-issue every certificate the mesh issued that is due; the names renewed. A renewal
    that lost a race with another write is left for the next round."""
    renewed = []
    for stored in await store.list(_KIND):
        spec = stored.spec
        if not isinstance(spec, TlsCertificateSpec) or spec.issuer != "mesh" or not spec.issued:
            continue
        if not spec.renewal_due(now):
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
