"""A private PostgreSQL cluster for tests that must stop the database under a running store.

initdb in a fresh temporary directory, a free port on 127.0.0.1, trust authentication; `stop`
and `start` it at will. The context manager always stops it and removes the directory. Run as
root, the server's binaries refuse to start, so they run as the `postgres` user then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

__all__ = ["PostgresCluster", "private_cluster"]

_SERVER_USER = "postgres"


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian's layout), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent)
    return found[-1].parent if found else None


class PostgresCluster:
    """One initdb'd data directory and the server on it; `url` reaches its `postgres` database."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self._bin = bin_dir
        self._root = root
        self._data = root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", _SERVER_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *args], check=True, timeout=60, capture_output=True, cwd=self._root
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self._root, _SERVER_USER)
        self._run(
            str(self._bin / "initdb"), "-D", str(self._data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start_blocking(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root} -c fsync=off "
            "-c full_page_writes=off"
        )
        log = str(self._root / "server.log")
        self._run(str(self._bin / "pg_ctl"), "start", "-w", "-D", str(self._data), "-l", log,
                  "-o", options)  # fmt: skip

    def stop_blocking(self, mode: str = "fast") -> None:
        self._run(str(self._bin / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self._data))

    async def start(self) -> None:
        await asyncio.to_thread(self.start_blocking)

    async def stop(self) -> None:
        """Stop the server the way an operator would (`fast`: sessions are disconnected)."""
        await asyncio.to_thread(self.stop_blocking)

    def kill(self) -> None:
        """Stop the server whatever its state: pg_ctl, else its postmaster's pid."""
        pid_file = self._data / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop_blocking("immediate")
            return
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


@contextlib.contextmanager
def private_cluster() -> Iterator[PostgresCluster]:
    """A started private cluster, stopped and deleted on exit; skips (fails in CI) without the
    PostgreSQL server binaries."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql")
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    # Not pytest's tmp_path: its parents are private to the test's user, and the server may
    # run as another.
    root = Path(tempfile.mkdtemp(prefix="meshplane-pg-"))
    cluster = PostgresCluster(bin_dir, root, free_port())
    try:
        cluster.init()
        cluster.start_blocking()
        yield cluster
    finally:
        cluster.kill()
        shutil.rmtree(root, ignore_errors=True)
