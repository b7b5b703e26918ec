"""One side of the codec comparison, run as a script in the venv of the library it measures.

`python codec_worker.py --lib upb|betterproto --clusters N --routes M --repeats R --out FILE`
builds N clusters and one route configuration with M routes, shaped like meshplane's (EDS
clusters over ADS with a connect timeout, circuit breakers, HTTP/2 options for every 5th, a
least-request policy for every 3rd; routes with prefixes, a 90/10 weighted split for every 10th
and a timeout for every 7th), with the same values in both libraries. It times import, build,
serialize and parse (best of R), writes the serialized messages to FILE (4-byte big-endian length
before each) and prints one JSON object. It imports nothing from meshplane or bench: the
betterproto side runs in bench/.venvs/codec, whose pins differ from ours.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_URL = "type.googleapis.com/" + HTTP_OPTIONS


def _name(i: int) -> str:
    return f"svc-{i:05d}"


def _upb() -> dict[str, Callable[..., Any]]:
    t0 = time.perf_counter()
    from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
    from envoy.config.core.v3 import config_source_pb2, protocol_pb2
    from envoy.config.route.v3 import route_components_pb2 as rc
    from envoy.config.route.v3 import route_pb2
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
    from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

    import_s = time.perf_counter() - t0

    def cluster(i: int) -> Any:
        name = _name(i)
        message = cluster_pb2.Cluster(
            name=name,
            type=cluster_pb2.Cluster.EDS,
            connect_timeout=duration_pb2.Duration(nanos=250_000_000),
            eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
                eds_config=config_source_pb2.ConfigSource(
                    ads=config_source_pb2.AggregatedConfigSource(),
                    resource_api_version=config_source_pb2.V3,
                ),
                service_name=name,
            ),
            circuit_breakers=circuit_breaker_pb2.CircuitBreakers(
                thresholds=[
                    circuit_breaker_pb2.CircuitBreakers.Thresholds(
                        max_connections=wrappers_pb2.UInt32Value(value=1024),
                        max_pending_requests=wrappers_pb2.UInt32Value(value=256),
                    )
                ]
            ),
        )
        if i % 3 == 0:
            message.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
        if i % 5 == 0:
            options = hpo.HttpProtocolOptions(
                explicit_http_config=hpo.HttpProtocolOptions.ExplicitHttpConfig(
                    http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
                )
            )
            message.typed_extension_protocol_options[HTTP_OPTIONS].CopyFrom(
                any_pb2.Any(
                    type_url=HTTP_OPTIONS_URL, value=options.SerializeToString(deterministic=True)
                )
            )
        return message

    def route(i: int) -> Any:
        name = _name(i)
        action = rc.RouteAction()
        if i % 10 == 0:
            action.weighted_clusters.CopyFrom(
                rc.WeightedCluster(
                    clusters=[
                        rc.WeightedCluster.ClusterWeight(
                            name=f"{name}|version=v1", weight=wrappers_pb2.UInt32Value(value=90)
                        ),
                        rc.WeightedCluster.ClusterWeight(
                            name=f"{name}|version=v2", weight=wrappers_pb2.UInt32Value(value=10)
                        ),
                    ]
                )
            )
        else:
            action.cluster = name
        if i % 7 == 0:
            action.timeout.CopyFrom(duration_pb2.Duration(seconds=5))
        return rc.Route(name=name, match=rc.RouteMatch(prefix=f"/{name}/"), route=action)

    def route_configuration(routes: int) -> Any:
        return route_pb2.RouteConfiguration(
            name="gateway:edge",
            virtual_hosts=[
                rc.VirtualHost(name="*", domains=["*"], routes=[route(i) for i in range(routes)])
            ],
        )

    return {
        "import_s": lambda: import_s,
        "cluster": cluster,
        "route_configuration": route_configuration,
        "serialize": lambda m: m.SerializeToString(deterministic=True),
        "parse_cluster": cluster_pb2.Cluster.FromString,
        "parse_routes": route_pb2.RouteConfiguration.FromString,
    }


def _betterproto() -> dict[str, Callable[..., Any]]:
    t0 = time.perf_counter()
    from envoy_data_plane.envoy.config.cluster.v3 import (  # type: ignore[import-not-found]
        CircuitBreakers,
        CircuitBreakersThresholds,
        Cluster,
        ClusterDiscoveryType,
        ClusterEdsClusterConfig,
        ClusterLbPolicy,
    )
    from envoy_data_plane.envoy.config.core.v3 import (  # type: ignore[import-not-found]
        AggregatedConfigSource,
        ApiVersion,
        ConfigSource,
        Http2ProtocolOptions,
    )
    from envoy_data_plane.envoy.config.route.v3 import (  # type: ignore[import-not-found]
        Route,
        RouteAction,
        RouteConfiguration,
        RouteMatch,
        VirtualHost,
        WeightedCluster,
        WeightedClusterClusterWeight,
    )
    from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (  # type: ignore[import-not-found]
        HttpProtocolOptions,
        HttpProtocolOptionsExplicitHttpConfig,
    )
    from envoy_data_plane.google.protobuf import Any as AnyMessage  # type: ignore[import-not-found]

    import_s = time.perf_counter() - t0

    def cluster(i: int) -> Any:
        name = _name(i)
        options = {}
        if i % 5 == 0:
            http2 = HttpProtocolOptions(
                explicit_http_config=HttpProtocolOptionsExplicitHttpConfig(
                    http2_protocol_options=Http2ProtocolOptions()
                )
            )
            options[HTTP_OPTIONS] = AnyMessage(type_url=HTTP_OPTIONS_URL, value=bytes(http2))
        return Cluster(
            name=name,
            type=ClusterDiscoveryType.EDS,
            connect_timeout=dt.timedelta(milliseconds=250),
            eds_cluster_config=ClusterEdsClusterConfig(
                eds_config=ConfigSource(
                    ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3
                ),
                service_name=name,
            ),
            circuit_breakers=CircuitBreakers(
                thresholds=[
                    CircuitBreakersThresholds(max_connections=1024, max_pending_requests=256)
                ]
            ),
            lb_policy=ClusterLbPolicy.LEAST_REQUEST if i % 3 == 0 else ClusterLbPolicy.ROUND_ROBIN,
            typed_extension_protocol_options=options,
        )

    def route(i: int) -> Any:
        name = _name(i)
        timeout = dt.timedelta(seconds=5) if i % 7 == 0 else None
        if i % 10 == 0:
            action = RouteAction(
                weighted_clusters=WeightedCluster(
                    clusters=[
                        WeightedClusterClusterWeight(name=f"{name}|version=v1", weight=90),
                        WeightedClusterClusterWeight(name=f"{name}|version=v2", weight=10),
                    ]
                ),
                timeout=timeout,
            )
        else:
            action = RouteAction(cluster=name, timeout=timeout)
        return Route(name=name, match=RouteMatch(prefix=f"/{name}/"), route=action)

    def route_configuration(routes: int) -> Any:
        return RouteConfiguration(
            name="gateway:edge",
            virtual_hosts=[
                VirtualHost(name="*", domains=["*"], routes=[route(i) for i in range(routes)])
            ],
        )

    return {
        "import_s": lambda: import_s,
        "cluster": cluster,
        "route_configuration": route_configuration,
        "serialize": bytes,
        "parse_cluster": Cluster.parse,
        "parse_routes": RouteConfiguration.parse,
    }


def _best(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    value: Any = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=["upb", "betterproto"], required=True)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    api = _upb() if args.lib == "upb" else _betterproto()

    def build() -> list[Any]:
        return [api["cluster"](i) for i in range(args.clusters)]

    build_clusters_s, clusters = _best(args.repeats, build)
    build_routes_s, routes = _best(args.repeats, lambda: api["route_configuration"](args.routes))
    serialize_clusters_s, cluster_bytes = _best(
        args.repeats, lambda: [api["serialize"](c) for c in clusters]
    )
    serialize_routes_s, route_bytes = _best(args.repeats, lambda: api["serialize"](routes))
    parse_clusters_s, _ = _best(
        args.repeats, lambda: [api["parse_cluster"](b) for b in cluster_bytes]
    )
    parse_routes_s, _ = _best(args.repeats, lambda: api["parse_routes"](route_bytes))
    blobs = [*cluster_bytes, route_bytes]
    with open(args.out, "wb") as out:
        for blob in blobs:
            out.write(struct.pack(">I", len(blob)) + blob)
    module = "protobuf" if args.lib == "upb" else "envoy_data_plane"
    from importlib.metadata import version

    json.dump(
        {
            "lib": args.lib,
            "versions": {
                name: version(name)
                for name in (
                    ("protobuf", "xds-protos") if args.lib == "upb" else (module, "betterproto2")
                )
            },
            "python": sys.version.split()[0],
            "import_s": api["import_s"](),
            "build_clusters_s": build_clusters_s,
            "build_routes_s": build_routes_s,
            "serialize_clusters_s": serialize_clusters_s,
            "serialize_routes_s": serialize_routes_s,
            "parse_clusters_s": parse_clusters_s,
            "parse_routes_s": parse_routes_s,
            "bytes": sum(len(b) for b in blobs),
            "sha256": hashlib.sha256(b"".join(blobs)).hexdigest(),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
