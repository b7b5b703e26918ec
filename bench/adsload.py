"""Simulated proxies: ADS streams that behave like Envoy, thousands of them, in worker processes.

Each stream does what Envoy does on ADS, in Envoy's order: its first request carries the node
(with the meshplane metadata and token from a generated bootstrap) and subscribes to clusters
(wildcard); then to the endpoints its EDS clusters name and the secrets their TLS transport
sockets name; once those first arrived (its clusters are warm), to listeners (wildcard), then to
the route configurations its listeners' connection managers name. It ACKs every response by
nonce. State of the world and delta are both spoken.

Streams run in worker processes (`LoadPool`), so the simulated fleet does not share the control
plane's core or interpreter; each worker spreads its streams over several channels, each its own
TCP connection (a local subchannel pool), `streams_per_channel` streams on each: one per
connection models Envoys faithfully; more keeps the client cheap at large N.

What is timed: for every stream, the monotonic time at which it received (and queued the ACK of)
the first route-configuration version that differs from the version it held when the pool was
`arm`ed. CLOCK_MONOTONIC is system-wide on Linux, so the parent subtracts its own t0.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass
from typing import Any

from meshplane.gc_tuning import tune_for_a_server

__all__ = ["LoadPool", "LoadSpec", "record_responses"]

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


@dataclass(frozen=True)
class LoadSpec:
    """What every simulated proxy is: where it connects and what its node says."""

    xds_port: int
    metadata: dict[str, Any]  # the node's `meshplane` metadata (role, gateway, token, ...)
    delta: bool = False
    streams_per_channel: int = 1
    node_prefix: str = "bench"


class _Stream:
    """One simulated Envoy's ADS stream."""

    def __init__(self, node: Any, delta: bool) -> None:
        self.node = node
        self.delta = delta
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.first = True
        self.subscribed: dict[str, list[str]] = {ENDPOINT: [], ROUTE: [], SECRET: []}
        self.warming: set[str] | None = None  # types the first clusters wait for; None: no CDS yet
        self.listening = False
        self.versions: dict[str, str] = {}  # SotW: type URL -> last version_info
        self.nonces: dict[str, str] = {}
        self.route_version: str | None = None
        self.route_at = 0.0
        self.clusters = 0
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.recorded: dict[str, bytes] | None = None  # type URL -> first response, if recording

    # -- requests ------------------------------------------------------------------------------
    def _send(self, request: Any) -> None:
        if self.first:
            request.node.CopyFrom(self.node)
            self.first = False
        self.outbox.put_nowait(request)

    def _sotw(self, type_url: str, names: list[str]) -> None:
        from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest

        self._send(
            DiscoveryRequest(
                type_url=type_url,
                resource_names=names,
                version_info=self.versions.get(type_url, ""),
                response_nonce=self.nonces.get(type_url, ""),
            )
        )

    def _delta(self, type_url: str, subscribe: list[str], nonce: str = "") -> None:
        from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest

        self._send(
            DeltaDiscoveryRequest(
                type_url=type_url, resource_names_subscribe=subscribe, response_nonce=nonce
            )
        )

    def start_requests(self) -> None:
        """Clusters first: Envoy asks for listeners once its first clusters are warm."""
        if self.delta:
            self._delta(CLUSTER, [])
        else:
            self._sotw(CLUSTER, [])

    def _warmed(self, type_url: str, names: dict[str, list[str]]) -> None:
        """After a response: once the first clusters' endpoints and secrets arrived, listen."""
        if self.listening:
            return
        if type_url == CLUSTER and self.warming is None:
            self.warming = {t for t in (ENDPOINT, SECRET) if names.get(t)}
        elif self.warming is not None:
            self.warming.discard(type_url)
        if self.warming is not None and not self.warming:
            self.listening = True
            if self.delta:
                self._delta(LISTENER, [])
            else:
                self._sotw(LISTENER, [])

    async def requests(self) -> Any:
        while True:
            yield await self.outbox.get()

    # -- responses -----------------------------------------------------------------------------
    def on_sotw(self, response: Any) -> None:
        type_url = response.type_url
        self.versions[type_url] = response.version_info
        self.nonces[type_url] = response.nonce
        if type_url == ROUTE:
            self.route_version = response.version_info
            self.route_at = time.monotonic()
        names = self._follow(type_url, [r.value for r in response.resources])
        self._sotw(type_url, self.subscribed.get(type_url, []))  # the ACK
        self._subscribe_more(names)
        self._warmed(type_url, names)

    def on_delta(self, response: Any) -> None:
        type_url = response.type_url
        if type_url == ROUTE:
            versions = [r.version for r in response.resources]
            if versions:
                self.route_version = versions[0]
                self.route_at = time.monotonic()
        names = self._follow(type_url, [r.resource.value for r in response.resources])
        self._delta(type_url, [], response.nonce)  # the ACK
        self._subscribe_more(names)
        self._warmed(type_url, names)

    def _follow(self, type_url: str, values: list[bytes]) -> dict[str, list[str]]:
        """Names a CDS or LDS response makes the proxy ask for next, as Envoy would."""
        if type_url == CLUSTER:
            self.clusters = len(values)
            eds: list[str] = []
            secrets: set[str] = set()
            for value in values:
                load_assignment, names = _cluster_wants(value)
                if load_assignment is not None:
                    eds.append(load_assignment)
                secrets |= names
            return {ENDPOINT: sorted(eds), SECRET: sorted(secrets | set(self.subscribed[SECRET]))}
        if type_url == LISTENER:
            return {ROUTE: sorted(_route_names(values))}
        return {}

    def _subscribe_more(self, names: dict[str, list[str]]) -> None:
        for type_url, wanted in names.items():
            if self.delta:
                new = sorted(set(wanted) - set(self.subscribed[type_url]))
                self.subscribed[type_url] = wanted
                if new:
                    self._delta(type_url, new)
            elif wanted != self.subscribed[type_url]:
                self.subscribed[type_url] = wanted
                self._sotw(type_url, wanted)

    async def run(self, channel: Any) -> None:
        from envoy.service.discovery.v3 import ads_pb2_grpc

        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        method = stub.DeltaAggregatedResources if self.delta else stub.StreamAggregatedResources
        self.start_requests()
        handle = self.on_delta if self.delta else self.on_sotw
        try:
            async for response in method(self.requests()):
                if self.recorded is not None and response.type_url not in self.recorded:
                    self.recorded[response.type_url] = response.SerializeToString()
                handle(response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server ended the stream: keep the reason for the report
            self.error = f"{type(exc).__name__}: {str(exc)[:300]}"


async def _record(spec: LoadSpec, within: float) -> dict[str, bytes]:
    worker = _Worker(spec, 0)
    worker.open(1)
    stream = worker.streams[0]
    stream.recorded = {}
    try:
        summary = await worker.ready(within)
    finally:
        await worker.close()
    if summary["ready"] != 1:
        raise RuntimeError(f"recording a proxy's responses failed: {summary}")
    return stream.recorded


def record_responses(spec: LoadSpec, within: float = 60.0) -> dict[str, bytes]:
    """The first response of each type one simulated proxy receives (its whole cold connect)."""
    return asyncio.run(_record(spec, within))


# What each cluster's bytes ask for, per worker process. A state-of-the-world proxy gets every
# cluster again whenever one changes; Envoy compares each cluster's hash with the one it runs and
# leaves an unchanged cluster alone. Parsing all 10,000 of every response instead took the
# simulated fleet most of a core on the two the control plane being measured runs on.
_WANTS: dict[bytes, tuple[str | None, frozenset[str]]] = {}
_WANTS_KEPT = 200_000


def _cluster_wants(value: bytes) -> tuple[str | None, frozenset[str]]:
    """The load assignment (EDS clusters) and the SDS secrets a serialized cluster names."""
    known = _WANTS.get(value)
    if known is not None:
        return known
    from envoy.config.cluster.v3.cluster_pb2 import Cluster

    cluster = Cluster.FromString(value)
    load_assignment = None
    if cluster.type == Cluster.DiscoveryType.EDS:
        load_assignment = cluster.eds_cluster_config.service_name or cluster.name
    secrets: set[str] = set()
    for socket in (cluster.transport_socket, *cluster.transport_socket_matches):
        secrets |= _secret_names(getattr(socket, "transport_socket", socket))
    if len(_WANTS) >= _WANTS_KEPT:
        _WANTS.clear()
    known = _WANTS[value] = (load_assignment, frozenset(secrets))
    return known


def _secret_names(transport_socket: Any) -> set[str]:
    """The SDS secrets an upstream TLS transport socket names (certificate and validation)."""
    from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import UpstreamTlsContext

    if not transport_socket.typed_config.type_url.endswith("UpstreamTlsContext"):
        return set()
    common = UpstreamTlsContext.FromString(transport_socket.typed_config.value).common_tls_context
    names = {config.name for config in common.tls_certificate_sds_secret_configs}
    if common.HasField("validation_context_sds_secret_config"):
        names.add(common.validation_context_sds_secret_config.name)
    if common.HasField("combined_validation_context"):
        names.add(common.combined_validation_context.validation_context_sds_secret_config.name)
    return names - {""}


def _route_names(values: list[bytes]) -> set[str]:
    from envoy.config.listener.v3.listener_pb2 import Listener
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    names: set[str] = set()
    for value in values:
        listener = Listener.FromString(value)
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                if network_filter.typed_config.type_url.endswith(_HCM):
                    hcm = hcm_pb2.HttpConnectionManager.FromString(
                        network_filter.typed_config.value
                    )
                    if hcm.HasField("rds"):
                        names.add(hcm.rds.route_config_name)
    return names


class _Worker:
    """The streams of one worker process and the commands the parent sends it."""

    def __init__(self, spec: LoadSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.streams: list[_Stream] = []
        self.channels: list[Any] = []
        self.baseline: list[str | None] = []

    def _node(self, number: int) -> Any:
        from envoy.config.core.v3 import base_pb2
        from google.protobuf import json_format, struct_pb2

        metadata = struct_pb2.Struct()
        json_format.ParseDict({"meshplane": self.spec.metadata}, metadata)
        cluster = self.spec.metadata.get("service") or self.spec.metadata.get("gateway") or ""
        node_id = f"{self.spec.node_prefix}-{self.index}-{number}"
        return base_pb2.Node(id=node_id, cluster=str(cluster), metadata=metadata)

    def _channel(self) -> Any:
        import grpc

        options = [
            ("grpc.use_local_subchannel_pool", 1),  # its own TCP connection, like one Envoy
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.http2.lookahead_bytes", 256 * 1024 * 1024),
        ]
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.spec.xds_port}", options=options)

    def open(self, count: int) -> int:
        for _ in range(count):
            if not self.channels or len(self.streams) % self.spec.streams_per_channel == 0:
                self.channels.append(self._channel())
            stream = _Stream(self._node(len(self.streams)), self.spec.delta)
            stream.task = asyncio.create_task(stream.run(self.channels[-1]))
            self.streams.append(stream)
        return len(self.streams)

    async def ready(self, within: float) -> dict[str, Any]:
        """Wait until every stream holds a route configuration (bounded by `within` seconds)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(s.route_version is not None or s.error for s in self.streams):
                break
            await asyncio.sleep(0.01)
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        errors = [s.error for s in self.streams if s.error]
        return {
            "streams": len(self.streams),
            "ready": sum(1 for s in self.streams if s.route_version is not None),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "clusters": max((s.clusters for s in self.streams), default=0),
        }

    def arm(self) -> dict[str, Any]:
        self.baseline = [s.route_version for s in self.streams]
        self._cpu0 = time.process_time()
        return self._summary()

    async def collect(self, within: float) -> dict[str, Any]:
        """Times at which each stream got a route version other than its armed baseline."""
        deadline = time.monotonic() + within
        pending = list(zip(self.streams, self.baseline, strict=True))
        while pending and time.monotonic() < deadline:
            pending = [(s, b) for s, b in pending if s.route_version == b and not s.error]
            if pending:
                await asyncio.sleep(0.002)
        times = [
            s.route_at if s.route_version != b else None
            for s, b in zip(self.streams, self.baseline, strict=True)
        ]
        return {
            "times": times,
            "versions": sorted({s.route_version or "" for s in self.streams}),
            "cpu": time.process_time() - self._cpu0,
            **self._summary(),
        }

    async def close(self) -> None:
        for stream in self.streams:
            if stream.task is not None:
                stream.task.cancel()
        for stream in self.streams:
            if stream.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stream.task
        for channel in self.channels:
            await channel.close()
        self.streams.clear()
        self.channels.clear()


async def _serve(conn: multiprocessing.connection.Connection, spec: LoadSpec, index: int) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    worker = _Worker(spec, index)
    try:
        while True:
            command, argument = await commands.get()
            if command == "open":
                conn.send(worker.open(int(argument)))
            elif command == "ready":
                conn.send(await worker.ready(float(argument)))
            elif command == "arm":
                conn.send(worker.arm())
            elif command == "collect":
                conn.send(await worker.collect(float(argument)))
            elif command == "close":
                await worker.close()
                conn.send("closed")
                return
    finally:
        loop.remove_reader(conn.fileno())
        await worker.close()


def _worker_main(conn: multiprocessing.connection.Connection, spec: LoadSpec, index: int) -> None:
    # The simulated proxies stand in for Envoys, which have no garbage collector: with CPython's
    # defaults, this process's collector rescanning thousands of streams paced the ACKs.
    tune_for_a_server()
    asyncio.run(_serve(conn, spec, index))


class LoadPool:
    """`workers` processes holding simulated proxies; the parent drives them step by step.

    Use as a context manager. Every call is bounded by its timeout; closing stops the workers
    by their pids if they do not exit on their own.
    """

    def __init__(self, spec: LoadSpec, workers: int = 2) -> None:
        self.spec = spec
        context = multiprocessing.get_context("spawn")  # no inherited grpc state in the children
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main, args=(child, spec, index), name=f"adsload-{index}", daemon=True
            )
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        self._opened = [0] * workers
        self.size = 0

    def _ask(self, command: str, argument: Any, timeout: float) -> list[Any]:
        for pipe in self._pipes:
            pipe.send((command, argument))
        answers = []
        for pipe in self._pipes:
            if not pipe.poll(timeout + 30):
                raise TimeoutError(f"load worker did not answer {command!r}")
            answers.append(pipe.recv())
        return answers

    def grow(self, total: int, timeout: float = 120.0) -> dict[str, Any]:
        """Open streams until `total` are open (spread evenly), then wait until all are ready."""
        workers = len(self._pipes)
        for i, pipe in enumerate(self._pipes):
            target = total // workers + (1 if i < total % workers else 0)
            pipe.send(("open", max(0, target - self._opened[i])))
            self._opened[i] = max(target, self._opened[i])
        for pipe in self._pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("load worker did not open its streams")
            pipe.recv()
        self.size = sum(self._opened)
        return _merge(self._ask("ready", timeout, timeout))

    def arm(self) -> dict[str, Any]:
        return _merge(self._ask("arm", None, 30))

    def collect(self, timeout: float) -> dict[str, Any]:
        answers = self._ask("collect", timeout, timeout)
        merged = _merge(answers)
        merged["times"] = [t for answer in answers for t in answer["times"]]
        merged["versions"] = sorted({v for answer in answers for v in answer["versions"]})
        merged["client_cpu"] = sum(answer["cpu"] for answer in answers)
        return merged

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("close", None))
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            with contextlib.suppress(OSError, EOFError):
                if pipe.poll(30):
                    pipe.recv()
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
            pipe.close()
        self._pipes.clear()
        self._processes.clear()

    def __enter__(self) -> LoadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [a["first_error"] for a in answers if a.get("first_error")]
    return {
        "streams": sum(a["streams"] for a in answers),
        "ready": sum(a["ready"] for a in answers),
        "errors": sum(a["errors"] for a in answers),
        "first_error": errors[0] if errors else None,
        "clusters": max((a["clusters"] for a in answers), default=0),
    }
