"""Run a hot read on the driver's cursor: compiled once per dialect, executed without SQLAlchemy.

A batch apply reads one neighbourhood per route before its writes and one after (mesh_rules.py):
20,000 short index lookups for 10,000 routes. Through `Connection.execute` each costs about
47 us on this class of machine (bind and result processing, the compiled cache's lookup, the
execution context) against 14 us for the same SQL on the driver's cursor: about 0.7 s of a
30,000-document apply. So those statements are compiled once per dialect and paramstyle and
run on the cursor of the connection's own DBAPI connection: inside its transaction, with the
same isolation, never a second connection.

What is given up is SQLAlchemy's processing of values: parameters must be plain strings and
numbers (as the neighbourhood's are), and results come as the driver returns them: a JSON
column is text on SQLite and already decoded on PostgreSQL (`decoded` takes either).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["decoded", "driver_rows"]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # the parameters' order for a positional paramstyle
    constants: dict[str, Any]  # values the statement binds itself (kind = 'routes', ...)


_COMPILED: dict[tuple[int, str, str], tuple[ClauseElement, _Compiled]] = {}


def driver_rows(
    connection: Connection, statement: ClauseElement, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """Every row of `statement` with `params`, run on `connection`'s driver cursor.

    `statement` must live as long as the process (a module constant or a cached builder's
    result): its compiled form is kept by identity."""
    compiled = _compiled(statement, connection.dialect)
    values = {**compiled.constants, **params}
    arguments: Any = values
    if compiled.positions is not None:
        arguments = [values[key] for key in compiled.positions]
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.sql, arguments)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def decoded(value: object) -> object:
    """A JSON column's value as the driver returned it, decoded (SQLite returns its text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _compiled(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    key = (id(statement), dialect.name, dialect.paramstyle)
    known = _COMPILED.get(key)
    if known is not None and known[0] is statement:
        return known[1]
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    positions = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    made = _Compiled(str(compiled), positions, constants)
    _COMPILED[key] = (statement, made)
    return made
