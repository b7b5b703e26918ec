"""Why a write is refused: what every write rule (`rules`, `streams`) answers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a write is refused: `conflict` problems are 409s, the others 422s on `field`."""

    message: str
    field: str | None = None
    conflict: bool = False
