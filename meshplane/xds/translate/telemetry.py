"""Telemetry the mesh configures on every Envoy: JSON access logs, Prometheus stats, traces.

Added to a group's listeners after they are built (every HTTP connection manager gets the same
access log and tracing, every TCP proxy an access log of its connections; the listeners given
are copied, never changed), plus what that needs: a collector cluster for traces, and a
listener that serves Envoy's own /stats/prometheus from its admin port. Settings come from
`meshes/default` (spec.telemetry), with per-service overrides for sidecars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import grpc_service_pb2, substitution_format_string_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.config.trace.v3 import http_tracer_pb2, opentelemetry_pb2, zipkin_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from meshplane.model import Mesh, ProxyGroup, Role, Telemetry
from meshplane.xds.translate.clusters import address_cluster, speak_http2
from meshplane.xds.translate.connection_managers import (
    HCM_FILTER,
    TCP_PROXY_FILTER,
    http_connection_manager,
    listener,
    one_route_configuration,
)
from meshplane.xds.translate.proto_values import packed
from meshplane.xds.type_urls import CLUSTER, LISTENER

__all__ = ["STATS_CLUSTER", "STATS_LISTENER", "TRACING_CLUSTER", "with_telemetry"]

TRACING_CLUSTER = "meshplane-tracing"
STATS_CLUSTER = "meshplane-stats"
STATS_LISTENER = "prometheus"

# One JSON object per request; keys are stable so log pipelines can rely on them.
_LOG_FIELDS = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "authority": "%REQ(:AUTHORITY)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "route": "%ROUTE_NAME%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "caller": "%DOWNSTREAM_PEER_URI_SAN%",
    "user_agent": "%REQ(USER-AGENT)%",
}
# One JSON object per connection of a tcp_proxy (tcp services, tcp and tls gateways): the keys
# a connection shares with a request, the server name a TLS client asked for, and what ended it.
_TCP_LOG_FIELDS = {
    **{
        key: _LOG_FIELDS[key]
        for key in (
            "start_time",
            "flags",
            "duration_ms",
            "bytes_received",
            "bytes_sent",
            "upstream_cluster",
            "upstream_host",
            "caller",
        )
    },
    "protocol": "tcp",
    "sni": "%REQUESTED_SERVER_NAME%",
    "termination": "%CONNECTION_TERMINATION_DETAILS%",
}


def with_telemetry(
    mesh: Mesh, group: ProxyGroup, resources: Mapping[str, Sequence[Message]]
) -> dict[str, list[Message]]:
    """`resources` (a group's, from group_resources) with the mesh's telemetry added: a new dict
    of new lists, instrumented listeners being copies, so nothing of `resources` changes."""
    telemetry = mesh.settings.telemetry
    override = telemetry.services.get(group.service or "") if group.role == Role.SIDECAR else None
    log = telemetry.access_log.enabled
    sampling = telemetry.tracing.sampling if telemetry.tracing else None
    port = telemetry.prometheus_port
    if override is not None:
        log = log if override.access_log is None else override.access_log
        sampling = sampling if override.sampling is None else override.sampling
        port = port if override.prometheus_port is None else override.prometheus_port
    service_name = group.service or group.gateway or "envoy"
    out = {type_url: list(messages) for type_url, messages in resources.items()}
    if LISTENER in out:
        out[LISTENER] = [
            _instrument(item, telemetry, log, sampling, service_name) for item in out[LISTENER]
        ]
    if telemetry.tracing is not None and sampling is not None:
        out.setdefault(CLUSTER, []).append(_tracing_cluster(telemetry))
    if port is not None and group.admin_port is not None:
        out.setdefault(CLUSTER, []).append(
            address_cluster(STATS_CLUSTER, "127.0.0.1", group.admin_port, 1.0)
        )
        out.setdefault(LISTENER, []).append(_stats_listener(port))
    return out


def _instrument(
    item: Message, telemetry: Telemetry, log: bool, sampling: float | None, service: str
) -> Message:
    result: Message = listener_pb2.Listener()
    result.CopyFrom(item)
    for chain in result.filter_chains:  # type: ignore[attr-defined]
        for network_filter in chain.filters:
            if network_filter.name == TCP_PROXY_FILTER and log:
                proxy = tcp_proxy_pb2.TcpProxy()
                network_filter.typed_config.Unpack(proxy)
                proxy.access_log.append(_access_log(telemetry, _TCP_LOG_FIELDS))
                network_filter.typed_config.CopyFrom(packed(proxy))
            if network_filter.name != HCM_FILTER:
                continue
            manager = hcm_pb2.HttpConnectionManager()
            network_filter.typed_config.Unpack(manager)
            if manager.stat_prefix == STATS_LISTENER:
                continue
            if log:
                manager.access_log.append(_access_log(telemetry, _LOG_FIELDS))
            if sampling is not None and telemetry.tracing is not None:
                manager.tracing.CopyFrom(_tracing(telemetry, sampling, service))
            network_filter.typed_config.CopyFrom(packed(manager))
    return result


def _access_log(telemetry: Telemetry, keys: Mapping[str, str]) -> accesslog_pb2.AccessLog:
    fields = struct_pb2.Struct()
    fields.update(keys)
    fmt = substitution_format_string_pb2.SubstitutionFormatString(json_format=fields)
    if telemetry.access_log.path:
        config: Message = file_pb2.FileAccessLog(path=telemetry.access_log.path, log_format=fmt)
        name = "envoy.access_loggers.file"
    else:
        config = stream_pb2.StdoutAccessLog(log_format=fmt)
        name = "envoy.access_loggers.stdout"
    return accesslog_pb2.AccessLog(name=name, typed_config=packed(config))


def _tracing(
    telemetry: Telemetry, sampling: float, service: str
) -> hcm_pb2.HttpConnectionManager.Tracing:
    assert telemetry.tracing is not None
    if telemetry.tracing.provider == "opentelemetry":
        config: Message = opentelemetry_pb2.OpenTelemetryConfig(
            grpc_service=grpc_service_pb2.GrpcService(
                envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=TRACING_CLUSTER)
            ),
            service_name=service,
        )
        name = "envoy.tracers.opentelemetry"
    else:
        config = zipkin_pb2.ZipkinConfig(
            collector_cluster=TRACING_CLUSTER,
            collector_endpoint="/api/v2/spans",
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON,
            trace_id_128bit=True,
        )
        name = "envoy.tracers.zipkin"
    return hcm_pb2.HttpConnectionManager.Tracing(
        random_sampling=percent_pb2.Percent(value=sampling),
        provider=http_tracer_pb2.Tracing.Http(name=name, typed_config=packed(config)),
    )


def _tracing_cluster(telemetry: Telemetry) -> cluster_pb2.Cluster:
    assert telemetry.tracing is not None
    host, _, port = telemetry.tracing.collector.rpartition(":")
    cluster = address_cluster(TRACING_CLUSTER, host, int(port), 1.0)
    if telemetry.tracing.provider == "opentelemetry":  # OTLP is gRPC: HTTP/2
        speak_http2(cluster)
    return cluster


def _stats_listener(port: int) -> listener_pb2.Listener:
    """0.0.0.0:`port` answering GET /stats/prometheus from Envoy's admin endpoint, nothing else."""
    routes = one_route_configuration(
        STATS_LISTENER,
        route_components_pb2.RouteMatch(path="/stats/prometheus"),
        route_components_pb2.RouteAction(cluster=STATS_CLUSTER),
    )
    manager = http_connection_manager(STATS_LISTENER, route_config=routes)
    return listener(STATS_LISTENER, "0.0.0.0", port, HCM_FILTER, manager)
