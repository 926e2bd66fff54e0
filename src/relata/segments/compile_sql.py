"""A checked rule as SQL (SQLAlchemy Core) over all customers at once (batch evaluation).

``compile_rule(node, registry, now, dialect, resolve)`` returns a ``SqlRule``: a WHERE
expression over ``customers`` plus the derived tables it reads. Every condition over a
collection (events, purchases, …) becomes one ``customer_id → value`` aggregate LEFT
JOINed to the customers, so AND, OR and NOT compose freely and the database scans each
collection once per aggregate instead of once per customer.

Safety: every value from a rule is a bound parameter, the keys of event properties
included (``sql_json``); table and column names come from the registry.
No user text ever becomes SQL text. Time windows are bounds computed from ``now`` in
Python and bound, never the database's clock, so SQLite and PostgreSQL agree.
NULL: every condition is written so that it is never NULL (see ``relata.segments.values``),
which makes NOT of a condition about a missing value true, as in the Python compiler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Select, Table

from relata.db import UTCDateTime
from relata.events.models import Event
from relata.identity.models import Identifier
from relata.ingest.models import Source
from relata.profiles.models import Customer, Holding
from relata.segments import sql_json, values
from relata.segments.rules import ast
from relata.segments.rules.ast import Node, Window
from relata.segments.rules.errors import RuleError
from relata.segments.rules.limits import MAX_SEGMENT_DEPTH
from relata.segments.rules.registry import Collection, Field, Registry
from relata.segments.rules.timing import (
    BERLIN,
    Bounds,
    birth_date_limit,
    date_bounds,
    day_bounds,
    moment_bounds,
    month_days,
    today,
)

Resolve = Callable[[str], Node]
CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
TABLES: dict[str, Table] = {
    "events": Event.__table__,  # type: ignore[dict-item]
    "purchases": Holding.__table__,  # type: ignore[dict-item]
    "contracts": Holding.__table__,  # type: ignore[dict-item]
    "holdings": Holding.__table__,  # type: ignore[dict-item]
    "identifiers": Identifier.__table__,  # type: ignore[dict-item]
}
HOLDING_KIND = {"purchases": "purchase", "contracts": "contract"}
TRUE, FALSE = sa.true(), sa.false()


@dataclass
class SqlRule:
    where: ColumnElement[bool]
    joins: list[tuple[Any, ColumnElement[bool]]] = field(default_factory=list)

    def from_(self) -> Any:
        joined: Any = CUSTOMERS
        for table, on in self.joins:
            joined = joined.outerjoin(table, on)
        return joined

    def count(self) -> Select[Any]:
        return sa.select(sa.func.count()).select_from(self.from_()).where(*_active(), self.where)

    def members(self) -> Select[Any]:
        return (
            sa.select(CUSTOMERS.c.id)
            .select_from(self.from_())
            .where(*_active(), self.where)
            .order_by(CUSTOMERS.c.id)
        )


def _active() -> list[ColumnElement[bool]]:
    return [CUSTOMERS.c.status == "active"]


def compile_rule(
    node: Node,
    registry: Registry,
    now: datetime,
    dialect: str,
    resolve: Resolve | None = None,
    name: str | None = None,
    tz: tzinfo = BERLIN,
) -> SqlRule:
    compiler = _Compiler(registry, now, dialect, resolve, tz)
    if name is not None:
        compiler.stack.append(name)
    where = compiler.node(node, None)
    return SqlRule(where, compiler.joins)


@dataclass(frozen=True)
class _Value:
    """A value a condition tests: its expression, kind, and the units sums are kept in."""

    expr: Any
    kind: str  # text | number | date | datetime | bool | float
    scale: int = 1
    integral: bool = False  # counts and sums (in units): whole numbers, never NULL
    never_null: bool = False


class _Compiler:
    def __init__(
        self, registry: Registry, now: datetime, dialect: str, resolve: Resolve | None, tz: tzinfo
    ) -> None:
        self.registry = registry
        self.now = now
        self.tz = tz
        self.pg = dialect == "postgresql"
        self.resolve = resolve
        self.stack: list[str] = []
        self.joins: list[tuple[Any, ColumnElement[bool]]] = []
        self.aggregates: dict[Any, Any] = {}
        self.segments: dict[str, ColumnElement[bool]] = {}

    # --- structure -----------------------------------------------------------------------

    def node(self, node: Node, scope: Collection | None, table: Table = CUSTOMERS) -> Any:
        if isinstance(node, ast.And):
            return sa.and_(*(self.node(i, scope, table) for i in node.items))
        if isinstance(node, ast.Or):
            return sa.or_(*(self.node(i, scope, table) for i in node.items))
        if isinstance(node, ast.Not):
            return sa.not_(self.node(node.item, scope, table))
        if isinstance(node, ast.Cond):
            spec = scope.field(node.field) if scope else self.registry.field(node.field)
            if spec is None:
                raise RuleError(f"unknown field {node.field!r}")
            return self.cond(spec, node, table)
        if isinstance(node, ast.Has):
            joined = self.aggregate("has", node.source, None)
            return joined.c.cid.isnot(None)
        if isinstance(node, ast.Agg):
            value = self.aggregate_value(node.func, node.source, node.field)
            return self.compare(value, node.op, node.value)
        if isinstance(node, ast.InSegment):
            return self.segment(node.name)
        raise TypeError(f"not a rule node: {node!r}")

    def segment(self, name: str) -> ColumnElement[bool]:
        if name in self.stack:
            circle = " → ".join([*self.stack, name])
            raise RuleError(f"segments refer to each other in a circle: {circle}")
        if len(self.stack) >= MAX_SEGMENT_DEPTH:
            raise RuleError(f"segments refer to segments more than {MAX_SEGMENT_DEPTH} deep")
        if self.resolve is None:
            raise RuleError(f"cannot evaluate segment {name!r} here")
        if name not in self.segments:
            self.stack.append(name)
            self.segments[name] = self.node(self.resolve(name), None)
            self.stack.pop()
        return self.segments[name]

    # --- collections ---------------------------------------------------------------------

    def rows_filter(self, source: ast.Source) -> tuple[Table, list[ColumnElement[bool]]]:
        collection = self.registry.collections[source.collection]
        table = TABLES[source.collection]
        conditions: list[ColumnElement[bool]] = []
        if source.collection in HOLDING_KIND:
            conditions.append(table.c.kind == HOLDING_KIND[source.collection])
        if source.name is not None:
            conditions.append(table.c.name == _text(source.name))
        if source.collection == "events" and "profiling" in table.c:
            conditions.append(table.c.profiling.is_(True))  # as loader.PROFILING
        if source.window is not None:
            bounds = moment_bounds(source.window, self.now, self.tz)
            conditions.append(_within(table.c[collection.time_field], bounds, "datetime"))
        if source.where is not None:
            conditions.append(self.node(source.where, collection, table))
        return table, conditions

    def aggregate(self, func: str, source: ast.Source, path: str | None) -> Any:
        """A derived table (cid, v): one row per customer with rows, LEFT JOINed once."""
        key = (func, source, path)
        if key in self.aggregates:
            return self.aggregates[key]
        table, conditions = self.rows_filter(source)
        if func == "has":
            columns = [table.c.customer_id.label("cid")]
        else:
            columns = [table.c.customer_id.label("cid"), self.aggregated(func, source, path, table)]
        derived = (
            sa.select(*columns)
            .where(*conditions)
            .group_by(table.c.customer_id)
            .subquery(f"a{len(self.aggregates) + 1}")
        )
        self.aggregates[key] = derived
        self.joins.append((derived, derived.c.cid == CUSTOMERS.c.id))
        return derived

    def aggregated(self, func: str, source: ast.Source, path: str | None, table: Table) -> Any:
        if func == "count":
            return sa.func.count().label("v")
        collection = self.registry.collections[source.collection]
        assert path is not None
        spec = collection.field(path)
        if spec is None:
            raise RuleError(f"unknown field {path!r}")
        if spec.source == "property":
            if func == "sum":
                return sa.func.sum(
                    sql_json.property_units(self.pg, table.c.properties, spec.column or "")
                ).label("v")
            value = sql_json.number(self.pg, table.c.properties, spec.column or "")
        elif func == "sum":
            scale = values.COLUMN_SCALE[spec.column or ""]
            return sa.func.sum(sa.func.round(table.c[spec.column] * scale)).label("v")
        else:
            value = table.c[spec.column]
        return (sa.func.min if func == "min" else sa.func.max)(value).label("v")

    def aggregate_value(self, func: str, source: ast.Source, path: str | None) -> _Value:
        derived = self.aggregate(func, source, path)
        if func == "count":
            return _Value(sa.func.coalesce(derived.c.v, 0), "number", 1, True)
        if func == "sum":
            scale = values.sum_scale(path or "")
            return _Value(sa.func.coalesce(derived.c.v, 0), "number", scale, True)
        spec = self.registry.collections[source.collection].field(path or "")
        if spec is None:
            raise RuleError(f"unknown field {path!r}")
        kind = "float" if spec.source == "property" else spec.type
        return _Value(derived.c.v, kind)

    # --- values --------------------------------------------------------------------------

    def value(self, spec: Field, table: Table, literal: object) -> _Value:
        if spec.source == "custom":
            assert spec.sql is not None
            # sql(dialect, customers table) -> an expression that is never NULL or is
            # NULL exactly when the value is missing (see consent_fields).
            expr = spec.sql("postgresql" if self.pg else "sqlite", table)
            return _Value(expr, spec.type, never_null=spec.never_null)
        if spec.source == "trait":
            assert spec.trait is not None
            func, collection, path, where = spec.trait
            found = self.aggregate_value(func, ast.Source(collection, None, where), path)
            return _Value(found.expr, spec.type, found.scale, found.integral)
        if spec.source == "source":
            name = sa.select(Source.name).where(Source.id == table.c.source_id).scalar_subquery()
            return _Value(sa.func.nullif(name, ""), "text")
        if spec.source == "property":
            key, column = spec.column or "", table.c.properties
            if isinstance(literal, bool):
                return _Value(sql_json.boolean(self.pg, column, key), "bool")
            if isinstance(literal, Decimal):
                return _Value(sql_json.number(self.pg, column, key), "float")
            return _Value(sa.func.nullif(sql_json.text(self.pg, column, key), ""), "text")
        column = table.c[spec.column]
        if spec.type == "text":
            return _Value(sa.func.nullif(column, ""), "text")
        return _Value(column, spec.type)

    def cond(self, spec: Field, cond: ast.Cond, table: Table) -> Any:
        if spec.source == "age":
            return self.age(cond)
        if spec.source == "birthday":
            return self.birthday(cond)
        if spec.source == "property" and cond.op in ast.PRESENCE_OPS:
            present = sql_json.present(self.pg, table.c.properties, spec.column or "")
            return present if cond.op == "is set" else sa.not_(present)
        sample = cond.value[0] if isinstance(cond.value, tuple) else cond.value
        value = self.value(spec, table, sample)
        if cond.op == ast.WITHIN:
            assert isinstance(cond.value, Window)  # type: ignore[arg-type]
            if value.kind == "date":
                bounds = date_bounds(cond.value, self.now, self.tz)  # type: ignore[arg-type]
            else:
                bounds = moment_bounds(cond.value, self.now, self.tz)  # type: ignore[arg-type]
            return sa.and_(value.expr.isnot(None), _within(value.expr, bounds, value.kind))
        return self.compare(value, cond.op, cond.value)

    def compare(self, value: _Value, op: str, literal: Any) -> Any:
        expr = value.expr
        if op == "is set":
            return expr.isnot(None)
        if op == "is empty":
            return expr.is_(None)
        if value.kind == "datetime":
            return self.moment_vs_days(expr, op, literal)
        if value.integral:
            return _whole(expr, op, literal, value.scale)
        if op in ast.TEXT_OPS:
            return sa.and_(expr.isnot(None), self.text_op(expr, op, literal))
        if op in ast.LIST_OPS:
            options = [self.param(value, v) for v in literal]
            inside = expr.in_(options)
            tested = inside if op == "in" else sa.not_(inside)
            return tested if value.never_null else sa.and_(expr.isnot(None), tested)
        if value.kind == "text" and op in ("<", "<=", ">", ">=") and self.pg:
            expr = expr.collate("C")  # code point order, as SQLite and Python compare
        compared = expr.operate(_OPERATORS[op], self.param(value, literal))
        return compared if value.never_null else sa.and_(value.expr.isnot(None), compared)

    def param(self, value: _Value, literal: Any) -> Any:
        if value.kind == "bool":
            return sa.literal(1 if literal else 0, sa.Integer())
        if value.kind == "float":
            return sa.literal(float(literal), sa.Float())
        if value.kind == "number":
            return sa.literal(literal, sa.Numeric())
        if value.kind == "date":
            return sa.literal(literal, sa.Date())
        return sa.literal(literal, sa.String())

    def text_op(self, expr: Any, op: str, needle: str) -> Any:
        text = sa.literal(needle, sa.String())
        if op == "contains":
            position = sa.func.strpos if self.pg else sa.func.instr
            return position(expr, text) > 0
        n = len(needle)
        if op == "starts with":
            return sa.func.substr(expr, 1, n) == text
        start = sa.func.length(expr) - n + 1
        return sa.and_(sa.func.length(expr) >= n, sa.func.substr(expr, start) == text)

    def moment_vs_days(self, expr: Any, op: str, literal: Any) -> Any:
        def on(day: date, how: str) -> Any:
            return _within(expr, day_bounds(how, day, self.tz), "datetime")

        if op in ("=", "in", "!=", "not in"):
            days = literal if isinstance(literal, tuple) else (literal,)
            hit = sa.or_(*(on(d, "=") for d in days))
            return sa.and_(expr.isnot(None), hit if op in ("=", "in") else sa.not_(hit))
        return sa.and_(expr.isnot(None), on(literal, op))

    # --- age and birthdays ---------------------------------------------------------------

    def age(self, cond: ast.Cond) -> Any:
        birth = CUSTOMERS.c.birth_date
        if cond.op in ast.PRESENCE_OPS:
            return birth.isnot(None) if cond.op == "is set" else birth.is_(None)
        current = today(self.now, self.tz)

        def at_least(years: int) -> Any:
            limit = birth_date_limit(current, years)
            if limit is True:
                return birth.isnot(None)
            if limit is False:
                return FALSE
            return birth <= sa.literal(limit, sa.Date())

        present = birth.isnot(None)
        # Every branch under `present`: without it a missing birth date makes the
        # condition NULL, and NOT NULL is not true, as it is in Python.
        return sa.and_(present, self._age_test(cond.op, cond.value, at_least))

    @staticmethod
    def _age_test(op: str, x: Any, at_least: Callable[[int], Any]) -> Any:
        def equals(v: Decimal) -> Any:
            if v != v.to_integral_value():
                return FALSE
            return sa.and_(at_least(int(v)), sa.not_(at_least(int(v) + 1)))

        if op in ast.LIST_OPS:
            hit = sa.or_(*(equals(v) for v in x))
            return hit if op == "in" else sa.not_(hit)
        if op == "=":
            return equals(x)
        if op == "!=":
            return sa.not_(equals(x))
        if op == ">=":
            return at_least(math.ceil(x))
        if op == ">":
            return at_least(math.floor(x) + 1)
        if op == "<":
            return sa.not_(at_least(math.ceil(x)))
        return sa.not_(at_least(math.floor(x) + 1))  # <=

    def birthday(self, cond: ast.Cond) -> Any:
        birth = CUSTOMERS.c.birth_date
        if cond.op in ast.PRESENCE_OPS:
            return birth.isnot(None) if cond.op == "is set" else birth.is_(None)
        days = month_days(cond.value, self.now, self.tz)  # type: ignore[arg-type]
        if days is None:
            return birth.isnot(None)
        pg, sqlite = sa.func.to_char(birth, "MM-DD"), sa.func.strftime("%m-%d", birth)
        month_day = pg if self.pg else sqlite
        return sa.and_(birth.isnot(None), month_day.in_(sorted(days)))


def _whole(expr: Any, op: str, literal: Any, scale: int) -> Any:
    """A whole number (a count, a sum in units) compared with whole numbers only, so that no
    database rounds a fraction in a parameter: n > 2.5 is n >= 3."""
    if op in ast.LIST_OPS:
        options = [int(x * scale) for x in literal if x * scale == int(x * scale)]
        inside = expr.in_(options) if options else FALSE
        return inside if op == "in" else sa.not_(inside)
    x = literal * scale
    whole = x == x.to_integral_value()
    if op == "=":
        return expr == int(x) if whole else FALSE
    if op == "!=":
        return expr != int(x) if whole else TRUE
    if op == ">":
        return expr >= math.floor(x) + 1
    if op == ">=":
        return expr >= math.ceil(x)
    if op == "<":
        return expr <= math.ceil(x) - 1
    return expr <= math.floor(x)


_OPERATORS = {
    "=": sa.sql.operators.eq,
    "!=": sa.sql.operators.ne,
    "<": sa.sql.operators.lt,
    "<=": sa.sql.operators.le,
    ">": sa.sql.operators.gt,
    ">=": sa.sql.operators.ge,
}


def _text(value: str) -> Any:
    return sa.literal(value, sa.String())


def _within(expr: Any, bounds: Bounds, kind: str) -> Any:
    type_: Any = sa.Date() if kind == "date" else UTCDateTime()
    parts = []
    if bounds.lo is not None:
        lo = sa.literal(bounds.lo, type_)
        parts.append(expr >= lo if bounds.lo_inclusive else expr > lo)
    if bounds.hi is not None:
        hi = sa.literal(bounds.hi, type_)
        parts.append(expr <= hi if bounds.hi_inclusive else expr < hi)
    return sa.and_(*parts) if parts else TRUE
