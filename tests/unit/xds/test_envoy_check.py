"""Several configurations are checked by Envoys side by side, never more at once than asked,
and each verdict comes back in its configuration's place. A stand-in `envoy` (a shell script)
records when each run starts and ends, and refuses a bootstrap that says so, as Envoy prints a
critical line; real Envoy's verdicts are tested end to end (tests/e2e/test_history_rollback.py)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from meshplane.xds.envoy_check import envoy_verdicts

_STAND_IN = """#!/bin/sh
config="$4"
echo "start $(date +%s.%N)" >> "{log}"
sleep {seconds}
echo "end $(date +%s.%N)" >> "{log}"
if grep -q refuse "$config"; then
  echo "[2026-11-30 12:00:00.000][1][critical][main] [source/server/server.cc:1] bad: $config"
  exit 1
fi
"""


def _stand_in(tmp_path: Path, seconds: float) -> tuple[str, Path]:
    """The stand-in and its log; each run lasts `seconds` (long enough that runs started
    together overlap however loaded the machine)."""
    log = tmp_path / "runs.log"
    script = tmp_path / "envoy"
    script.write_text(_STAND_IN.format(log=log, seconds=seconds))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), log


def _most_at_once(log: Path) -> int:
    """The most runs that were under way together, from their start and end lines."""
    events = sorted(
        (float(at), 1 if what == "start" else -1)
        for what, at in (line.split() for line in log.read_text().splitlines())
    )
    running = most = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def test_verdicts_come_back_in_order_with_at_most_parallel_envoys_at_once(tmp_path: Path) -> None:
    binary, log = _stand_in(tmp_path, seconds=1.0)
    bootstraps = [{"node": {"id": f"group-{i}"}} for i in range(4)]
    bootstraps[2] = {"node": {"id": "refuse-me"}}
    verdicts = asyncio.run(envoy_verdicts(binary, bootstraps, parallel=2))
    assert verdicts[:2] == [None, None]
    assert verdicts[3] is None
    assert verdicts[2] is not None
    assert verdicts[2].startswith("bad: ")
    assert len(log.read_text().splitlines()) == 8  # every configuration was checked
    assert _most_at_once(log) == 2  # side by side, never more than asked


def test_one_at_a_time_when_asked(tmp_path: Path) -> None:
    binary, log = _stand_in(tmp_path, seconds=0.1)
    verdicts = asyncio.run(envoy_verdicts(binary, [{}, {}, {}], parallel=1))
    assert verdicts == [None, None, None]
    assert _most_at_once(log) == 1
