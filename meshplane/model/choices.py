"""Rules between two optional fields of a spec: set exactly one of them, or at most one.

Each is a pydantic model validator, assigned in the class body like a decorated method, so a
spec states such a rule in one line and every spec words it the same way (a 422 naming both
fields).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, model_validator

__all__ = ["at_most_one_of", "exactly_one_of"]

_Model = TypeVar("_Model", bound=BaseModel)


def exactly_one_of(first: str, second: str) -> Any:
    """A model validator: exactly one of the fields `first` and `second` is set (not None)."""

    def check(model: _Model) -> _Model:
        if _is_set(model, first) == _is_set(model, second):
            raise ValueError(f"give exactly one of {first!r} and {second!r}")
        return model

    return model_validator(mode="after")(check)


def at_most_one_of(first: str, second: str) -> Any:
    """A model validator: the fields `first` and `second` are not both set (not None)."""

    def check(model: _Model) -> _Model:
        if _is_set(model, first) and _is_set(model, second):
            raise ValueError(f"give at most one of {first!r} and {second!r}")
        return model

    return model_validator(mode="after")(check)


def _is_set(model: BaseModel, field: str) -> bool:
    return getattr(model, field) is not None
