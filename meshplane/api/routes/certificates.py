"""Certificates and the CA: what each identity holds, and rotation of leaves and roots.

Private keys never leave the control plane through this API: responses carry serials, issuers
and validity only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from meshplane.api.deps import AuthorityDep
from meshplane.certs.authority import CaStatus
from meshplane.certs.ca import load_authority
from meshplane.certs.state import Leaf
from meshplane.model import NAME_PATTERN

__all__ = ["router"]

router = APIRouter(tags=["certificates"])


class CertificateOut(BaseModel):
    subject: str = Field(description='"service/<name>" or "gateway/<name>".')
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


class RootOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    serial: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    state: str = Field(description="issuing | incoming | outgoing | retired")
    retire_at: dt.datetime | None


class CaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    phase: str = Field(description="idle | adding-root | reissuing | overlap")
    detail: str
    trust_domain: str
    identity_version: int
    roots: list[RootOut]


class RotateRoot(BaseModel):
    """Rotate to a new root: generated when no certificate is given, else the one supplied."""

    certificate: str | None = Field(None, description="PEM of a root or intermediate CA.")
    private_key: str | None = Field(None, description="PEM of its private key (never returned).")
    chain: str = Field("", description="For an intermediate: PEM chain up to the root.")
    overlap_seconds: float | None = Field(
        None, ge=0, description="How long both roots stay trusted after re-issuing."
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
async def list_certificates(authority: AuthorityDep) -> CertificateList:
    """Every identity's current certificate: serial, issuer, validity and next renewal."""
    return CertificateList(items=[_out(leaf) for leaf in authority.leaves()])


@router.post("/certificates/rotate", response_model=CertificateList)
async def rotate_certificates(body: RotateLeaves, authority: AuthorityDep) -> CertificateList:
    """Issue new leaves now (one identity or all); Envoy swaps them over SDS without restart."""
    if body.all:
        subjects = None
    else:
        subject = f"service/{body.service}" if body.service else f"gateway/{body.gateway}"
        known = {leaf.subject for leaf in authority.leaves()}
        if subject not in known:
            raise HTTPException(404, f"no certificate for {subject} (no proxy of it connected yet)")
        subjects = [subject]
    return CertificateList(items=[_out(leaf) for leaf in await authority.rotate_leaves(subjects)])


@router.get("/ca", response_model=CaOut)
async def ca_status(authority: AuthorityDep) -> CaOut:
    """The trust domain, the roots and their states, and the phase of a root rotation."""
    return _ca(authority.status())


@router.post("/ca/rotate", response_model=CaOut, status_code=202)
async def rotate_root(body: RotateRoot, authority: AuthorityDep) -> CaOut:
    """Start a root rotation; follow its phases with GET /ca (409 if one is under way)."""
    new = None
    if body.certificate or body.private_key:
        if not (body.certificate and body.private_key):
            raise HTTPException(422, "give both certificate and private_key, or neither")
        try:
            new = load_authority(body.certificate, body.private_key, body.chain)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
    overlap = (
        dt.timedelta(seconds=body.overlap_seconds) if body.overlap_seconds is not None else None
    )
    return _ca(await authority.start_root_rotation(new, overlap))


@router.post("/ca/finish", response_model=CaOut)
async def finish_rotation(authority: AuthorityDep) -> CaOut:
    """End the overlap now: the old root leaves the trust bundle (409 if nothing to finish)."""
    return _ca(await authority.finish_rotation())
