"""The whole mesh at one revision: what the translator reads.

A Mesh never changes once built; `with_changes` returns a new one, copying only the mappings the
changes touch, so following the change feed costs work proportional to the change.

A stored resource whose spec no longer validates arrives as a Change with `invalid` set (the
reason). The Mesh keeps it out of its tables (in `invalid`) and, with it, every resource that
refers to it, directly or through another left-out one (in `left_out`, specs kept): so the
translator never sees a dangling reference. When the invalid resource is written valid again,
whatever it held out comes back. While nothing is invalid this costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from meshplane.model.kinds import KINDS
from meshplane.model.policies import MESH_SETTINGS_NAME, AuthorizationPolicySpec, MeshSettingsSpec
from meshplane.model.specs import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec, Spec
from meshplane.model.tls_certificates import TlsCertificateSpec

__all__ = ["Change", "Key", "Mesh"]

_EMPTY: Mapping[str, EndpointSpec] = MappingProxyType({})
_NO_ROUTES: Mapping[str, RouteSpec] = MappingProxyType({})
_NO_SERVICES: Mapping[str, ServiceSpec] = MappingProxyType({})
_DEFAULT_SETTINGS = MeshSettingsSpec()

Key = tuple[str, str]
"""A resource's (kind plural, name)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write: `spec` is the new spec, or None when the resource was deleted.

    `invalid` (with `spec` None) says the resource is stored but its spec no longer validates,
    and why.
    """

    revision: int
    kind: str
    name: str
    spec: Spec | None
    invalid: str | None = None


@dataclass(frozen=True, slots=True)
class Mesh:
    """Every usable resource at `revision`, by kind and name, with endpoints also indexed by
    service and routes by gateway; `invalid` and `left_out` hold what is stored but kept out of
    the tables."""

    revision: int = 0
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointSpec] = field(default_factory=dict)
    gateways: Mapping[str, GatewaySpec] = field(default_factory=dict)
    routes: Mapping[str, RouteSpec] = field(default_factory=dict)
    by_service: Mapping[str, Mapping[str, EndpointSpec]] = field(default_factory=dict)
    by_gateway: Mapping[str, Mapping[str, RouteSpec]] = field(default_factory=dict)
    # Sidecar routes (no gateways) by each host they name.
    sidecar_by_host: Mapping[str, Mapping[str, RouteSpec]] = field(default_factory=dict)
    # Only "tcp" is a key: every sidecar looks up the tcp services (for their listeners) in
    # each build, and a scan of all services per sidecar would grow with the mesh.
    by_protocol: Mapping[str, Mapping[str, ServiceSpec]] = field(default_factory=dict)
    authorization_policies: Mapping[str, AuthorizationPolicySpec] = field(default_factory=dict)
    meshes: Mapping[str, MeshSettingsSpec] = field(default_factory=dict)
    tls_certificates: Mapping[str, TlsCertificateSpec] = field(default_factory=dict)
    trust_domain: str = "meshplane.local"  # set by the control plane from its settings
    # Stored resources whose spec no longer validates: the reason of each.
    invalid: Mapping[Key, str] = field(default_factory=dict)
    # Valid resources kept out because they refer to an invalid (or left-out) one.
    left_out: Mapping[Key, Spec] = field(default_factory=dict)

    @property
    def settings(self) -> MeshSettingsSpec:
        """The mesh-wide settings (`meshes/default`), defaults when absent."""
        return self.meshes.get(MESH_SETTINGS_NAME) or _DEFAULT_SETTINGS

    @classmethod
    def of(
        cls,
        revision: int,
        specs: Iterable[tuple[str, str, Spec]],
        invalid: Iterable[tuple[str, str, str]] = (),
    ) -> Mesh:
        """Build a mesh from (kind plural, name, spec) triples and the (kind plural, name,
        reason) of stored resources that no longer validate. The invalid ones go first, so
        what refers to them is left out on arrival rather than found by a scan."""
        changes = [Change(revision, k, n, None, reason) for k, n, reason in invalid]
        changes += (Change(revision, k, n, s) for k, n, s in specs)
        return cls(revision=revision).with_changes(changes)

    def endpoints_of(self, service: str) -> Mapping[str, EndpointSpec]:
        """Endpoints of `service` by endpoint name (empty when it has none)."""
        return self.by_service.get(service, _EMPTY)

    def tcp_services(self) -> Mapping[str, ServiceSpec]:
        """The services whose protocol is tcp, by name."""
        return self.by_protocol.get("tcp", _NO_SERVICES)

    def sidecar_routes_on(self, host: str) -> Mapping[str, RouteSpec]:
        """Sidecar routes (no gateways) naming `host`, by route name (empty when none does)."""
        return self.sidecar_by_host.get(host, _NO_ROUTES)

    def routes_of(self, gateway: str) -> Mapping[str, RouteSpec]:
        """Routes attached to `gateway` by route name (empty when it has none)."""
        return self.by_gateway.get(gateway, _NO_ROUTES)

    def with_changes(self, changes: Iterable[Change]) -> Mesh:
        """Return the mesh after applying `changes` in order; the revision is the last change's."""
        edit = _Edit(self)
        revision = self.revision
        for change in changes:
            revision = max(revision, change.revision)
            edit.apply(change)
        return replace(self, revision=revision, **edit.updates())  # type: ignore[arg-type]


