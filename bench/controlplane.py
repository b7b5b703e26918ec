"""Run `meshplane serve` in its own process and talk to its REST API, as a user would.

The control plane gets a process of its own so that its RSS and CPU time (read from /proc) are
its own, and so that load generators and pollers in the benchmark process do not share its
interpreter lock. It is stopped by its pid (SIGTERM, then SIGKILL after a bound).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from bench import procstats
from bench.processes import stop_process
from tests.support.ports import free_ports

__all__ = ["Api", "ControlPlaneProcess"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
_REPO = Path(__file__).resolve().parent.parent


class Api:
    """A keep-alive REST client for /api/v1 (sync: the benchmark times one write at a time).

    Writes and timed reads go through the standard library's `http.client` on one
    keep-alive connection with TCP_NODELAY: it adds about 0.1 ms to a request where httpx adds
    about 1.5 ms on this class of machine, and the figure is meant to be the control plane's.
    Everything else uses `http` (httpx).
    """

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self._auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(
            base_url=base_url, timeout=60.0, trust_env=False, headers=self._auth
        )
        url = httpx.URL(base_url)
        self._writes = _NoDelayConnection(url.host, url.port or 80, timeout=60.0)

    def close(self) -> None:
        self.http.close()
        self._writes.close()

    def put(self, kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """PUT one resource; raises RuntimeError with the API's answer unless it is 200/201."""
        body = json.dumps({"spec": spec}).encode()
        headers = {"Content-Type": "application/json"}
        status, answer = self._request("PUT", f"/api/v1/{kind}/{name}", body, headers)
        if status not in (200, 201):
            raise RuntimeError(f"PUT {kind}/{name}: {status} {answer.decode()}")
        parsed: dict[str, Any] = json.loads(answer)
        return parsed

    def get_status(self, path: str) -> int:
        """GET `path` on the timed connection (as `put` writes); the status, body read."""
        return self._request("GET", path, None, {})[0]

    def _request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        headers = {**headers, **self._auth}
        try:
            self._writes.request(method, path, body, headers)
            response = self._writes.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._writes.close()  # the server closed the idle connection: open a new one
            self._writes.request(method, path, body, headers)
            response = self._writes.getresponse()
        return response.status, response.read()

    def put_all(self, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """PUT every (kind, name, spec) in order; returns how many were written."""
        count = 0
        for kind, name, spec in items:
            self.put(kind, name, spec)
            count += 1
        return count

    def bootstrap(self, **params: Any) -> dict[str, Any]:
        """An Envoy bootstrap as JSON (`role`, `gateway`, `admin_port`, `delta`, ...)."""
        query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        response = self.http.get("/api/v1/bootstrap", params={**query, "format": "json"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def proxies(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/proxies")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def _preload(url: str, items: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
    """Write `items` through meshplane's Store (the code the API commits with) in one batch
    (`Store.apply`, as `meshplane apply -f` does) before the control plane starts: a large
    mesh is loaded in seconds, without an HTTP round trip per resource."""
    from bench.meshes import to_spec
    from meshplane.store import Document, open_store

    documents = [Document(kind, name, to_spec(kind, dict(spec))) for kind, name, spec in items]
    if not documents:
        return 0
    store = await open_store(url)
    try:
        await store.apply(documents)
    finally:
        await store.close()
    return len(documents)


class _NoDelayConnection(http.client.HTTPConnection):
    """http.client sends a request's headers and body in separate writes; without TCP_NODELAY
    the body would wait for the server's delayed ACK of the headers (~40 ms)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ControlPlaneProcess:
    """`python -m meshplane serve` on free loopback ports with a fresh SQLite database (or
    `database_url`: replicas share one PostgreSQL database).

        `preload` items are committed through the Store before the process starts (see `_preload`).
        Use as a context manager; `api` is ready once it is entered. `log_level` defaults to what a
        user runs (info); the log goes to `workdir/meshplane.log`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        log_level: str = "info",
        env: Mapping[str, str] | None = None,
        preload: Iterable[tuple[str, str, Mapping[str, Any]]] = (),
        database_url: str | None = None,
    ) -> None:
        self.token = secrets.token_urlsafe(32)  # the server's admin token (MESHPLANE_ADMIN_TOKEN)
        self.workdir = workdir
        self.preload = preload
        self.preloaded = 0
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.api_port, self.xds_port = free_ports(2)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.api: Api | None = None
        self._database_url = database_url

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the control plane is not running")
        return self._process.pid

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "meshplane.log"

    def rss_bytes(self) -> int:
        return procstats.rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return procstats.cpu_seconds(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def database_url(self) -> str:
        return self._database_url or f"sqlite:///{self.workdir / 'mesh.db'}"

    def kill(self) -> None:
        """SIGKILL by pid (no goodbye), as when a machine dies; `stop` afterwards is a no-op."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def start(self) -> ControlPlaneProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.preloaded = asyncio.run(_preload(self.database_url, self.preload))
        env = {
            **os.environ,
            "MESHPLANE_SECRET_KEY_FILE": str(self.workdir / "meshplane.key"),
            "MESHPLANE_ENDPOINT_GRACE_SECONDS": "1",
            "MESHPLANE_ADMIN_TOKEN": self.token,
            **self.extra_env,
        }
        command = [
            sys.executable, "-m", "meshplane", "serve",
            "--database-url", self.database_url,
            "--api-port", str(self.api_port),
            "--xds-port", str(self.xds_port),
            "--xds-host", "127.0.0.1",
            "--log-level", self.log_level,
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=_REPO
        )
        self.api = Api(self.api_url, self.token)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        assert self.api is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"meshplane serve exited with {self._process.returncode}\n{self.log_tail()}"
                )
            try:
                if self.api.http.get("/api/v1/server").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"meshplane serve not ready in {_START_TIMEOUT:g}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM by pid, SIGKILL after a bound; idempotent."""
        if self.api is not None:
            self.api.close()
            self.api = None
        process, self._process = self._process, None
        stop_process(process, _STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ControlPlaneProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
