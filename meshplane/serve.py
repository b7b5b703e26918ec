"""Compose the control plane: store, change feed, builder, ADS server and REST API in one process.

`ControlPlane` builds every object from Settings and runs them together; `meshplane serve` runs
one until a signal, and tests run one in-process (ports 0 pick free ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from meshplane.api import ApiServer, ApiThread, CoreLoop, create_app, proxy_json
from meshplane.certs import (
    CaConfig,
    CertificateAuthority,
    EdgeRenewals,
    SecretBox,
    load_secret,
)
from meshplane.errors import Conflict
from meshplane.gc_tuning import tune_for_a_server
from meshplane.metrics import Metrics
from meshplane.model import XDS_SERVER
from meshplane.private_files import write_private
from meshplane.settings import Settings
from meshplane.store import (
    IdentityRepo,
    Leadership,
    LeadershipSource,
    Replica,
    ReplicaProxies,
    ReplicaRepo,
    RevisionListener,
    SoleLeader,
    Store,
    TokenRepo,
    follow_identity,
    follow_proxies,
    follow_revisions,
    keep_alive,
    new_replica_id,
    one_server,
    open_store,
)
from meshplane.store_bridge import StoreMeshSource, StoreNodeTokens, StoreRegistrar
from meshplane.tls import api_ssl_context, warn_if_clear
from meshplane.xds import (
    SHORT_NAMES,
    AdsServer,
    ChangePreview,
    NodeTokens,
    ProxyRegistry,
    ResourceCache,
    SnapshotBuilder,
    TranslateHook,
    find_envoy,
    start_xds_server,
    when_reachable,
)

__all__ = ["ControlPlane", "first_admin_token", "serve"]

log = logging.getLogger(__name__)

# How long a thread may hold the interpreter lock while another waits for it (CPython: 5 ms).
# Builds run in a worker thread (xds/builder.py) that holds it while it translates, so each time
# the event loop wakes during a build it waits up to this long, several times per API request.
# Measured with the `scale` benchmark (10,000 services, full builds back to back, one gateway
# stream, 2 cores): API GET p50 41 ms and p99 123 ms at 5 ms; 5-7 ms and 61-65 ms at 0.5 ms;
# no better at 0.2 ms. The builds take longer by about the loop's share of the interpreter.
SWITCH_INTERVAL_S = 0.0005
ORPHANS_EVERY_S = 1.0  # how often the leader looks for endpoints a dead replica held
FORGET_EVERY_S = 30.0  # how often the leader drops the proxy rows of dead replicas
EDGE_RENEWALS_EVERY_S = 600.0  # how often the leader looks for mesh-issued edge certificates due
# (and at once when the issuing root changes: see certs/edge.py)


def _export_state(
    metrics: Metrics,
    registry: ProxyRegistry,
    cache: ResourceCache,
    authority: CertificateAuthority,
    builder: SnapshotBuilder,
) -> None:
    """Gauges read from their owners at scrape time."""

    def proxies() -> list[tuple[tuple[str, ...], float]]:
        counts = Counter((p.role or "unknown", p.transport) for p in registry.proxies())
        return [(key, float(n)) for key, n in counts.items()]

    def cached(index: int) -> list[tuple[tuple[str, ...], float]]:
        footprint = cache.footprint()
        return [((SHORT_NAMES.get(t, t),), float(v[index])) for t, v in footprint.items()]

    def expiry() -> list[tuple[tuple[str, ...], float]]:
        now = dt.datetime.now(dt.UTC)
        leaves = [(leaf.spiffe_id, leaf.not_after) for leaf in authority.leaves()]
        edge = [
            (f"tls-certificate/{name}", spec.info.not_after)
            for name, spec in sorted(builder.mesh.tls_certificates.items())
            if spec.issued
        ]
        return [((who,), (end - now).total_seconds()) for who, end in leaves + edge]

    metrics.gauge(
        "meshplane_xds_connected_proxies",
        "Open xDS streams by role and transport.",
        ["role", "transport"],
        proxies,
    )
    metrics.gauge(
        "meshplane_cache_resources",
        "Distinct resources in the cache, by type.",
        ["type"],
        lambda: cached(0),
    )
    metrics.gauge(
        "meshplane_cache_bytes",
        "Serialized bytes of the distinct cached resources, by type.",
        ["type"],
        lambda: cached(1),
    )
    metrics.gauge(
        "meshplane_certificate_expiry_seconds",
        "Seconds until each certificate expires: each identity's (its SPIFFE ID) and each "
        "edge certificate's (tls-certificate/<name>).",
        ["identity"],
        expiry,
    )


def _ca_config(settings: Settings) -> CaConfig:
    return CaConfig(
        trust_domain=settings.trust_domain,
        key_type=settings.ca_key_type,
        leaf_ttl=dt.timedelta(seconds=settings.leaf_ttl_seconds),
        root_ttl=dt.timedelta(days=settings.root_ttl_days),
        overlap=dt.timedelta(seconds=settings.ca_overlap_seconds),
    )


async def first_admin_token(tokens: TokenRepo, settings: Settings) -> None:
    """Make sure an admin can sign in: MESHPLANE_ADMIN_TOKEN is the token named "admin" when
    set; otherwise the first start creates that token and writes it, mode 0600, to
    `settings.admin_token_path`, logging where it is (never the token)."""
    now = dt.datetime.now(dt.UTC)
    if settings.admin_token is not None:
        if await tokens.replace("admin", settings.admin_token, "admin", now=now):
            log.info("admin token set from MESHPLANE_ADMIN_TOKEN name=admin")
        return
    path = settings.admin_token_path
    if any(token.name == "admin" for token in await tokens.all()):
        log.info("admin token name=admin file=%s", path if path.exists() else "(not here)")
        return
    try:
        value = await tokens.create(
            "admin", "admin", expires_at=None, created_by="first-start", now=now
        )
    except Conflict:
        return  # another replica created it at the same moment
    write_private(path, value + "\n")
    log.info("admin token created name=admin file=%s (mode 0600; the CLI reads it)", path)


class ControlPlane:
    """Every running part of meshplane, started and stopped together."""

    def __init__(self, settings: Settings, *, hook: TranslateHook | None = None) -> None:
        self.settings = settings
        self._hook = hook
        self.store: Store | None = None
        self.registry: ProxyRegistry | None = None
        self.api_port = settings.api_port
        self.xds_port = settings.xds_port
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._api: ApiThread | None = None
        self.box: SecretBox | None = None
        self.metrics: Metrics | None = None
        self.authority: CertificateAuthority | None = None
        self._pending_identities: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.replica_id = new_replica_id()
        self.replica: Replica | None = None  # this one, once registered
        self._registrar: StoreRegistrar | None = None
        self._leader_jobs: list[asyncio.Task[None]] = []
        self._edge_renewals: EdgeRenewals | None = None
        self._app: FastAPI | None = None

    @property
    def api_url(self) -> str:
        scheme = "https" if self.settings.api_serves_tls else "http"
        return f"{scheme}://{self.settings.api_host}:{self.api_port}"

    async def __aenter__(self) -> ControlPlane:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        settings = self.settings
        self._stack.enter_context(one_server(settings.database_url))
        box = self.box = SecretBox(load_secret(settings.secret_key, settings.secret_key_file))
        store = self.store = await open_store(
            settings.database_url, history_revisions=settings.history_revisions, sealer=box
        )
        self._stack.push_async_callback(store.close)
        await first_admin_token(TokenRepo(store.database), settings)
        metrics = self.metrics = Metrics()
        # Before the CA: each step of a root rotation waits until the streams hold the last one.
        self._registrar = StoreRegistrar(store, self.replica_id)
        registry = self.registry = ProxyRegistry(
            self._registrar, settings.endpoint_grace_seconds, metrics
        )
        self._stack.push_async_callback(registry.aclose)
        authority = self.authority = CertificateAuthority(
            IdentityRepo(store.database),
            box,
            _ca_config(settings),
            converged=self._identity_converged,
            leading=False,  # until this replica holds the leader's lock (_lead)
        )
        await authority.start()
        cache = ResourceCache()
        builder = SnapshotBuilder(
            StoreMeshSource(store),
            cache,
            edge_keys=store.edge_keys,
            hook=self._hook,
            trust_domain=settings.trust_domain,
            on_missing_identity=self._issue_later,
            metrics=metrics,
        )
        builder.set_identities(authority.state)
        authority.subscribe(builder.set_identities)
        self._edge_renewals = EdgeRenewals(store, authority, EDGE_RENEWALS_EVERY_S)
        await builder.load()
        _export_state(metrics, registry, cache, authority, builder)
        if store.database.postgres:
            self._follow_other_replicas(store, authority)

        tokens = None
        if settings.require_node_token:
            tokens = NodeTokens(StoreNodeTokens(TokenRepo(store.database)))
            await tokens.load()
            self._tasks.append(asyncio.create_task(tokens.run(), name="meshplane-node-tokens"))
        server = AdsServer(builder, cache, registry, tokens=tokens, metrics=metrics)
        tls = None
        if settings.xds_serves_tls:
            await authority.ensure([XDS_SERVER.text])

            def tls() -> tuple[bytes, bytes]:
                leaf = authority.state.leaves[XDS_SERVER.text]
                return leaf.key_pem, leaf.cert_chain_pem.encode()

        grpc_server, self.xds_port = await start_xds_server(
            server, settings.xds_host, settings.xds_port, tls=tls
        )
        self._stack.push_async_callback(grpc_server.stop, 1.0)
        self._tasks.append(asyncio.create_task(builder.run(), name="meshplane-builder"))
        self._tasks.append(asyncio.create_task(authority.run(), name="meshplane-ca"))

        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and accepted sockets copy the listener's. With proto 0, Nagle holds each response body
        # back until the client ACKs the headers: ~40 ms of delayed ACK on every API call.
        family = socket.AF_INET6 if ":" in self.settings.api_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.api_host, self.settings.api_port))
        self.api_port = sock.getsockname()[1]
        settings = self.settings.model_copy(
            update={"xds_port": self.xds_port, "api_port": self.api_port}
        )
        app = self._app = create_app(
            store=store,
            status=registry,
            settings=settings,
            authority=authority,
            metrics=metrics,
            core=CoreLoop(asyncio.get_running_loop()),
            preview=ChangePreview(
                builder, registry.streams, envoy=find_envoy(settings.envoy_binary)
            ),
        )
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        config.load()
        config.ssl = await api_ssl_context(self.settings, authority)
        warn_if_clear(self.settings)
        self._api = ApiThread(ApiServer(config), [sock])
        self._api.start()
        self._tasks.append(asyncio.create_task(self._api.wait(), name="meshplane-api"))
        async with asyncio.timeout(30):
            while not self._api.server.started:
                if self._tasks[-1].done():
                    self._tasks[-1].result()
                await asyncio.sleep(0.01)
        log.info("api listening url=%s", self.api_url)
        await self._register(store)
        self._lead(store)

    async def _register(self, store: Store) -> None:
        """Join the mesh's replicas (bootstraps list every live one's xDS address); beat until
        stopped, then leave. Meanwhile report the CA generation all this replica's proxies
        hold (rotation steps wait on it) and, on PostgreSQL, its streams' status (every
        replica lists every replica's proxies)."""
        now = dt.datetime.now(dt.UTC)
        self.replica = Replica(
            self.replica_id,
            self.settings.advertise_address,
            self.xds_port,
            self.api_url,
            now,
            now,
        )
        replicas = ReplicaRepo(store.database)
        await replicas.register(self.replica)
        assert self._app is not None
        self._app.state.replica_id = self.replica.id  # GET /replicas marks it
        self._stack.push_async_callback(_leave, replicas, self.replica.id)
        assert self.registry is not None
        assert self.authority is not None
        beating = keep_alive(replicas, self.replica, self.registry.register_again)
        self._tasks.append(asyncio.create_task(beating, name="meshplane-heartbeat"))
        authority = self.authority
        identity = follow_identity(
            replicas,
            self.replica.id,
            lambda: authority.state.version,
            self.registry.secrets_converged,
        )
        self._tasks.append(asyncio.create_task(identity, name="meshplane-identity-report"))
        if store.database.postgres:  # another replica may list them (one SQLite server)
            views = ReplicaProxies(store.database)
            publishing = follow_proxies(views, self.replica.id, self._stream_views)
            self._tasks.append(asyncio.create_task(publishing, name="meshplane-proxy-views"))
            self._stack.push_async_callback(_quietly, lambda: views.clear(self.replica_id))
        log.info("replica registered id=%s", self.replica.id)

    async def _stream_views(self) -> dict[int, dict[str, Any]]:
        """This replica's streams as the API shows them (read here, on the control plane's
        loop; converted on a thread), for the other replicas to list: none while no other
        replica is alive to list them."""
        assert self.registry is not None
        assert self.store is not None
        live = await ReplicaRepo(self.store.database).live(dt.datetime.now(dt.UTC))
        if [r.id for r in live] == [self.replica_id]:
            return {}
        proxies = self.registry.proxies()
        return await asyncio.to_thread(lambda: {p.stream_id: proxy_json(p) for p in proxies})

    def _lead(self, store: Store) -> None:
        """Run the singleton jobs while this replica holds the leader's lock (store/leader.py):
        on PostgreSQL whichever replica takes it, on SQLite this one."""
        loop = asyncio.get_running_loop()
        leadership: LeadershipSource
        if store.database.postgres:
            leadership = Leadership(store.database, self._on_leadership, loop)
        else:
            leadership = SoleLeader(self._on_leadership)
        leadership.start()
        self._stack.push_async_callback(asyncio.to_thread, leadership.stop)

    def _on_leadership(self, leading: bool) -> None:
        """Start the singleton jobs when this replica leads, stop them when it no longer does:
        the CA's renewals and rotation steps, removing dead replicas' endpoints and the
        proxy rows they left."""
        if self.authority is not None:
            self.authority.set_leading(leading)
        for job in self._leader_jobs:
            job.cancel()
        self._leader_jobs.clear()
        if not leading or self.store is None or self._registrar is None:
            return
        replicas, me = ReplicaRepo(self.store.database), self.replica_id
        registrar, grace = self._registrar, self.settings.endpoint_grace_seconds
        sweep = _every(ORPHANS_EVERY_S, lambda: registrar.remove_orphans(grace))
        views = ReplicaProxies(self.store.database)
        forget = _every(FORGET_EVERY_S, lambda: views.forget_dead(dt.datetime.now(dt.UTC)))
        if self._edge_renewals is not None:
            renew = self._edge_renewals.run()
            self._leader_jobs.append(asyncio.create_task(renew, name="meshplane-edge-renewals"))
        self._leader_jobs += [
            asyncio.create_task(_quietly(lambda: replicas.lead(me)), name="meshplane-lead"),
            asyncio.create_task(sweep, name="meshplane-orphans"),
            asyncio.create_task(forget, name="meshplane-forget-dead"),
        ]

    async def _identity_converged(self, version: int) -> bool:
        """Whether every proxy, of every live replica, holds the CA's state `version` (what
        each root rotation step waits for)."""
        assert self.registry is not None
        if not await self.registry.secrets_converged(version):
            return False
        if self.replica is None or self.store is None:
            return True  # not registered yet: no other replica can be waited for
        others = ReplicaRepo(self.store.database)
        return not await others.behind(version, dt.datetime.now(dt.UTC), self.replica.id)

    def _follow_other_replicas(self, store: Store, authority: CertificateAuthority) -> None:
        """Wake the builder on other replicas' commits, and the CA on their CA writes: their
        notices, and a periodic read of the newest revision and CA generation for notices
        missed (see store/replica_feed.py)."""
        loop = asyncio.get_running_loop()
        listener = RevisionListener(store.database, store.feed.publish, loop, authority.hear)
        listener.start()
        self._stack.push_async_callback(asyncio.to_thread, listener.stop)
        follow = follow_revisions(store.revision, store.feed.publish)
        self._tasks.append(asyncio.create_task(follow, name="meshplane-revisions"))
        self._tasks.append(asyncio.create_task(authority.watch(), name="meshplane-ca-watch"))

    def _issue_later(self, subject: str) -> None:
        """Ask the CA for an identity a newly connected proxy needs (once until it is issued)."""
        if subject in self._pending_identities or self.authority is None:
            return
        self._pending_identities.add(subject)

        async def issue(authority: CertificateAuthority) -> None:
            try:  # while the store is unreachable, wait for it (it reports the outage)
                await when_reachable(lambda: authority.ensure([subject]))
            except Exception:
                log.exception("issuing a certificate failed subject=%s", subject)
            finally:
                self._pending_identities.discard(subject)

        task = asyncio.create_task(issue(self.authority))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait(self) -> None:
        """Return when any part stops (they are meant to run forever), raising its error."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        """Stop the API, the builder and the ADS server; close the store. Idempotent."""
        for task in [*self._background, *self._leader_jobs]:
            task.cancel()
        if self._api is not None:
            self._api.stop()
        for task in self._tasks:
            if task.get_name() == "meshplane-api":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=5)
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._stack.aclose()


async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run `job()` every `seconds`, forever; a failure (the database away) waits a turn."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception as exc:  # the store reports its outages
            log.debug("a leader job failed error=%s", type(exc).__name__)


async def _quietly(work: Callable[[], Awaitable[None]]) -> None:
    """Run `work`, which may fail while the database is away (it reports the outage)."""
    with contextlib.suppress(Exception):
        await work()


async def _leave(replicas: ReplicaRepo, replica_id: str) -> None:
    """Leave the replicas at a clean stop (a killed one ages out instead)."""
    with contextlib.suppress(Exception):
        await replicas.leave(replica_id, dt.datetime.now(dt.UTC))


async def serve(settings: Settings) -> None:
    """Run the control plane until SIGINT/SIGTERM."""
    import signal

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with ControlPlane(settings) as plane:
        tune_for_a_server()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        log.info(
            "meshplane serving api=%s xds=%s:%d database=%s",
            plane.api_url,
            settings.xds_host,
            plane.xds_port,
            settings.database_url,
        )
        waiter = asyncio.create_task(plane.wait())
        stopper = asyncio.create_task(stopping.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if waiter.done():
            waiter.result()
        waiter.cancel()
    log.info("meshplane stopped")
