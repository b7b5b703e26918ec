"""What a matched route does: forward (with its policies), redirect, or answer directly.

Forwarding: destinations with weight 0 are left out (their clusters still exist, warm); one
remaining cluster becomes `cluster`, several become `weighted_clusters` (sorted by cluster name,
weights of destinations naming the same cluster added up). Retries prefer another endpoint than
the ones already tried. Mirrors of services missing from the mesh are left out, so Envoy is never
pointed at a cluster it was not sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.matcher.v3 import regex_pb2

from meshplane.model import (
    DirectResponse,
    HeaderChanges,
    Mesh,
    Redirect,
    RetryPolicy,
    RouteSpec,
    Sticky,
)
from meshplane.xds.translate.http_filters import fractional_percent
from meshplane.xds.translate.names import cluster_name
from meshplane.xds.translate.proto_values import duration, packed
from meshplane.xds.translate.route_matches import regex_matcher

__all__ = [
    "direct_response_action",
    "forward_action",
    "header_options",
    "redirect_action",
    "weighted_clusters",
]

_Action = route_components_pb2.RouteAction
_PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
# How many times Envoy may pick again to avoid a host already tried (Envoy's documented example).
_HOST_SELECTION_ATTEMPTS = 3
_REDIRECT_CODES = {
    301: route_components_pb2.RedirectAction.RedirectResponseCode.MOVED_PERMANENTLY,
    302: route_components_pb2.RedirectAction.RedirectResponseCode.FOUND,
    303: route_components_pb2.RedirectAction.RedirectResponseCode.SEE_OTHER,
    307: route_components_pb2.RedirectAction.RedirectResponseCode.TEMPORARY_REDIRECT,
    308: route_components_pb2.RedirectAction.RedirectResponseCode.PERMANENT_REDIRECT,
}
_APPEND = base_pb2.HeaderValueOption.HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD
_OVERWRITE = base_pb2.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD


def weighted_clusters(spec: RouteSpec, mesh: Mesh) -> Mapping[str, int]:
    """Map each cluster the route sends traffic to onto its total weight (weight 0 left out)."""
    clusters: dict[str, int] = {}
    for destination in spec.destinations:
        if destination.weight > 0 and destination.service in mesh.services:
            name = cluster_name(destination.service, destination.labels)
            clusters[name] = clusters.get(name, 0) + destination.weight
    return clusters


def forward_action(spec: RouteSpec, mesh: Mesh) -> route_components_pb2.RouteAction | None:
    """The route action of a forwarding route; None when none of its destinations exists."""
    clusters = weighted_clusters(spec, mesh)
    if not clusters:
        return None
    action = route_components_pb2.RouteAction()
    if len(clusters) == 1:
        action.cluster = next(iter(clusters))
    else:
        for cluster, weight in sorted(clusters.items()):
            action.weighted_clusters.clusters.add(name=cluster, weight={"value": weight})
    if spec.timeout is not None:
        action.timeout.CopyFrom(duration(spec.timeout))
    if spec.retries is not None:
        action.retry_policy.CopyFrom(_retry_policy(spec.retries))
    if spec.sticky is not None:
        action.hash_policy.append(_hash_policy(spec.sticky))
    rewrite = spec.rewrite
    if rewrite is not None:
        if rewrite.prefix is not None:
            action.prefix_rewrite = rewrite.prefix
        if rewrite.regex is not None:
            action.regex_rewrite.CopyFrom(
                regex_pb2.RegexMatchAndSubstitute(
                    pattern=regex_matcher(rewrite.regex.pattern),
                    substitution=rewrite.regex.substitution,
                )
            )
        if rewrite.host is not None:
            action.host_rewrite_literal = rewrite.host
    for mirror in spec.mirrors:
        if mirror.service in mesh.services and mirror.percent > 0:
            policy = action.request_mirror_policies.add(
                cluster=cluster_name(mirror.service, mirror.labels)
            )
            if mirror.percent < 100:
                policy.runtime_fraction.default_value.CopyFrom(fractional_percent(mirror.percent))
    return action


def redirect_action(redirect: Redirect) -> route_components_pb2.RedirectAction:
    action = route_components_pb2.RedirectAction(
        response_code=_REDIRECT_CODES[redirect.status], strip_query=redirect.strip_query
    )
    if redirect.scheme is not None:
        action.scheme_redirect = redirect.scheme
    if redirect.host is not None:
        action.host_redirect = redirect.host
    if redirect.port is not None:
        action.port_redirect = redirect.port
    if redirect.path is not None:
        action.path_redirect = redirect.path
    if redirect.prefix is not None:
        action.prefix_rewrite = redirect.prefix
    return action


def direct_response_action(
    response: DirectResponse,
) -> route_components_pb2.DirectResponseAction:
    action = route_components_pb2.DirectResponseAction(status=response.status)
    if response.body is not None:
        action.body.inline_string = response.body
    return action


def header_options(changes: HeaderChanges) -> list[base_pb2.HeaderValueOption]:
    """`set` overwrites (or adds), `add` appends; sorted by name so the bytes stay stable."""
    options = [
        base_pb2.HeaderValueOption(header={"key": k, "value": v}, append_action=_OVERWRITE)
        for k, v in sorted(changes.set.items())
    ]
    options += [
        base_pb2.HeaderValueOption(header={"key": k, "value": v}, append_action=_APPEND)
        for k, v in sorted(changes.add.items())
    ]
    return options


def _retry_policy(retries: RetryPolicy) -> route_components_pb2.RetryPolicy:
    conditions = list(dict.fromkeys(retries.retry_on))
    if retries.retriable_status_codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy = route_components_pb2.RetryPolicy(
        retry_on=",".join(conditions),
        num_retries={"value": retries.attempts},
        retriable_status_codes=sorted(set(retries.retriable_status_codes)),
        host_selection_retry_max_attempts=_HOST_SELECTION_ATTEMPTS,
    )
    policy.retry_host_predicate.add(
        name=_PREVIOUS_HOSTS, typed_config=packed(previous_hosts_pb2.PreviousHostsPredicate())
    )
    if retries.per_try_timeout is not None:
        policy.per_try_timeout.CopyFrom(duration(retries.per_try_timeout))
    if retries.backoff is not None:
        policy.retry_back_off.base_interval.CopyFrom(duration(retries.backoff.base_interval))
        if retries.backoff.max_interval is not None:
            policy.retry_back_off.max_interval.CopyFrom(duration(retries.backoff.max_interval))
    return policy


def _hash_policy(sticky: Sticky) -> route_components_pb2.RouteAction.HashPolicy:
    if sticky.header is not None:
        return _Action.HashPolicy(header=_Action.HashPolicy.Header(header_name=sticky.header))
    assert sticky.cookie is not None
    cookie = _Action.HashPolicy.Cookie(name=sticky.cookie.name)
    if sticky.cookie.ttl is not None:
        cookie.ttl.CopyFrom(duration(sticky.cookie.ttl))
    if sticky.cookie.path is not None:
        cookie.path = sticky.cookie.path
    return _Action.HashPolicy(cookie=cookie)