def _refers(kind: str, spec: Spec, targets: Mapping[Key, object] | set[Key]) -> bool:
    """Whether a `kind` resource with `spec` refers to any of `targets`."""
    return any((ref.kind, ref.name) in targets for ref in KINDS[kind].references(spec))


class _Edit:
    """The mappings a batch of changes touches, each copied once on first touch."""

    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh
        self._tables: dict[str, dict[str, Spec]] = {}
        # Each kind's index edits, made when the first change of the kind comes.
        self._indexes: dict[str, list[tuple[str, _IndexEdit]]] = {}
        self._invalid: dict[Key, str] | None = None
        self._left_out: dict[Key, Spec] | None = None
        self._quiet = not mesh.invalid and not mesh.left_out  # nothing held out (the usual case)

    def apply(self, change: Change) -> None:
        if self._quiet and change.invalid is None:
            self._set(change.kind, change.name, change.spec)
            return
        if change.kind not in KINDS:  # stored by a version with more kinds: not this mesh's
            return
        self._quiet = False
        key = (change.kind, change.name)
        self._writable_invalid().pop(key, None)
        self._writable_left_out().pop(key, None)
        if change.invalid is not None:
            self._set(change.kind, change.name, None)
            self._writable_invalid()[key] = change.invalid
            self._evict_referrers(key)
        elif change.spec is None:  # what it held out still refers to it: stays out
            self._set(change.kind, change.name, None)
        elif _refers(change.kind, change.spec, self._blocking()):
            self._set(change.kind, change.name, None)
            self._writable_left_out()[key] = change.spec
            self._evict_referrers(key)
        else:
            self._set(change.kind, change.name, change.spec)
            self._readmit(key)

    def updates(self) -> dict[str, object]:
        updates: dict[str, object] = {k.replace("-", "_"): t for k, t in self._tables.items()}
        for edits in self._indexes.values():
            for field_name, edit in edits:
                merged = edit.merged()
                if merged is not None:
                    updates[field_name] = merged
        if self._invalid is not None:
            updates["invalid"] = self._invalid
        if self._left_out is not None:
            updates["left_out"] = self._left_out
        return updates

    def invalid(self) -> Mapping[Key, str]:
        return self._mesh.invalid if self._invalid is None else self._invalid

    def left_out(self) -> Mapping[Key, Spec]:
        return self._mesh.left_out if self._left_out is None else self._left_out

    def _blocking(self) -> set[Key]:
        return {*self.invalid(), *self.left_out()}

    def _writable_invalid(self) -> dict[Key, str]:
        if self._invalid is None:
            self._invalid = dict(self._mesh.invalid)
        return self._invalid

    def _writable_left_out(self) -> dict[Key, Spec]:
        if self._left_out is None:
            self._left_out = dict(self._mesh.left_out)
        return self._left_out

    def _table(self, kind: str) -> dict[str, Spec]:
        table = self._tables.get(kind)
        if table is None:
            table = self._tables[kind] = dict(getattr(self._mesh, kind.replace("-", "_")))
        return table

    def _index_edits(self, kind: str) -> list[tuple[str, _IndexEdit]]:
        edits = self._indexes[kind] = [
            (field_name, _IndexEdit(getattr(self._mesh, field_name), keys))
            for field_name, keys in _INDEXES_OF.get(kind, ())
        ]
        return edits

    def _view(self, kind: str) -> Mapping[str, Spec]:
        table = self._tables.get(kind)
        return table if table is not None else getattr(self._mesh, kind.replace("-", "_"))

    def _set(self, kind: str, name: str, spec: Spec | None) -> None:
        table = self._tables.get(kind) or self._table(kind)
        edits = self._indexes.get(kind)
        for _, edit in self._index_edits(kind) if edits is None else edits:
            edit.move(name, table.get(name), spec)
        if spec is None:
            table.pop(name, None)
        else:
            table[name] = spec

    def _evict_referrers(self, key: Key) -> None:
        """Move every table resource that refers to `key` (or to what that evicts) to
        `left_out`. A scan of the referring kinds: it runs only when something turns invalid."""
        pending = [key]
        while pending:
            target = {pending.pop()}
            for kind in KINDS:
                found = [(n, s) for n, s in self._view(kind).items() if _refers(kind, s, target)]
                for name, spec in found:
                    self._set(kind, name, None)
                    self._writable_left_out()[(kind, name)] = spec
                    pending.append((kind, name))

    def _readmit(self, key: Key) -> None:
        """Put back every left-out resource that `key` held out and nothing else still does."""
        pending = [key]
        while pending and self.left_out():
            freed = {pending.pop()}
            blocking = self._blocking()
            for (kind, name), spec in list(self.left_out().items()):
                if _refers(kind, spec, freed) and not _refers(kind, spec, blocking):
                    del self._writable_left_out()[(kind, name)]
                    self._set(kind, name, spec)
                    pending.append((kind, name))
                    blocking.discard((kind, name))


