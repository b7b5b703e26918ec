"""The whole mesh at one revision: what the translator reads.

A Mesh never changes once built; `with_changes` returns a new one, copying only the mappings the
changes touch, so following the change feed costs work proportional to the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from meshplane.model.policies import MESH_SETTINGS_NAME, AuthorizationPolicySpec, MeshSettingsSpec
from meshplane.model.specs import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec, Spec

__all__ = ["Change", "Mesh"]

_EMPTY: Mapping[str, EndpointSpec] = MappingProxyType({})
_DEFAULT_SETTINGS = MeshSettingsSpec()


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write: `spec` is the new spec, or None when the resource was deleted."""

    revision: int
    kind: str
    name: str
    spec: Spec | None


@dataclass(frozen=True, slots=True)
class Mesh:
    """Every resource at `revision`, by kind and name, with endpoints also indexed by service."""

    revision: int = 0
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointSpec] = field(default_factory=dict)
    gateways: Mapping[str, GatewaySpec] = field(default_factory=dict)
    routes: Mapping[str, RouteSpec] = field(default_factory=dict)
    by_service: Mapping[str, Mapping[str, EndpointSpec]] = field(default_factory=dict)
    authorization_policies: Mapping[str, AuthorizationPolicySpec] = field(default_factory=dict)
    meshes: Mapping[str, MeshSettingsSpec] = field(default_factory=dict)
    trust_domain: str = "meshplane.local"  # set by the control plane from its settings

    @property
    def settings(self) -> MeshSettingsSpec:
        """The mesh-wide settings (`meshes/default`), defaults when absent."""
        return self.meshes.get(MESH_SETTINGS_NAME) or _DEFAULT_SETTINGS

    @classmethod
    def of(cls, revision: int, specs: Iterable[tuple[str, str, Spec]]) -> Mesh:
        """Build a mesh from (kind plural, name, spec) triples."""
        return replace(
            cls().with_changes(Change(revision, k, n, s) for k, n, s in specs), revision=revision
        )

    def endpoints_of(self, service: str) -> Mapping[str, EndpointSpec]:
        """Endpoints of `service` by endpoint name (empty when it has none)."""
        return self.by_service.get(service, _EMPTY)

    def with_changes(self, changes: Iterable[Change]) -> Mesh:
        """Return the mesh after applying `changes` in order; the revision is the last change's."""
        tables: dict[str, dict[str, Spec]] = {}
        by_service: dict[str, dict[str, EndpointSpec]] | None = None
        revision = self.revision
        for change in changes:
            revision = max(revision, change.revision)
            attribute = change.kind.replace("-", "_")
            table = tables.get(attribute)
            if table is None:
                table = tables[attribute] = dict(getattr(self, attribute))
            if change.kind == "endpoints":
                if by_service is None:
                    by_service = {}
                _reindex(self, by_service, table, change)
            if change.spec is None:
                table.pop(change.name, None)
            else:
                table[change.name] = change.spec
        updates: dict[str, object] = dict(tables)
        if by_service is not None:
            merged = dict(self.by_service)
            for service, members in by_service.items():
                if members:
                    merged[service] = members
                else:
                    merged.pop(service, None)
            updates["by_service"] = merged
        return replace(self, revision=revision, **updates)  # type: ignore[arg-type]


def _reindex(
    mesh: Mesh,
    by_service: dict[str, dict[str, EndpointSpec]],
    endpoints: Mapping[str, Spec],
    change: Change,
) -> None:
    """Move endpoint `change.name` between per-service indexes, copying each index once."""

    def members(service: str) -> dict[str, EndpointSpec]:
        if service not in by_service:
            by_service[service] = dict(mesh.by_service.get(service, {}))
        return by_service[service]

    old = endpoints.get(change.name)
    if isinstance(old, EndpointSpec):
        members(old.service).pop(change.name, None)
    if isinstance(change.spec, EndpointSpec):
        members(change.spec.service)[change.name] = change.spec
