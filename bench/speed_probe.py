"""A fixed pure-Python workload timed before every scenario: how fast this machine is right now.

Shared virtual machines drift: on the 2-core machine the README's figures come from, the same
commit's full rebuild measured 1.3 s and 2.2 s ten minutes apart. Recording the probe beside each
scenario lets a reader tell a slower machine from a slower meshplane, and compare runs.
"""

from __future__ import annotations

import time

__all__ = ["probe_ms"]

_ROUNDS = 5


def _workload() -> int:
    """Interpreter-bound work shaped like translation: dicts, strings, small objects."""
    total = 0
    table: dict[str, int] = {}
    for i in range(200_000):
        key = f"cluster-{i % 1000}"
        table[key] = table.get(key, 0) + i
        total += len(key)
    return total + len(table)


def probe_ms() -> float:
    """Best of a few runs of the workload, in milliseconds (lower is faster)."""
    best = float("inf")
    for _ in range(_ROUNDS):
        started = time.perf_counter()
        _workload()
        best = min(best, time.perf_counter() - started)
    return best * 1000
