"""Peers' virtual environments under bench/.venvs/, created on first use with pip from PyPI.

Peers get environments of their own because their dependency pins differ from meshplane's
(sovereign pins its own FastAPI and pydantic; envoy-data-plane brings betterproto2). Versions are
pinned so a re-run measures the same peer; a marker file records what was installed, and a venv
whose marker differs is rebuilt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PEERS", "PeerInstallError", "ensure_venv"]

PEERS: dict[str, tuple[str, ...]] = {
    "sovereign": ("sovereign==0.32.12",),
    "codec": ("envoy-data-plane==2.2.0",),
}
_PIP_TIMEOUT_S = 900


class PeerInstallError(RuntimeError):
    """pip could not install a peer; the message carries the tail of pip's output."""


def ensure_venv(venvs_dir: Path, name: str) -> Path:
    """Return the Python of venv `name` with PEERS[name] installed, creating it if needed."""
    packages = PEERS[name]
    path = venvs_dir / name
    python = path / "bin" / "python"
    marker = path / ".bench-installed"
    wanted = "\n".join(packages)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    shutil.rmtree(path, ignore_errors=True)
    venvs_dir.mkdir(parents=True, exist_ok=True)
    print(f"  creating {path} with {', '.join(packages)} (first run only)", flush=True)
    for command in (
        [sys.executable, "-m", "venv", str(path)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            raise PeerInstallError(
                f"{' '.join(command[:4])} ... failed ({done.returncode}):\n"
                + "\n".join(output[-25:])
            )
    marker.write_text(wanted)
    return python
