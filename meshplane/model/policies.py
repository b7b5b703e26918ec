"""Mesh-wide settings and authorization policies: who may call whom, and how strictly."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meshplane.model.choices import exactly_one_of
from meshplane.model.names import Name
from meshplane.model.specs import Method, Path, Spec
from meshplane.model.telemetry import Telemetry

__all__ = ["MESH_SETTINGS_NAME", "AuthorizationPolicySpec", "Caller", "MeshSettingsSpec"]

# The one mesh-settings resource there is: `meshes/default`.
MESH_SETTINGS_NAME = "default"


class MeshSettingsSpec(Spec):
    """Settings for the whole mesh (the resource `meshes/default`; absent means defaults)."""

    mtls: Literal["strict", "permissive"] = Field(
        "strict",
        description="strict: sidecars accept only mutual TLS from mesh identities; permissive: "
        "they also accept plaintext (for migrating services into the mesh).",
    )
    telemetry: Telemetry = Field(
        default_factory=Telemetry,
        description="Access logs, Prometheus stats and tracing for every Envoy in the mesh.",
    )


class Caller(Spec):
    """One calling identity: a service's sidecars or a gateway."""

    service: Name | None = None
    gateway: Name | None = None

    _exactly_one = exactly_one_of("service", "gateway")


class AuthorizationPolicySpec(Spec):
    """Allow or deny calls to `target` by identity, optionally narrowed by path and method.

    Evaluation on the target's inbound side: a request matching any deny policy gets 403; if the
    target has any allow policy, a request must match one of them, else it gets 403.
    """

    target: Name = Field(description="The service whose inbound traffic this policy governs.")
    action: Literal["allow", "deny"] = "allow"
    callers: list[Caller] = Field(
        default_factory=list, description="Identities this applies to; empty means any caller."
    )
    paths: list[Path] = Field(default_factory=list, description="Path prefixes; empty: any path.")
    methods: list[Method] = Field(default_factory=list, description="Empty: any method.")
