"""Request and response bodies of the REST API.

Resource bodies are built per kind from `meshplane.model.KINDS`, so each kind gets its own named
OpenAPI schema (`ServicePut`, `ServiceOut`, `ServiceList`) with its spec model inside, instead
of one loose `spec: object` for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from meshplane.model import KINDS, Key, Kind, Spec, TlsCertificateSpec
from meshplane.store import Applied, InvalidReport, InvalidResource, Source, StoredResource
from meshplane.xds import GroupPreview

__all__ = [
    "AppliedOut",
    "BatchOut",
    "CertificateDetailsOut",
    "ErrorOut",
    "Health",
    "InvalidOut",
    "InvalidResourceOut",
    "NackOut",
    "ProxyChangesOut",
    "ProxyConfig",
    "ProxyList",
    "ProxyStatusOut",
    "ReplicaList",
    "ReplicaOut",
    "ResourceModels",
    "ResourceOut",
    "ServerInfo",
    "TypeStatusOut",
    "XdsAddress",
    "resource_models",
]


class ErrorOut(BaseModel):
    """Every non-validation error: one human-readable sentence."""

    detail: str


@dataclass(frozen=True, slots=True)
class ResourceModels:
    """The body models of one kind."""

    put: type[BaseModel]
    out: type[BaseModel]
    listing: type[BaseModel]

    def listing_of(
        self,
        stored: list[StoredResource],
        invalid: list[InvalidResource],
        singular: str,
        referrers: Mapping[Key, list[Key]] | None = None,
    ) -> BaseModel:
        """The list body: the resources that validate, and any that no longer do apart."""
        return self.listing(
            items=[self.out_of(r, singular, referrers) for r in stored],
            invalid=[InvalidOut.of(r) for r in invalid] or None,
        )

    def out_of(
        self,
        stored: StoredResource,
        singular: str,
        referrers: Mapping[Key, list[Key]] | None = None,
    ) -> BaseModel:
        """The response body for one stored resource: its fields, the kind in the singular,
        and for a certificate what it is and who uses it (from `referrers`)."""
        body = self.out.model_validate(replace(stored, kind=singular), from_attributes=True)
        if isinstance(stored.spec, TlsCertificateSpec):
            users = (referrers or {}).get((stored.kind, stored.name), [])
            details = CertificateDetailsOut.of(stored.spec, [n for _, n in users])
            body = body.model_copy(update={"details": details})
        return body


class InvalidOut(BaseModel):
    """A stored resource whose spec no longer validates (from an older version, a hand edit)."""

    name: str
    version: int = Field(description="The revision that wrote it; also its ETag.")
    reason: str = Field(description="Why it does not validate (the first problems, shortened).")

    @classmethod
    def of(cls, resource: InvalidResource) -> InvalidOut:
        return cls(name=resource.name, version=resource.version, reason=resource.reason)


class InvalidResourceOut(InvalidOut):
    """A stored resource that no longer validates, and what it keeps out of the translation."""

    kind: str = Field(description="The singular kind.")
    left_out: list[str] = Field(
        description="Resources that refer to it, so are not sent to proxies either "
        "('route/web', ...)."
    )

    @classmethod
    def of_report(cls, report: InvalidReport) -> InvalidResourceOut:
        resource = report.resource
        return cls(
            kind=_singular(resource.kind),
            name=resource.name,
            version=resource.version,
            reason=resource.reason,
            left_out=[f"{_singular(k)}/{n}" for k, n in report.left_out],
        )


def _singular(plural: str) -> str:
    kind = KINDS.get(plural)
    return kind.singular if kind else plural


class ResourceOut(BaseModel):
    """Fields every kind's response has; `kind` and `spec` are narrowed per kind."""

    kind: str = Field(description="The singular kind.")
    name: str
    spec: Spec = Field(description="The spec in canonical form (defaults filled in).")
    version: int = Field(description="The mesh revision that last wrote it; also its ETag.")
    source: Source = Field(description="'auto' when a connecting sidecar registered it.")
    created_at: datetime
    updated_at: datetime
    updated_by: str | None = Field(
        None,
        description="Who last wrote it: the API token's name, or 'auto' (a connecting sidecar).",
    )


