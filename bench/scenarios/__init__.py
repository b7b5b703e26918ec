"""The scenarios, by the name `--only` takes, in the order a full run executes them.

Cheap in-process scenarios run first so a problem with the harness shows in seconds; the peer
runs last because its first run installs it.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Context
from bench.results import ScenarioResult
from bench.scenarios import (
    codec,
    cold_connect,
    fanout,
    propagation,
    rebuild,
    replicas,
    scale,
    sovereign,
)

__all__ = ["SCENARIOS", "Scenario"]

Scenario = Callable[[Context], ScenarioResult]

SCENARIOS: dict[str, Scenario] = {
    "rebuild": rebuild.run,
    "codec": codec.run,
    "cold_connect": cold_connect.run,
    "propagation": propagation.run,
    "fanout": fanout.run,
    "scale": scale.run,
    "replicas": replicas.run,
    "sovereign": sovereign.run,
}
