"""What every scenario is given: its sizes, where to put scratch files and results, and what it
may do (sample with py-spy when a target is missed; install and run peers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.sizes import Sizes

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    sizes: Sizes
    workdir: Path  # scratch space, removed after the run
    results_dir: Path  # latest.json, report.md, plots, raw profiles
    venvs_dir: Path  # peers' virtual environments (bench/.venvs, gitignored)
    profile: bool = True  # sample the work behind a missed target with py-spy
    peers: bool = True  # create peer venvs and run the peers (off in the smoke tests)

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
