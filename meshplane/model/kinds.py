"""The kinds of resource users manage, and what each one refers to.

One table drives the API routes, the store's reference checks and `meshplane apply`, so adding a
kind is adding a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meshplane.model.policies import MESH_SETTINGS_NAME, AuthorizationPolicySpec, MeshSettingsSpec
from meshplane.model.specs import EndpointSpec, GatewaySpec, RouteSpec, ServiceSpec, Spec
from meshplane.model.tls_certificates import TlsCertificateSpec

__all__ = ["KINDS", "Kind", "Reference", "kind_named"]


@dataclass(frozen=True, slots=True)
class Reference:
    """`field` of a spec names resource `name` of kind `kind` (a plural, e.g. "services")."""

    kind: str
    name: str
    field: str


@dataclass(frozen=True, slots=True)
class Kind:
    """One resource kind: its URL plural, its singular, its spec class, its outgoing references."""

    plural: str
    singular: str
    spec: type[Spec]
    references: Callable[[Spec], Iterator[Reference]]
    only_name: str | None = None  # a singleton kind accepts just this name

    def parse(self, data: object) -> Spec:
        """Validate raw JSON-ish data into this kind's spec (raises pydantic.ValidationError)."""
        return self.spec.model_validate(data)


def _no_references(_: Spec) -> Iterator[Reference]:
    return iter(())


def _endpoint_references(spec: Spec) -> Iterator[Reference]:
    assert isinstance(spec, EndpointSpec)
    yield Reference("services", spec.service, "service")


def _gateway_references(spec: Spec) -> Iterator[Reference]:
    assert isinstance(spec, GatewaySpec)
    for i, certificate in enumerate(spec.tls.certificates if spec.tls else ()):
        yield Reference("tls-certificates", certificate, f"tls.certificates[{i}]")


def _route_references(spec: Spec) -> Iterator[Reference]:
    assert isinstance(spec, RouteSpec)
    for i, gateway in enumerate(spec.gateways):
        yield Reference("gateways", gateway, f"gateways[{i}]")
    for i, destination in enumerate(spec.destinations):
        yield Reference("services", destination.service, f"destinations[{i}].service")
    for i, mirror in enumerate(spec.mirrors):
        yield Reference("services", mirror.service, f"mirrors[{i}].service")


def _policy_references(spec: Spec) -> Iterator[Reference]:
    assert isinstance(spec, AuthorizationPolicySpec)
    yield Reference("services", spec.target, "target")
    for i, caller in enumerate(spec.callers):
        if caller.service is not None:
            yield Reference("services", caller.service, f"callers[{i}].service")
        if caller.gateway is not None:
            yield Reference("gateways", caller.gateway, f"callers[{i}].gateway")


# In dependency order: a kind refers only to kinds before it, so writing a batch in this order
# finds every reference made inside the batch already written (tests/unit/model keeps it so).
KINDS: dict[str, Kind] = {
    kind.plural: kind
    for kind in (
        Kind("services", "service", ServiceSpec, _no_references),
        Kind("endpoints", "endpoint", EndpointSpec, _endpoint_references),
        Kind("tls-certificates", "tls-certificate", TlsCertificateSpec, _no_references),
        Kind("gateways", "gateway", GatewaySpec, _gateway_references),
        Kind("routes", "route", RouteSpec, _route_references),
        Kind(
            "authorization-policies",
            "authorization-policy",
            AuthorizationPolicySpec,
            _policy_references,
        ),
        Kind("meshes", "mesh", MeshSettingsSpec, _no_references, only_name=MESH_SETTINGS_NAME),
    )
}


def kind_named(word: str) -> Kind:
    """Find a kind by plural or singular, any case ("Service", "routes"); KeyError if unknown."""
    lowered = word.lower()
    for kind in KINDS.values():
        if lowered in (kind.plural, kind.singular):
            return kind
    raise KeyError(f"unknown kind {word!r}; known: {', '.join(KINDS)}")
