"""Read a process's memory and CPU time from /proc (Linux), at the resolution the targets need.

CPU time comes from each thread's `schedstat` (nanoseconds on CPU), not from `/proc/PID/stat`,
whose 10 ms clock ticks are coarser than the 5 ms cold-connect target itself. Threads are summed
because grpc's C core serves streams on threads of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "rss_bytes", "thread_count"]


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time `pid` has used so far, all threads, in seconds (nanosecond resolution).

    Threads that exited are not counted; the control plane's threads live as long as it does.
    """
    total = 0
    tasks = Path(f"/proc/{pid}/task")
    for task in os.listdir(tasks):
        try:
            total += int((tasks / task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between listing and reading
    return total / 1e9


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))
