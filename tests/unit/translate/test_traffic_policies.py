"""Every traffic-policy field as Envoy sees it (the example also passes `envoy --mode validate`
in test_envoy_validation.py)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from meshplane.xds.translate.http_filters import fractional_percent
from meshplane.xds.type_urls import CLUSTER, LISTENER, ROUTE
from tests.unit.translate.meshes import EXAMPLES, grouped, shared

CASE = EXAMPLES["traffic-policies"]
FAULT = "envoy.filters.http.fault"
RATE_LIMIT = "envoy.filters.http.local_ratelimit"


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def routes(group: int = 0) -> dict[str, dict[str, Any]]:
    (config,) = grouped(CASE.mesh, CASE.groups[group])[ROUTE]
    return {r.name: as_dict(r) for vhost in config.virtual_hosts for r in vhost.routes}


def clusters() -> dict[str, dict[str, Any]]:
    return {c.name: as_dict(c) for c in shared(CASE.mesh)[CLUSTER]}


def test_query_parameters_join_the_match():
    match = routes()["everything"]["match"]
    assert match["query_parameters"] == [
        {"name": "v", "string_match": {"exact": "2"}},
        {"name": "id", "string_match": {"safe_regex": {"regex": "^[0-9]+$"}}},
        {"name": "debug", "present_match": True},
    ]


def test_retries_with_budgeted_conditions_backoff_and_another_host():
    policy = routes()["everything"]["route"]["retry_policy"]
    assert policy["retry_on"] == "gateway-error,reset,retriable-status-codes"
    assert policy["num_retries"] == 3
    assert policy["per_try_timeout"] == "1s"
    assert policy["retriable_status_codes"] == [409, 429]
    assert policy["retry_back_off"] == {"base_interval": "0.010s", "max_interval": "0.200s"}
    (predicate,) = policy["retry_host_predicate"]
    assert predicate["name"] == "envoy.retry_host_predicates.previous_hosts"


def test_sticky_cookie_rewrites_and_mirrors():
    action = routes()["everything"]["route"]
    assert action["hash_policy"] == [{"cookie": {"name": "session", "ttl": "3600s", "path": "/"}}]
    assert (action["prefix_rewrite"], action["host_rewrite_literal"]) == ("/", "shop.internal")
    assert action["timeout"] == "3s"
    assert action["request_mirror_policies"] == [
        {
            "cluster": "audit",
            "runtime_fraction": {"default_value": {"numerator": 125000, "denominator": "MILLION"}},
        },
        {"cluster": "audit|tier=cold"},  # 100 %: no fraction
    ]


def test_header_changes_set_overwrites_add_appends_remove_removes():
    route = routes()["everything"]
    assert route["request_headers_to_add"] == [
        {
            "header": {"key": "x-env", "value": "prod"},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        },
        {"header": {"key": "x-via", "value": "edge"}},  # APPEND_IF_EXISTS_OR_ADD is the default
    ]
    assert route["request_headers_to_remove"] == ["x-debug"]
    assert route["response_headers_to_remove"] == ["server"]


def test_fault_and_rate_limit_are_per_route_filter_settings():
    config = routes()["everything"]["typed_per_filter_config"]
    assert config[FAULT]["delay"] == {
        "fixed_delay": "0.250s",
        "percentage": {"numerator": 15000, "denominator": "MILLION"},
    }
    assert config[FAULT]["abort"]["http_status"] == 503
    limit = config[RATE_LIMIT]
    assert limit["token_bucket"] == {
        "max_tokens": 150,
        "tokens_per_fill": 100,
        "fill_interval": "60s",
    }
    # Envoy enforces on no request unless told 100 %.
    assert (
        limit["filter_enabled"] == limit["filter_enforced"] == {"default_value": {"numerator": 100}}
    )


def test_redirect_and_direct_response():
    found = routes()
    assert found["moved"]["redirect"] == {
        "scheme_redirect": "https",
        "host_redirect": "example.org",
        "port_redirect": 8443,
        "prefix_rewrite": "/n",
        "response_code": "FOUND",
    }
    teapot = found["teapot"]
    assert teapot["direct_response"] == {
        "status": 418,
        "body": {"inline_string": "short and stout"},
    }
    assert FAULT in teapot["typed_per_filter_config"]


def test_regex_rewrite_on_a_sidecar_route():
    action = routes(1)["by-regex"]["route"]
    assert action["regex_rewrite"] == {
        "pattern": {"regex": "^/v([0-9]+)/"},
        "substitution": "/version/\\1/",
    }


def test_hash_policies_circuit_breakers_and_outlier_detection_on_every_cluster_of_a_service():
    found = clusters()
    for name in ("shop", "shop|version=v1", "shop|version=v2"):
        assert found[name]["lb_policy"] == "RING_HASH"
        (thresholds,) = found[name]["circuit_breakers"]["thresholds"]
        assert thresholds == {
            "max_connections": 100,
            "max_pending_requests": 10,
            "max_requests": 200,
            "retry_budget": {"budget_percent": {"value": 25.5}, "min_retry_concurrency": 2},
        }
    for name in ("audit", "audit|tier=cold"):
        assert found[name]["lb_policy"] == "MAGLEV"
        assert found[name]["outlier_detection"] == {
            "consecutive_5xx": 3,
            "interval": "2s",
            "base_ejection_time": "45s",
            "max_ejection_percent": 50,
        }


def test_health_checks_probe_every_interval_even_without_traffic():
    found = clusters()
    (web,) = found["web"]["health_checks"]
    assert web == {
        "timeout": "0.500s",
        "interval": "3s",
        "no_traffic_interval": "3s",
        "healthy_threshold": 2,
        "unhealthy_threshold": 4,
        "http_health_check": {
            "path": "/healthz",
            "expected_statuses": [{"start": "200", "end": "201"}, {"start": "204", "end": "205"}],
        },
    }
    (rpc,) = found["rpc"]["health_checks"]
    assert rpc["http_health_check"]["codec_client_type"] == "HTTP2"
    assert rpc["http_health_check"]["expected_statuses"] == [{"start": "200", "end": "300"}]


def test_service_rate_limit_is_a_bucket_on_its_sidecars_inbound_listener():
    def inbound(group: int) -> str:
        listeners = grouped(CASE.mesh, CASE.groups[group])[LISTENER]
        (found,) = [listener for listener in listeners if listener.name == "inbound"]
        return json_format.MessageToJson(found)

    assert f'"name": "{RATE_LIMIT}"' in inbound(1)  # web: 50 a second per instance
    assert '"tokensPerFill": 50' in inbound(1)
    assert RATE_LIMIT not in inbound(2)  # rpc has no limit


def test_percentages_are_exact():
    assert as_dict(fractional_percent(100)) == {"numerator": 100}
    assert as_dict(fractional_percent(0.0001)) == {"numerator": 1, "denominator": "MILLION"}
    assert as_dict(fractional_percent(33.3333)) == {"numerator": 333333, "denominator": "MILLION"}
