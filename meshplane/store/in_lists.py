"""IN lists with a fixed number of parameters, for statements run thousands of times a batch.

An expanding parameter (`IN (:names)`) is rendered anew at every execution: for the short
neighbourhood reads of a batch apply that costs more than running them. So their lists are
padded to a power of two with a value no name, host, scope or digest can be (`PAD`), and
each shape of lists compiles once (`in_list` in a statement cached by `arities`). A padded
value matches nothing; an empty list becomes one padded value, an index lookup that finds
nothing, not a planner's scan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import BindParameter, String, bindparam

__all__ = ["PAD", "Arities", "InList", "in_list_maker", "padded"]

PAD = "#"  # not in any name (NAME_PATTERN), host, scope or SHA-256 digest
Arities = tuple[tuple[str, int], ...]  # each list parameter's padded length, sorted by name
InList = Callable[[str], list[BindParameter[str]]]


def padded(params: Mapping[str, Any]) -> tuple[Arities, dict[str, Any]]:
    """The arities of the list parameters among `params`, and every parameter as the
    statement takes it: a list `xs` as `xs_0`, `xs_1`, ... padded with PAD."""
    arities: list[tuple[str, int]] = []
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(value, list):
            flat[key] = value
            continue
        length = 1 << max(len(value) - 1, 0).bit_length()
        arities.append((key, length))
        values = [*value, *([PAD] * (length - len(value)))]
        flat.update((f"{key}_{i}", v) for i, v in enumerate(values))
    return tuple(sorted(arities)), flat


def in_list_maker(arities: Arities) -> InList:
    """For a statement shaped by `arities`: the parameters of list `key`, one per element."""
    lengths = dict(arities)

    def in_list(key: str) -> list[BindParameter[str]]:
        return [bindparam(f"{key}_{i}", type_=String) for i in range(lengths[key])]

    return in_list