def _endpoint_service(spec: Spec) -> Iterable[str]:
    return (spec.service,) if isinstance(spec, EndpointSpec) else ()


def _tcp_protocol(spec: Spec) -> Iterable[str]:
    return ("tcp",) if isinstance(spec, ServiceSpec) and spec.protocol == "tcp" else ()


def _route_gateways(spec: Spec) -> Iterable[str]:
    return spec.gateways if isinstance(spec, RouteSpec) else ()


def _sidecar_hosts(spec: Spec) -> Iterable[str]:
    return spec.hosts if isinstance(spec, RouteSpec) and not spec.gateways else ()


# The secondary indexes of Mesh by the kind they index: each one's field, and a spec's keys
# in it.
_INDEXES_OF: dict[str, tuple[tuple[str, Callable[[Spec], Iterable[str]]], ...]] = {
    "endpoints": (("by_service", _endpoint_service),),
    "routes": (("by_gateway", _route_gateways), ("sidecar_by_host", _sidecar_hosts)),
    "services": (("by_protocol", _tcp_protocol),),
}


class _IndexEdit:
    """The edits of one secondary index (key -> name -> spec): each key's members are copied
    once, on first touch, so a change costs the members of the keys it moves between."""

    def __init__(
        self, current: Mapping[str, Mapping[str, Any]], keys: Callable[[Spec], Iterable[str]]
    ):
        self._current = current
        self._keys = keys
        self._edited: dict[str, dict[str, Any]] = {}

    def move(self, name: str, old: Spec | None, new: Spec | None) -> None:
        """Move `name` from the keys of its `old` spec to those of its `new` one."""
        for key in self._keys(old) if old is not None else ():
            self._members(key).pop(name, None)
        for key in self._keys(new) if new is not None else ():
            self._members(key)[name] = new

    def merged(self) -> dict[str, Mapping[str, Any]] | None:
        """The whole index after the edits; None when nothing was edited."""
        if not self._edited:
            return None
        merged = dict(self._current)
        for key, members in self._edited.items():
            if members:
                merged[key] = members
            else:
                merged.pop(key, None)
        return merged

    def _members(self, key: str) -> dict[str, Any]:
        members = self._edited.get(key)
        if members is None:
            members = self._edited[key] = dict(self._current.get(key, {}))
        return members
