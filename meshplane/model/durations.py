"""Durations as users write them ("250ms", "2s", "1m", or a number of seconds)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_MAX_SECONDS = 315_576_000_000  # protobuf Duration's upper bound


def parse_duration(value: object) -> float:
    """Return seconds for "250ms" / "1.5s" / "2m" / "1h" / a bare number of seconds.

    Raises ValueError (which pydantic reports against the field) for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '250ms' or '2s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration; use e.g. '250ms', '2s', '1m'")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("must be a duration such as '250ms' or '2s'")
    if seconds < 0 or seconds > _MAX_SECONDS:
        raise ValueError("must be between 0 and 315576000000 seconds")
    return round(seconds, 9)


def format_duration(seconds: float) -> str:
    """Render seconds the way a user would write them, so specs read back as they were written."""
    millis = round(seconds * 1000, 6)
    if millis < 1000 and millis == int(millis):
        return f"{int(millis)}ms"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


# Seconds as a float inside Python; "250ms"-style strings on the wire.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h)?$", "examples": ["250ms", "2s"]}
    ),
]
