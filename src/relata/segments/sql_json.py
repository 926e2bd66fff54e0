"""Event properties in SQL, dialect by dialect, with the keys bound.

Each reader answers NULL unless the property has the JSON type asked for, so that both
databases and Python (``relata.segments.values``) read a property alike: SQLite through
``json_type``/``json_extract`` and a bound path, PostgreSQL through ``jsonb_typeof`` and
``->``/``->>`` with a bound key. A key is a NAME_PART (letters, digits, '_', '-',
space): nothing in it can close the quoted label of the SQLite path either.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from relata.segments import values

PG_KINDS = {"text": "string", "integer": "number", "real": "number"}


def _key(key: str) -> Any:
    return sa.cast(sa.literal(key, sa.String()), sa.Text())


def _path(key: str) -> Any:
    return sa.literal(f'$."{key}"', sa.String())


def _raw(pg: bool, column: Any, key: str) -> Any:
    return column.op("->>")(_key(key)) if pg else sa.func.json_extract(column, _path(key))


def kind_is(pg: bool, column: Any, key: str, kinds: tuple[str, ...]) -> Any:
    """The JSON type test; kinds in SQLite's words (text, integer, real, true, false)."""
    if pg:
        found = sorted({PG_KINDS.get(k, "boolean") for k in kinds})
        return sa.func.jsonb_typeof(column.op("->")(_key(key))).in_(found)
    return sa.func.json_type(column, _path(key)).in_(list(kinds))


def text(pg: bool, column: Any, key: str) -> Any:
    return sa.case((kind_is(pg, column, key, ("text",)), _raw(pg, column, key)))


def number(pg: bool, column: Any, key: str) -> Any:
    """A JSON number as a double."""
    if pg:
        raw = sa.cast(column.op("->>")(_key(key)), sa.Float(53))
    else:
        raw = sa.func.json_extract(column, _path(key)) + sa.literal(0.0, sa.Float())
    # CASE, not AND: PostgreSQL may evaluate AND's sides in any order, and the cast of a
    # text to a number would fail.
    return sa.case((kind_is(pg, column, key, ("integer", "real")), raw))


def boolean(pg: bool, column: Any, key: str) -> Any:
    """1 for true, 0 for false, NULL for anything else."""
    if pg:
        is_true = column.op("->>")(_key(key)) == "true"
    else:
        is_true = sa.func.json_type(column, _path(key)) == "true"
    return sa.case((kind_is(pg, column, key, ("true", "false")), sa.case((is_true, 1), else_=0)))


def present(pg: bool, column: Any, key: str) -> Any:
    """Neither missing, nor JSON null, nor the empty text; never NULL itself."""
    return sa.func.coalesce(_raw(pg, column, key), "") != ""


def property_units(pg: bool, column: Any, key: str) -> Any:
    """A property's hundredths, rounded half away from zero as values.property_units."""
    value = number(pg, column, key)
    half = sa.case((value < 0, -0.5), else_=0.5)
    shifted = value * values.PROPERTY_SCALE + half
    units = sa.func.trunc(shifted) if pg else sa.cast(shifted, sa.Integer())
    limit = sa.literal(values.PROPERTY_LIMIT, sa.Float())
    return sa.case((sa.func.abs(value) < limit, units))
