"""Certificates and the CA: what each identity holds, and rotation of leaves and roots.

Private keys never leave the control plane through this API: responses carry serials, issuers
and validity only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from meshplane.api.deps import AdminDep, AuthorityDep, CoreDep, EditorDep, ViewerDep
from meshplane.api.schemas import ErrorOut
from meshplane.certs import MAX_OVERLAP, Authority, CaStatus, UnusableAuthority, load_authority
from meshplane.errors import InvalidRequest
from meshplane.model import NAME_PATTERN, Leaf, Subject

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["certificates"])

_CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorOut, "description": "The CA's state does not allow it now."},
}


class CertificateOut(BaseModel):
    subject: str = Field(description="The identity: 'service/<name>' or 'gateway/<name>'.")
    spiffe_id: str
    serial: str
    issuer_serial: str = Field(description="Serial of the CA certificate that signed it.")
    not_before: dt.datetime
    not_after: dt.datetime
    next_renewal: dt.datetime


class CertificateList(BaseModel):
    items: list[CertificateOut]


class RotateLeaves(BaseModel):
    service: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None
    gateway: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None
    all: bool = False

    @model_validator(mode="after")
    def _one_choice(self) -> RotateLeaves:
        if sum((self.service is not None, self.gateway is not None, self.all)) != 1:
            raise ValueError("give exactly one of 'service', 'gateway' or 'all: true'")
        return self

    def subject(self) -> str | None:
        """The one identity to rotate, as leaves name it; None for all."""
        if self.service is not None:
            return Subject.service(self.service).text
        if self.gateway is not None:
            return Subject.gateway(self.gateway).text
        return None


class RootOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    serial: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    state: str = Field(description="issuing | incoming | outgoing | retired")
    retire_at: dt.datetime | None
    pem: str = Field(
        description="The root certificate (PEM): what clients of a certificate the mesh "
        "issues (a tls-certificate with issuer: mesh) trust, with the other roots not retired."
    )


class CaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    phase: str = Field(description="idle | adding-root | reissuing | overlap | aborting")
    detail: str
    trust_domain: str
    identity_version: int
    roots: list[RootOut]


class RotateRoot(BaseModel):
    """Rotate to a new root: generated when no certificate is given, else the one supplied.

    An imported CA is checked before anything changes: a CA certificate (basicConstraints CA,
    keyCertSign), its private key (ECDSA P-256/P-384/P-521 or RSA of 2048 bits or more), valid now
    and for at least one leaf lifetime, and for an intermediate a chain whose signatures verify up
    to a self-signed root. A certificate without SubjectKeyIdentifier is fine.
    """

    certificate: str | None = Field(None, description="PEM of a root or intermediate CA.")
    private_key: str | None = Field(
        None, description="PEM of its private key, unencrypted (never returned)."
    )
    chain: str = Field(
        "", description="For an intermediate: PEM chain from its issuer up to the root."
    )
    overlap_seconds: float | None = Field(
        None,
        ge=0,
        le=MAX_OVERLAP.total_seconds(),
        allow_inf_nan=False,
        description="How long both roots stay trusted after re-issuing: 0 to "
        f"{MAX_OVERLAP.days} days ({MAX_OVERLAP.total_seconds():.0f} s). The server's setting "
        "(MESHPLANE_CA_OVERLAP_SECONDS) when absent.",
    )


def _out(leaf: Leaf) -> CertificateOut:
    return CertificateOut(
        subject=leaf.subject,
        spiffe_id=leaf.spiffe_id,
        serial=leaf.serial,
        issuer_serial=leaf.issuer_serial,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
        next_renewal=leaf.renew_at,
    )


def _ca(status: CaStatus) -> CaOut:
    return CaOut.model_validate(status, from_attributes=True)


@router.get("/certificates", response_model=CertificateList)
async def list_certificates(
    _caller: ViewerDep, authority: AuthorityDep, core: CoreDep
) -> CertificateList:
    """Every identity's current certificate: serial, issuer, validity and next renewal."""
    return CertificateList(items=[_out(leaf) for leaf in await core.call(authority.leaves)])


