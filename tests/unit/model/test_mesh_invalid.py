"""A stored resource that no longer validates is kept out of the Mesh with everything that refers
to it, and what it held out comes back when it is written valid again."""

from __future__ import annotations

from meshplane.model import (
    Change,
    EndpointSpec,
    GatewaySpec,
    Mesh,
    RouteSpec,
    ServiceSpec,
    Spec,
)
from meshplane.model.policies import AuthorizationPolicySpec

WEB_ROUTE = RouteSpec.model_validate({"gateways": ["edge"], "destinations": [{"service": "web"}]})
API_ROUTE = RouteSpec.model_validate({"gateways": ["edge"], "destinations": [{"service": "api"}]})
MIRRORED = RouteSpec.model_validate(
    {"hosts": ["api"], "destinations": [{"service": "api"}], "mirrors": [{"service": "web"}]}
)
SPECS: list[tuple[str, str, Spec]] = [
    ("routes", "web", WEB_ROUTE),
    ("routes", "api", API_ROUTE),
    ("routes", "mirrored", MIRRORED),
    ("endpoints", "web-1", EndpointSpec(service="web", address="10.0.0.1", port=80)),
    ("endpoints", "api-1", EndpointSpec(service="api", address="10.0.0.2", port=80)),
    ("authorization-policies", "web", AuthorizationPolicySpec(target="web")),
    ("services", "api", ServiceSpec()),
    ("gateways", "edge", GatewaySpec(port=8000)),
]
OUT_WITH_WEB = {
    ("routes", "web"),
    ("routes", "mirrored"),
    ("endpoints", "web-1"),
    ("authorization-policies", "web"),
}


def _assert_usable_part(mesh: Mesh) -> None:
    assert set(mesh.services) == {"api"}
    assert set(mesh.routes) == {"api"}
    assert set(mesh.endpoints) == {"api-1"}
    assert set(mesh.by_service) == {"api"}
    assert not mesh.authorization_policies
    assert set(mesh.gateways) == {"edge"}
    assert dict(mesh.invalid) == {("services", "web"): "connect_timeout: bad"}
    assert set(mesh.left_out) == OUT_WITH_WEB


def test_an_invalid_resource_and_its_referrers_stay_out_in_any_order() -> None:
    invalid = [("services", "web", "connect_timeout: bad")]
    mesh = Mesh.of(9, SPECS, invalid)
    assert mesh.revision == 9
    _assert_usable_part(mesh)
    # The same mesh when the invalid one comes after its referrers (the change log's order).
    valid = Mesh.of(8, [*SPECS, ("services", "web", ServiceSpec())])
    later = valid.with_changes([Change(9, "services", "web", None, invalid="connect_timeout: bad")])
    _assert_usable_part(later)
    assert later.left_out == mesh.left_out


def test_writing_it_valid_brings_back_what_it_held_out() -> None:
    mesh = Mesh.of(9, SPECS, [("services", "web", "connect_timeout: bad")])
    fixed = mesh.with_changes([Change(10, "services", "web", ServiceSpec(protocol="http2"))])
    assert fixed == Mesh.of(10, [*SPECS, ("services", "web", ServiceSpec(protocol="http2"))])
    assert not fixed.invalid
    assert not fixed.left_out
    assert set(fixed.endpoints_of("web")) == {"web-1"}


def test_a_referrer_still_blocked_by_another_invalid_resource_stays_out() -> None:
    both = RouteSpec.model_validate(
        {"gateways": ["edge"], "destinations": [{"service": "web"}, {"service": "api"}]}
    )
    specs: list[tuple[str, str, Spec]] = [s for s in SPECS if s[0] != "gateways"]
    specs.append(("routes", "both", both))
    mesh = Mesh.of(9, specs, [("services", "web", "bad"), ("gateways", "edge", "bad")])
    assert ("routes", "api") in mesh.left_out
    fixed = mesh.with_changes([Change(10, "services", "web", ServiceSpec())])
    assert set(fixed.left_out) == {("routes", "web"), ("routes", "api"), ("routes", "both")}
    assert set(fixed.endpoints) == {"web-1", "api-1"}
    assert set(fixed.authorization_policies) == {"web"}
    assert dict(fixed.invalid) == {("gateways", "edge"): "bad"}


def test_changes_to_left_out_resources_and_deletions_keep_the_tables_consistent() -> None:
    mesh = Mesh.of(9, SPECS, [("services", "web", "bad")])
    moved = EndpointSpec(service="web", address="10.0.0.9", port=81)
    changed = mesh.with_changes(
        [
            Change(10, "endpoints", "web-1", moved),  # still refers to web: still out
            Change(11, "routes", "mirrored", None),  # a left-out one deleted
            Change(12, "endpoints", "web-2", moved),  # a new one referring to web
        ]
    )
    assert changed.left_out[("endpoints", "web-1")] == moved
    assert ("routes", "mirrored") not in changed.left_out
    assert ("endpoints", "web-2") in changed.left_out
    assert set(changed.endpoints) == {"api-1"}
    # Deleting the invalid one while referrers remain (the store refuses that) keeps them out.
    gone = changed.with_changes([Change(13, "services", "web", None)])
    assert not gone.invalid
    assert ("routes", "web") in gone.left_out
    assert "web" not in gone.by_service


def test_nothing_invalid_costs_no_copy_of_the_quarantine() -> None:
    mesh = Mesh.of(1, SPECS[-2:])
    after = mesh.with_changes([Change(2, "services", "web", ServiceSpec())])
    assert after.invalid is mesh.invalid
    assert after.left_out is mesh.left_out
