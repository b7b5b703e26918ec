"""Let only JSON text, as RFC 8259 defines it, reach the API's JSON parser.

FastAPI parses request bodies with Python's `json`, which takes more than JSON: NaN and Infinity,
numbers too large for a float (1e400 becomes inf), strings holding lone UTF-16 surrogates
("\\ud800", escaped or as raw bytes), and, when the Content-Type is not JSON, any bytes at all.
None of these can be written back as JSON, so the first answer that echoes one (a 422 shows the
input it refused) or reads a stored one fails to render, and the client gets a 500.

So a request body is checked, as the app reads it, with pydantic-core's strict parser. A body
that is not JSON text fails the read with `json.JSONDecodeError`, which FastAPI answers as it
answers any malformed body: 422, `type` json_invalid, `loc` ["body", byte offset], and the
reason in `ctx.error`. The request checks (request_checks.py) call it from a wrapped `receive`
instead of reading ahead, so it never holds more of a body than the app reads (the size limit
keeps working), and a body the app does not read is not checked.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic_core import from_json

__all__ = ["check_json_text", "is_json"]

_POSITION = re.compile(r"at line (\d+) column (\d+)$")
# Only a number with a long exponent or a long run of digits can overflow a float.
_MAYBE_HUGE = re.compile(rb"[eE]\+?\d{3}|\d{309}")
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def check_json_text(body: bytes, content_type: str | None) -> None:
    """Raise json.JSONDecodeError unless `body` is empty or JSON text sent as JSON.

    The error's `pos` is the byte offset of the problem and its `msg` says what it is.
    """
    if not body:
        return
    if not is_json(content_type):
        raise _error(
            f"the body must be JSON sent with Content-Type application/json, "
            f"not {content_type or 'without a Content-Type'}",
            0,
        )
    try:
        document = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise _error(str(exc), _offset(body, str(exc))) from None
    if _MAYBE_HUGE.search(body) and not _finite(document):
        raise _error("a number is too large for a 64-bit float", _huge_number(body))


def is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, as FastAPI decides what to parse as JSON."""
    media = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _error(reason: str, pos: int) -> json.JSONDecodeError:
    error = json.JSONDecodeError(reason, "", 0)
    error.pos = pos  # a byte offset; `doc` stays empty so no error carries the body along
    return error


def _offset(body: bytes, message: str) -> int:
    """The byte offset of pydantic-core's "at line L column C" (columns counted from 1)."""
    match = _POSITION.search(message)
    if match is None:
        return 0
    line, column = int(match[1]), int(match[2])
    start = 0
    for _ in range(line - 1):
        start = body.find(b"\n", start) + 1
    return min(start + column - 1, len(body))


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True


def _huge_number(body: bytes) -> int:
    for match in _NUMBER.finditer(body):
        if math.isinf(float(match[0])):
            return match.start()
    return 0
