"""Sample a running process with py-spy and summarize where its busy time went.

Used wherever a target is missed: the profile goes into the report so the design can be fixed
from evidence. py-spy attaches to any pid (the control plane's own process, or this one for the
in-process rebuild), samples without stopping it (`--nonblocking`), and leaves idle waits out, so
percentages are of the time the process was actually working.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

from bench.results import Profile

__all__ = ["PySpy", "pyspy_binary", "summarize"]

_RATE = 1000  # samples per second
# Leaf frames that are waits, not work: py-spy's idle detection misses some under --nonblocking.
_IDLE_LEAVES = (
    "EpollSelector.select (",
    "Condition.wait (",
    "Event.wait (",
    "_worker (concurrent/futures/thread.py)",
    "Thread.run (threading.py)",
    "Queue.get (",
)
# Frames every stack passes through (entry points, event loop, CLI): no information in "total".
_PLUMBING = ("asyncio/", "<frozen", "typer/", "click/", "threading.py", "runpy", "__main__.py")
_PLUMBING_FUNCS = (
    "main (bench/cli.py)",
    "run_scenarios (bench/cli.py)",
    "main (meshplane/cli/app.py)",
    "serve (meshplane/cli/app.py)",
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def pyspy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


class PySpy:
    """Record `pid` for the duration of a `with` block into `output` (py-spy's raw format).

    `profile` is filled in on exit. If py-spy is not installed, the block runs unsampled and
    `profile` stays None with `error` saying why.
    """

    def __init__(self, pid: int, output: Path, title: str, *, rate: int = _RATE) -> None:
        self.pid = pid
        self.output = output
        self.title = title
        self.rate = rate
        self.profile: Profile | None = None
        self.error: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        binary = pyspy_binary()
        if binary is None:
            self.error = "py-spy is not installed (pip install -e '.[bench]')"
            return self
        self.output.parent.mkdir(parents=True, exist_ok=True)
        command = [
            binary, "record", "--pid", str(self.pid), "--rate", str(self.rate),
            "--format", "raw", "--output", str(self.output), "--nonblocking",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # py-spy needs a moment to attach before the measured work starts
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
        if not self.output.exists():
            self.error = f"py-spy wrote nothing: {stderr.decode(errors='replace')[-500:]}"
            return
        self.profile = summarize(self.output.read_text(), self.title, rate=self.rate)
        self.profile.raw_path = str(self.output)


def _short(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func (pkg/file.py)`: aggregate by function, short path."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(raw: str, title: str, *, rate: int = _RATE, top: int = 15) -> Profile:
    """Aggregate py-spy raw output (`frame;frame;... count` per line) by function.

    Samples whose leaf is a wait (see _IDLE_LEAVES) are dropped; "total" leaves out the entry
    points and the event loop every stack passes through; `top_meshplane` ranks meshplane's own
    functions by total, which is where a design fix starts.
    """
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    own_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames or frames[-1].startswith(_IDLE_LEAVES):
            continue
        samples += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            if any(p in name for p in _PLUMBING) or name in _PLUMBING_FUNCS:
                continue
            total_counts[name] += count
            if "(meshplane/" in name:
                own_counts[name] += count

    def rows(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counts.most_common(top)]

    return Profile(
        title=title,
        tool=f"py-spy record --rate {rate} --nonblocking",
        samples=samples,
        busy_seconds=round(samples / rate, 3),
        top_self=rows(self_counts) if samples else [],
        top_total=rows(total_counts) if samples else [],
        top_meshplane=rows(own_counts) if samples else [],
    )
