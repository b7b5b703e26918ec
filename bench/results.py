"""What a scenario reports: measures (with their targets), series for plots, profiles and notes.

Plain dataclasses, so latest.json is `dataclasses.asdict` of them and the report reads the same
records the scenarios printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Measure", "Profile", "ScenarioResult"]


@dataclass
class Measure:
    """One figure. `target` is an upper bound in the same unit (None: informational only)."""

    name: str
    value: float | None
    unit: str
    target: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class Profile:
    """Where the time went while `title` ran: the hottest functions by self and total samples.

    Rows are (function, percent of busy samples); `top_meshplane` ranks meshplane's own functions
    by total (themselves and their callees). `busy_seconds` is samples / rate: CPU time the
    sampled threads spent outside idle waits.
    """

    title: str
    tool: str
    samples: int
    busy_seconds: float
    top_self: list[tuple[str, float]] = field(default_factory=list)
    top_total: list[tuple[str, float]] = field(default_factory=list)
    top_meshplane: list[tuple[str, float]] = field(default_factory=list)
    raw_path: str | None = None


@dataclass
class ScenarioResult:
    name: str
    measures: list[Measure] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    speed_probe_ms: float | None = None  # bench/speed_probe.py, just before the scenario ran

    def add(self, measure: Measure) -> Measure:
        """Record and print a measure as soon as it is known (scenarios print as they go)."""
        self.measures.append(measure)
        target = f" (target <= {_fmt(measure.target)} {measure.unit})" if measure.target else ""
        met = {True: "  met", False: "  MISSED", None: ""}[measure.met]
        value = "n/a" if measure.value is None else _fmt(measure.value)
        note = f"  ({measure.note})" if measure.note else ""
        line = f"  [{self.name}] {measure.name}: {value} {measure.unit}{target}{met}{note}"
        print(line, flush=True)
        return measure

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  [{self.name}] note: {text}", flush=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "speed_probe_ms": None
            if self.speed_probe_ms is None
            else round(self.speed_probe_ms, 1),
            "error": self.error,
            "measures": [m.as_dict() for m in self.measures],
            "series": self.series,
            "profiles": [
                {
                    "title": p.title,
                    "tool": p.tool,
                    "samples": p.samples,
                    "busy_seconds": p.busy_seconds,
                    "top_self": p.top_self,
                    "top_total": p.top_total,
                    "top_meshplane": p.top_meshplane,
                    "raw_path": p.raw_path,
                }
                for p in self.profiles
            ],
            "notes": self.notes,
        }


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


fmt = _fmt