@router.post(
    "/certificates/rotate",
    response_model=CertificateList,
    responses={404: {"model": ErrorOut, "description": "No such certificate."}},
)
async def rotate_certificates(
    body: RotateLeaves, caller: EditorDep, authority: AuthorityDep, core: CoreDep
) -> CertificateList:
    """Issue new leaves now (one identity or all); Envoy swaps them over SDS without restart."""
    subject = body.subject()
    if subject is None:
        subjects = None
    else:
        known = {leaf.subject for leaf in await core.call(authority.leaves)}
        if subject not in known:
            raise HTTPException(404, f"no certificate for {subject} (no proxy of it connected yet)")
        subjects = [subject]
    log.info("leaf rotation asked subject=%s by=%s", subject or "all", caller.name)
    rotated = await core.run(lambda: authority.rotate_leaves(subjects))
    return CertificateList(items=[_out(leaf) for leaf in rotated])


@router.get("/ca", response_model=CaOut)
async def ca_status(_caller: ViewerDep, authority: AuthorityDep, core: CoreDep) -> CaOut:
    """The trust domain, the roots and their states, and the phase of a root rotation."""
    return _ca(await core.call(authority.status))


def _imported(body: RotateRoot) -> Authority | None:
    """The CA the body supplies, read from PEM; None when it asks for a generated root."""
    if not (body.certificate or body.private_key or body.chain):
        return None
    both = "give both certificate and private_key, or neither"
    if not body.certificate:
        why = both if body.private_key else "chain goes with a certificate: " + both
        raise InvalidRequest(why, loc=("body", "certificate"))
    if not body.private_key:
        raise InvalidRequest(both, loc=("body", "private_key"))
    return load_authority(body.certificate, body.private_key, body.chain)


@router.post("/ca/rotate", response_model=CaOut, status_code=202, responses=_CONFLICT)
async def rotate_root(
    body: RotateRoot, caller: AdminDep, authority: AuthorityDep, core: CoreDep
) -> CaOut:
    """Start a root rotation; follow its phases with GET /ca.

    422 names the field of an imported CA the mesh cannot use, and why; 409 if a rotation is under
    way, or one stopped on an error (abort or finish it first), or the certificate is already
    trusted.
    """
    overlap = (
        dt.timedelta(seconds=body.overlap_seconds) if body.overlap_seconds is not None else None
    )
    log.info("root rotation asked imported=%s by=%s", body.certificate is not None, caller.name)
    try:
        imported = _imported(body)
        return _ca(await core.run(lambda: authority.start_root_rotation(imported, overlap)))
    except UnusableAuthority as exc:
        raise InvalidRequest(str(exc), loc=("body", exc.field)) from None


@router.post("/ca/finish", response_model=CaOut, responses=_CONFLICT)
async def finish_rotation(caller: AdminDep, authority: AuthorityDep, core: CoreDep) -> CaOut:
    """End the overlap now: the old root leaves the trust bundle once every leaf is re-issued.

    A rotation that stopped on an error goes on from where it stopped. 409 if no rotation is
    waiting to finish (none under way, or it is being aborted).
    """
    log.info("root rotation finish asked by=%s", caller.name)
    return _ca(await core.run(authority.finish_rotation))


@router.post("/ca/abort", response_model=CaOut, responses=_CONFLICT)
async def abort_rotation(caller: AdminDep, authority: AuthorityDep, core: CoreDep) -> CaOut:
    """Abort a root rotation (under way or stopped on an error): go back to the previous root.

    - adding-root: the new root leaves the trust bundle at once (it has signed nothing yet);
      the answer's phase is "idle".
    - reissuing or overlap: the previous root signs again and every leaf is re-issued from it
      while both roots stay trusted (phase "aborting"); once every proxy holds its new leaf, the
      new root leaves the trust bundle ("idle"). No connection fails on the way.

    409 if there is no rotation to abort, an abort is under way, or the previous root can no
    longer sign leaves (expired, or expiring within a leaf lifetime): finish the rotation then.
    """
    log.info("root rotation abort asked by=%s", caller.name)
    return _ca(await core.run(authority.abort_rotation))
