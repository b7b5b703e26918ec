"""Authorization policies -> Envoy RBAC filters on a service's inbound listener.

Two filters, deny first: a request that matches any deny policy is refused (403); then, if the
service has allow policies, a request must match one of them. Callers are matched by the SPIFFE
ID of their verified client certificate, so plaintext requests (permissive mode) match no caller.

HTTP services get the HTTP filters (`rbac_filters`, paths and methods as permissions), tcp
services the network filters (`network_rbac_filters`, before the tcp_proxy): a denied
connection is closed before a byte reaches the app. The rules are the same rules, built here
once for both; a tcp service's policies cannot name paths or methods (`model.streams`), and one
that somehow does is kept fail-closed: such a deny policy denies its callers whatever they
send, such an allow policy admits nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy.type.matcher.v3 import path_pb2, string_pb2

from meshplane.model import AuthorizationPolicySpec, Caller, Mesh, Subject
from meshplane.xds.translate.proto_values import packed

__all__ = ["network_rbac_filters", "rbac_filters"]

_RBAC_FILTER = "envoy.filters.http.rbac"
_NETWORK_RBAC_FILTER = "envoy.filters.network.rbac"
_ACTIONS = (("deny", rbac_config.RBAC.DENY), ("allow", rbac_config.RBAC.ALLOW))


def rbac_filters(mesh: Mesh, service: str) -> list[hcm_pb2.HttpFilter]:
    """The HTTP RBAC filters for `service`'s inbound side; none when no policy targets it."""
    return [
        hcm_pb2.HttpFilter(
            name=f"{_RBAC_FILTER}.{action}", typed_config=packed(rbac_pb2.RBAC(rules=rules))
        )
        for action, rules in _rules(mesh, service, http=True)
    ]


def network_rbac_filters(mesh: Mesh, service: str) -> list[listener_components_pb2.Filter]:
    """The network RBAC filters for tcp `service`'s inbound side (before its tcp_proxy); none
    when no policy targets it. Stats under `rbac_<action>.`: `denied`, `allowed`."""
    return [
        listener_components_pb2.Filter(
            name=f"{_NETWORK_RBAC_FILTER}.{action}",
            typed_config=packed(network_rbac_pb2.RBAC(rules=rules, stat_prefix=f"rbac_{action}.")),
        )
        for action, rules in _rules(mesh, service, http=False)
    ]


def _rules(mesh: Mesh, service: str, *, http: bool) -> list[tuple[str, rbac_config.RBAC]]:
    """Each action's rules for `service`, deny first; `http` False: for the network filter."""
    targeting = sorted(
        (name, p) for name, p in mesh.authorization_policies.items() if p.target == service
    )
    out = []
    for action, envoy_action in _ACTIONS:
        chosen = [(n, p) for n, p in targeting if p.action == action]
        if chosen:
            policies = {n: _policy(mesh.trust_domain, p, http=http) for n, p in chosen}
            kept = {n: p for n, p in policies.items() if p is not None}
            out.append((action, rbac_config.RBAC(action=envoy_action, policies=kept)))
    return out


def _policy(
    trust_domain: str, spec: AuthorizationPolicySpec, *, http: bool
) -> rbac_config.Policy | None:
    """The policy's principals and permissions; None for an allow policy that narrows by what
    a network filter cannot see (fail-closed, see the module docstring)."""
    permission = _permission(spec) if http else rbac_config.Permission(any=True)
    if not http and (spec.paths or spec.methods) and spec.action == "allow":
        return None
    principals = [
        rbac_config.Principal(
            authenticated=rbac_config.Principal.Authenticated(
                principal_name=string_pb2.StringMatcher(
                    exact=_subject(caller).spiffe_id(trust_domain)
                )
            )
        )
        for caller in spec.callers
    ] or [rbac_config.Principal(any=True)]
    return rbac_config.Policy(principals=principals, permissions=[permission])


def _subject(caller: Caller) -> Subject:
    """The identity a caller names (exactly one of a service or a gateway, by validation)."""
    if caller.service is not None:
        return Subject.service(caller.service)
    return Subject.gateway(caller.gateway or "")


def _any_of(permissions: Iterable[rbac_config.Permission]) -> rbac_config.Permission:
    rules = list(permissions)
    if len(rules) == 1:
        return rules[0]
    return rbac_config.Permission(or_rules=rbac_config.Permission.Set(rules=rules))


def _permission(spec: AuthorizationPolicySpec) -> rbac_config.Permission:
    parts = []
    if spec.paths:
        parts.append(
            _any_of(
                rbac_config.Permission(
                    url_path=path_pb2.PathMatcher(path=string_pb2.StringMatcher(prefix=prefix))
                )
                for prefix in spec.paths
            )
        )
    if spec.methods:
        parts.append(
            _any_of(
                rbac_config.Permission(
                    header=route_components_pb2.HeaderMatcher(
                        name=":method", string_match=string_pb2.StringMatcher(exact=method)
                    )
                )
                for method in spec.methods
            )
        )
    if not parts:
        return rbac_config.Permission(any=True)
    if len(parts) == 1:
        return parts[0]
    return rbac_config.Permission(and_rules=rbac_config.Permission.Set(rules=parts))