class CertificateDetailsOut(BaseModel):
    """What a certificate is, read from its leaf, and the gateways presenting it."""

    subject: str
    dns_names: list[str] = Field(description="The hosts it serves (SNI picks it by these).")
    issuer: str
    serial: str = Field(description="Hexadecimal.")
    not_before: datetime
    not_after: datetime
    fingerprint: str = Field(description="SHA-256 of the certificate (DER), hexadecimal.")
    renews_at: datetime | None = Field(
        description="When the mesh CA renews it (issuer mesh); left out for a certificate "
        "operators bring, which they replace before `not_after`."
    )
    used_by: list[str] = Field(description="The gateways that present it.")

    @classmethod
    def of(cls, spec: TlsCertificateSpec, used_by: list[str]) -> CertificateDetailsOut:
        return cls(**asdict(spec.info), renews_at=spec.renews_at, used_by=used_by)


def resource_models(kind: Kind) -> ResourceModels:
    """Build the put, out and list body models of `kind`."""
    title = kind.singular.capitalize()
    put = create_model(
        f"{title}Put",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"The desired state of a {kind.singular}.",
        spec=(kind.spec, Field(description=f"The {kind.singular}'s spec.")),
    )
    singular: Any = Literal[kind.singular]  # a one-value enum in the OpenAPI schema
    out = create_model(
        f"{title}Out",
        __base__=ResourceOut,
        __doc__=f"A stored {kind.singular}.",
        kind=(singular, Field(description="The singular kind.")),
        spec=(kind.spec, Field(description="The spec in canonical form (defaults filled in).")),
        **_details(kind),
    )
    listing = create_model(
        f"{title}List",
        items=(list[out], Field(description="Every one whose stored spec validates, by name.")),
        invalid=(
            list[InvalidOut] | None,
            Field(
                None,
                description="Those stored whose spec no longer validates (absent when none): "
                "left out of `items` and of what proxies are sent; PUT or DELETE fixes them.",
            ),
        ),
    )
    return ResourceModels(put=put, out=out, listing=listing)


def _details(kind: Kind) -> dict[str, Any]:
    """The out model's extra field for kinds that have one: a certificate's details."""
    if kind.spec is not TlsCertificateSpec:
        return {}
    about = "What the certificate is and who presents it (its private key is never shown)."
    return {"details": (CertificateDetailsOut | None, Field(None, description=about))}


class NackOut(BaseModel):
    """Envoy rejected `version` with `error`."""

    model_config = ConfigDict(from_attributes=True)

    version: str
    error: str
    at: datetime


class TypeStatusOut(BaseModel):
    """Where one resource type stands on one stream."""

    model_config = ConfigDict(from_attributes=True)

    type: str = Field(description="clusters, endpoints, listeners, routes or secrets.")
    sent_version: str | None
    acked_version: str | None
    resources: int = Field(description="How many resources of this type the proxy holds.")
    last_nack: NackOut | None


class ProxyStatusOut(BaseModel):
    """One connected xDS stream."""

    model_config = ConfigDict(from_attributes=True)

    node_id: str
    role: str | None = Field(description="gateway, sidecar, or null for a foreign node.")
    gateway: str | None
    service: str | None
    address: str | None
    transport: str = Field(description="sotw (state of the world) or delta.")
    stream_id: int
    connected_since: datetime
    types: list[TypeStatusOut]
    denied_secrets: int = Field(
        0, description="Secret names it asked for that are not its own (never served)."
    )
    revision: int | None = Field(
        None,
        description="The mesh revision whose configuration it holds whole: everything sent "
        "was ACKed (a NACK leaves it at the one before). None while it takes its first.",
    )
    replica: str | None = Field(
        None,
        description="The replica holding the stream (see GET /api/v1/replicas). Another "
        "replica's streams are as it last wrote them, at most a few seconds old.",
    )


def proxy_json(status: object) -> dict[str, Any]:
    """One stream's status (an xDS ProxyStatus) as the API shows it, for the other replicas
    to list (meshplane.store.proxy_views)."""
    return ProxyStatusOut.model_validate(status, from_attributes=True).model_dump(
        mode="json", exclude={"replica"}
    )


class ProxyList(BaseModel):
    items: list[ProxyStatusOut]


class XdsAddress(BaseModel):
    host: str = Field(description="The address generated bootstraps point Envoy at.")
    port: int


