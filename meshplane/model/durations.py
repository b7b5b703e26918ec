"""Durations as users write them ("250ms", "2s", "1m", "1h", or a number of seconds).

Every duration is a whole number of milliseconds from 0 to 365 days. The grain and the bound are
what make a stored spec read back: `format_duration` renders any accepted value in a form
`parse_duration` accepts and maps to the same value ("1500ms" is stored as "1.5s" and read back
as 1.5 s). A finer or larger value is refused (a 422 naming the field), never rounded: a timeout
that silently became another one would be worse than an error. Fields that must be above zero
say so with `gt=0`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["MAX_DURATION_SECONDS", "Duration", "format_duration", "parse_duration"]

MAX_DURATION_SECONDS = 365 * 24 * 3600
_MAX_MILLIS = MAX_DURATION_SECONDS * 1000
_MILLIS_PER_UNIT = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
# Digits are bounded so that a pathological input costs nothing to refuse.
_PATTERN = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,15})?)\s*(ms|s|m|h)?\s*$")
_HINT = "use e.g. '250ms', '2s', '1.5m' or '1h'"


def _millis(value: object) -> Decimal:
    """The exact number of milliseconds `value` stands for (ValueError if it is no duration)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration; {_HINT}")
    if isinstance(value, int):
        return Decimal(value) * 1000
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite duration; {_HINT}")
        # repr is the shortest text that reads back as this float: 0.1 is 100 ms, not 100.00..5.
        return Decimal(repr(value)) * 1000
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(f"{value[:40]!r} is not a duration; {_HINT}")
        return Decimal(match.group(1)) * _MILLIS_PER_UNIT[match.group(2) or "s"]
    raise ValueError(f"must be a duration; {_HINT}")


def parse_duration(value: object) -> float:
    """Return seconds for "250ms" / "1.5s" / "2m" / "1h" / a number of seconds.

    Raises ValueError (which pydantic reports against the field) for anything else, for a value
    finer than a millisecond and for one above 365 days.
    """
    try:
        millis = _millis(value)
        whole = millis == millis.to_integral_value()
    except InvalidOperation:
        raise ValueError(f"must be a duration; {_HINT}") from None
    if millis < 0 or millis > _MAX_MILLIS:
        raise ValueError("must be between 0 and 365 days ('8760h')")
    if not whole:
        raise ValueError("must be a whole number of milliseconds (1ms is the finest grain)")
    return int(millis) / 1000


def format_duration(seconds: float) -> str:
    """Render seconds the way a user would write them; `parse_duration` reads it back exactly.

    Under a second in milliseconds ("250ms"), whole seconds as such ("90s"), and the rest as
    seconds with up to three decimals ("1.5s").
    """
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    whole, rest = divmod(millis, 1000)
    if rest == 0:
        return f"{whole}s"
    return f"{whole}.{rest:03d}".rstrip("0") + "s"


# Seconds as a float inside Python; "250ms"-style strings on the wire.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h)?$"},
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION_SECONDS},
            ],
            "description": "A duration: whole milliseconds from 0 to 365 days, written '250ms', "
            "'1.5s', '2m', '1h' or as a number of seconds; read back in that string form.",
            "examples": ["250ms", "2s"],
        }
    ),
]
