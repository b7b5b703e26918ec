"""sovereign's Python templates for the propagation comparison: the same mesh meshplane serves.

sovereign loads a Python template by path and calls its `call(instances=..., ...)`. The
benchmark writes one file per resource type: this module's source followed by
`call = call_clusters` (or `call_listeners`, `call_routes`), since sovereign's venv cannot import
the bench package. The instances are
the items of the source file the benchmark writes: services (with their endpoints inline, as
STATIC clusters: sovereign would otherwise need an EDS template and a fourth poll), gateways and
routes. Python templates are sovereign's fastest kind (no Jinja rendering, no YAML parsing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _rest_source(refresh: str) -> dict[str, Any]:
    return {
        "resource_api_version": "V3",
        "api_config_source": {
            "api_type": "REST",
            "transport_api_version": "V3",
            "cluster_names": ["sovereign"],
            "refresh_delay": refresh,
        },
    }


def clusters(instances: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in instances:
        if item["kind"] != "service":
            continue
        endpoints = [
            {
                "endpoint": {
                    "address": {
                        "socket_address": {"address": e["address"], "port_value": e["port"]}
                    }
                }
            }
            for e in item["endpoints"]
        ]
        yield {
            "name": item["name"],
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": item["name"],
                "endpoints": [{"lb_endpoints": endpoints}],
            },
        }


def listeners(instances: list[dict[str, Any]], refresh: str) -> Iterator[dict[str, Any]]:
    for item in instances:
        if item["kind"] != "gateway":
            continue
        name = "gateway:" + item["name"]
        manager = {
            "@type": _HCM,
            "stat_prefix": "gateway_" + item["name"],
            "rds": {"route_config_name": name, "config_source": _rest_source(refresh)},
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}
            ],
        }
        yield {
            "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": item["port"]}},
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": manager,
                        }
                    ]
                }
            ],
        }


def routes(instances: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in instances:
        if item["kind"] != "gateway":
            continue
        mine = [r for r in instances if r["kind"] == "route" and item["name"] in r["gateways"]]
        yield {
            "name": "gateway:" + item["name"],
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"prefix": r["prefix"]}, "route": {"cluster": r["service"]}}
                        for r in sorted(mine, key=lambda r: -len(r["prefix"]))
                    ],
                }
            ],
        }


def _refresh(instances: list[dict[str, Any]]) -> str:
    for item in instances:
        if item["kind"] == "settings":
            return str(item["refresh"])
    return "1s"


def call_clusters(instances: list[dict[str, Any]], **_: Any) -> list[dict[str, Any]]:
    return list(clusters(instances))


def call_listeners(instances: list[dict[str, Any]], **_: Any) -> list[dict[str, Any]]:
    return list(listeners(instances, _refresh(instances)))


def call_routes(instances: list[dict[str, Any]], **_: Any) -> list[dict[str, Any]]:
    return list(routes(instances))
