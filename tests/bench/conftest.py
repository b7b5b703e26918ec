"""Smoke versions of the benchmark scenarios: tiny sizes, no peer installs, no profiler."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.context import Context
from bench.sizes import SMOKE


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(
        sizes=SMOKE,
        workdir=tmp_path / "work",
        results_dir=tmp_path / "results",
        venvs_dir=tmp_path / "venvs",
        profile=False,
        peers=False,
    )