class ReplicaOut(BaseModel):
    """One live `meshplane serve` on this mesh's database."""

    id: str
    xds: XdsAddress = Field(description="Where its proxies reach it (bootstraps name every one).")
    api_url: str
    started_at: datetime
    heartbeat_at: datetime = Field(description="Its last heartbeat (every 2 s; dead after 10 s).")
    this: bool = Field(description="Whether it is the replica that answered.")
    leader: bool = Field(
        description="Whether it runs the singleton jobs (certificate renewals, root rotation "
        "steps): the replica holding the leader's lock; another takes over within seconds."
    )
    identity_generation: int | None = Field(
        description="The certificate authority's generation that every proxy of this replica "
        "holds (a root rotation step waits for every replica); null until it reported."
    )


class ReplicaList(BaseModel):
    items: list[ReplicaOut]


class ServerInfo(BaseModel):
    version: str = Field(description="meshplane's version.")
    revision: int = Field(description="The revision of the newest committed write.")
    database: Literal["reachable", "unreachable"] = Field(
        description="Whether the database answered; while it does not, `revision` is the newest "
        "this process knows of, and calls that need the database answer 503."
    )
    xds: XdsAddress
    invalid_resources: list[InvalidResourceOut] = Field(
        default_factory=list,
        description="Stored resources whose spec no longer validates (from an older version, "
        "a hand edit): not sent to proxies, with whatever refers to them, until a PUT of a "
        "valid spec or a DELETE fixes them. Empty when all is well.",
    )


class Health(BaseModel):
    status: Literal["alive", "ready"] = Field(description="What the check found.")


ProxyConfig = dict[str, list[dict[str, Any]]]


class AppliedOut(BaseModel):
    """What a batch (apply, rollback) did, or would do, to one resource."""

    kind: str = Field(description="The kind, plural.")
    name: str
    outcome: Literal["created", "configured", "unchanged", "deleted"]
    version: int = Field(description="Its version now: the batch's revision unless unchanged.")
    before: dict[str, Any] | None = Field(
        None, description="Dry run only: the stored spec it replaces or deletes (None: none)."
    )
    after: dict[str, Any] | None = Field(
        None, description="Dry run only: the spec it would store (None: deleted)."
    )

    @classmethod
    def of(cls, applied: Applied, *, dry_run: bool) -> AppliedOut:
        a = applied
        out = cls(kind=a.kind, name=a.name, outcome=a.outcome, version=a.version)
        if dry_run and applied.outcome != "unchanged":
            out.before, out.after = applied.before, applied.after
        return out


class ResourceChangesOut(BaseModel):
    added: list[str]
    changed: list[str]
    removed: list[str]


class ProxyChangesOut(BaseModel):
    """What a batch would change on the proxies of one group (those that get the same
    configuration): by resource type (clusters, endpoints, listeners, routes, secrets)."""

    role: str
    gateway: str | None
    service: str | None
    zone: str | None
    nodes: list[str] = Field(description="The node ids of its connected proxies.")
    changes: dict[str, ResourceChangesOut]
    envoy_error: str | None = Field(
        None,
        description="With validate_envoy: why `envoy --mode validate` refuses what the group "
        "would be sent (None: it takes it).",
    )

    @classmethod
    def of(cls, preview: GroupPreview) -> ProxyChangesOut:
        group = preview.group
        return cls(
            role=group.role.value,
            gateway=group.gateway,
            service=group.service,
            zone=group.zone,
            nodes=preview.nodes,
            envoy_error=preview.envoy_error,
            changes={
                t: ResourceChangesOut(added=c.added, changed=c.changed, removed=c.removed)
                for t, c in preview.changes.items()
            },
        )


class BatchOut(BaseModel):
    revision: int = Field(
        description="The mesh's revision after the batch (for a dry run: the one it would "
        "make, or the current one if it changes nothing)."
    )
    dry_run: bool = Field(False, description="True: nothing was written.")
    documents: list[AppliedOut] = Field(
        description="One per document, in their order, then one per deleted resource."
    )
    proxies: list[ProxyChangesOut] | None = Field(
        None,
        description="Dry run only: per group of connected proxies the batch would change "
        "something for, the Envoy resources it would add, change and remove.",
    )
