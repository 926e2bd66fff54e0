"""A checked rule as a Python closure over one in-memory customer (real-time evaluation).

``compile_rule(node, registry, resolve)`` returns ``Compiled``; ``compiled(profile, ctx)``
answers in microseconds. ``ctx`` carries ``now`` and caches what depends only on it (the
bounds of every time window), so one ``Context`` serves many customers and segments.
Semantics of missing values, text and numbers: ``relata.segments.values``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from relata.segments import values
from relata.segments.profile import Profile
from relata.segments.rules import ast
from relata.segments.rules.ast import Node, Window
from relata.segments.rules.errors import RuleError
from relata.segments.rules.limits import MAX_SEGMENT_DEPTH
from relata.segments.rules.registry import Collection, Field, Registry
from relata.segments.rules.timing import (
    BERLIN,
    Bounds,
    date_bounds,
    day_bounds,
    moment_bounds,
    month_days,
    today,
)

Pred = Callable[[Any, "Context"], bool]
Getter = Callable[[Any, "Context"], Any]
Resolve = Callable[[str], Node]
OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass
class Context:
    """``now`` for one round of evaluations, and what is worked out from it once."""

    now: datetime
    tz: tzinfo = BERLIN
    today: date = field(init=False)
    _cache: dict[Any, Any] = field(default_factory=dict, init=False)
    # Segment results per (segment, customer): a segment used by ten others is run once.
    memo: dict[tuple[str, int], bool] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.today = today(self.now, self.tz)

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        found = self._cache.get(key, _MISSING)
        if found is _MISSING:
            found = self._cache[key] = make()
        return found


_MISSING = object()


@dataclass(frozen=True)
class Compiled:
    pred: Pred
    segments: frozenset[str]  # every segment it reads, directly or through others

    def __call__(self, profile: Profile, ctx: Context) -> bool:
        return self.pred(profile, ctx)


def compile_rule(
    node: Node, registry: Registry, resolve: Resolve | None = None, name: str | None = None
) -> Compiled:
    """``name`` is the segment being compiled, so that a rule reading itself is refused."""
    compiler = _Compiler(registry, resolve)
    if name is not None:
        compiler.stack.append(name)
    return Compiled(compiler.node(node, None), frozenset(compiler.used))


class _Compiler:
    def __init__(self, registry: Registry, resolve: Resolve | None) -> None:
        self.registry = registry
        self.resolve = resolve
        self.stack: list[str] = []
        self.used: set[str] = set()
        self.segments: dict[str, Pred] = {}

    # --- structure -----------------------------------------------------------------------

    def node(self, node: Node, scope: Collection | None) -> Pred:
        if isinstance(node, ast.And):
            parts = tuple(self.node(i, scope) for i in node.items)
            return lambda s, c: all(p(s, c) for p in parts)
        if isinstance(node, ast.Or):
            parts = tuple(self.node(i, scope) for i in node.items)
            return lambda s, c: any(p(s, c) for p in parts)
        if isinstance(node, ast.Not):
            inner = self.node(node.item, scope)
            return lambda s, c: not inner(s, c)
        if isinstance(node, ast.Cond):
            return self.cond(node, scope)
        if isinstance(node, ast.Has):
            rows = self.rows(node.source)
            return lambda s, c: any(True for _ in rows(s, c))
        if isinstance(node, ast.Agg):
            value = self.aggregate(node.func, node.source, node.field)
            return _compare_number(value, node.op, node.value, node.func, node.field, node.source)
        if isinstance(node, ast.InSegment):
            return self.segment(node.name)
        raise TypeError(f"not a rule node: {node!r}")

    def segment(self, name: str) -> Pred:
        if name in self.stack:
            circle = " → ".join([*self.stack, name])
            raise RuleError(f"segments refer to each other in a circle: {circle}")
        if len(self.stack) >= MAX_SEGMENT_DEPTH:
            raise RuleError(f"segments refer to segments more than {MAX_SEGMENT_DEPTH} deep")
        if self.resolve is None:
            raise RuleError(f"cannot evaluate segment {name!r} here")
        if name not in self.segments:
            self.stack.append(name)
            inner = self.node(self.resolve(name), None)
            self.stack.pop()
            self.segments[name] = inner
        self.used.add(name)
        inner = self.segments[name]

        def in_segment(p: Profile, c: Context) -> bool:
            key = (name, p.id)
            found = c.memo.get(key)
            if found is None:
                found = c.memo[key] = inner(p, c)
            return found

        return in_segment

    # --- rows of collections and their aggregates ---------------------------------------

    def rows(self, source: ast.Source) -> Callable[[Profile, Context], Any]:
        collection = self.registry.collections[source.collection]
        where = self.node(source.where, collection) if source.where is not None else None
        name, window, kind = source.name, source.window, source.collection
        time_field = collection.time_field

        def rows(p: Profile, c: Context) -> Any:
            bounds = _moment_window(window, c) if window else None
            for row in p.rows(kind):
                if name is not None and row.name != name:
                    continue
                if bounds is not None and not bounds.contains(getattr(row, time_field)):
                    continue
                if where is not None and not where(row, c):
                    continue
                yield row

        return rows

    def aggregate(self, func: str, source: ast.Source, path: str | None) -> Getter:
        rows = self.rows(source)
        if func == "count":
            return lambda p, c: sum(1 for _ in rows(p, c))
        collection = self.registry.collections[source.collection]
        assert path is not None
        spec = collection.field(path)
        if spec is None:
            raise RuleError(f"unknown field {path!r}")
        if spec.source == "property":
            key = spec.column
            each = (
                (lambda r: values.property_units(r.properties.get(key)))
                if func == "sum"
                else (lambda r: values.json_number(r.properties.get(key)))
            )
        elif func == "sum":
            column, scale = spec.column, values.COLUMN_SCALE[spec.column or ""]
            each = lambda r: values.column_units(getattr(r, column), scale)  # noqa: E731
        else:
            column = spec.column
            each = lambda r: getattr(r, column)  # noqa: E731
        if func == "sum":
            return lambda p, c: sum(v for r in rows(p, c) if (v := each(r)) is not None)
        pick = min if func == "min" else max

        def extreme(p: Profile, c: Context) -> Any:
            found = [v for r in rows(p, c) if (v := each(r)) is not None]
            return pick(found) if found else None

        return extreme

    # --- conditions on one value --------------------------------------------------------

    def cond(self, cond: ast.Cond, scope: Collection | None) -> Pred:
        spec = scope.field(cond.field) if scope else self.registry.field(cond.field)
        if spec is None:
            raise RuleError(f"unknown field {cond.field!r}")
        if spec.source == "age":
            return _age(cond)
        if spec.source == "birthday":
            return _birthday(cond)
        get = self.getter(spec, in_row=scope is not None)
        if cond.op == "is set":
            return lambda s, c: get(s, c) is not None
        if cond.op == "is empty":
            return lambda s, c: get(s, c) is None
        test = _test(spec, cond)
        return lambda s, c: (v := get(s, c)) is not None and test(v, c)

    def getter(self, spec: Field, in_row: bool) -> Getter:
        """The value of a field; None when missing (empty text counts as missing)."""
        if spec.source == "custom":
            assert spec.py is not None
            py = spec.py
            return lambda s, c: _present(py(s))
        if spec.source == "property":
            key = spec.column
            return lambda s, c: _present(s.properties.get(key))
        if spec.source == "trait":
            assert spec.trait is not None
            func, collection, path, where = spec.trait
            value = self.aggregate(func, ast.Source(collection, None, where), path)
            if func == "sum":
                scale = Decimal(values.COLUMN_SCALE[path or ""])
                return lambda s, c: Decimal(value(s, c)) / scale
            return value
        if spec.source == "source":
            return lambda s, c: _present(s.source)
        column = spec.column
        assert column is not None
        if in_row:
            return lambda s, c: _present(getattr(s, column))
        return lambda s, c: _present(s.fields.get(column))


def _present(value: Any) -> Any:
    return None if value is None or value == "" else value


def _test(spec: Field, cond: ast.Cond) -> Callable[[Any, Context], bool]:
    """A test of a present value."""
    op, value = cond.op, cond.value
    if op == ast.WITHIN:
        return _within(spec.type, value)  # type: ignore[arg-type]
    if spec.type == "datetime":
        return _moment_vs_day(op, value)
    if spec.type == "dynamic":
        return _dynamic(op, value)
    if op in ast.TEXT_OPS:
        assert isinstance(value, str)
        return _text_op(op, value)
    if op in ast.LIST_OPS:
        assert isinstance(value, tuple)
        options = set(value)
        if op == "in":
            return lambda v, c: v in options
        return lambda v, c: v not in options
    compare = OPS[op]
    return lambda v, c: compare(v, value)


def _text_op(op: str, needle: str) -> Callable[[Any, Context], bool]:
    if op == "contains":
        return lambda v, c: isinstance(v, str) and needle in v
    if op == "starts with":
        return lambda v, c: isinstance(v, str) and v.startswith(needle)
    return lambda v, c: isinstance(v, str) and v.endswith(needle)


def _moment_window(window: Window, c: Context) -> Bounds:
    # Keyed by the window object itself (identity, not value): hashing a dataclass's
    # fields on every row of every customer costs more than the bounds would.
    key = (id(window), "moment")
    found = c._cache.get(key)
    if found is None:
        found = c._cache[key] = moment_bounds(window, c.now, c.tz)
    return found


def _date_window(window: Window, c: Context) -> Bounds:
    key = (id(window), "date")
    found = c._cache.get(key)
    if found is None:
        found = c._cache[key] = date_bounds(window, c.now, c.tz)
    return found


def _within(kind: str, window: Window) -> Callable[[Any, Context], bool]:
    if kind == "date":
        return lambda v, c: _date_window(window, c).contains(v)
    return lambda v, c: _moment_window(window, c).contains(v)


def _moment_vs_day(op: str, value: object) -> Callable[[Any, Context], bool]:
    """A point in time compared with calendar days (``created_at = 2025-06-01``: that day)."""
    days = value if isinstance(value, tuple) else (value,)

    def on(day: date, c: Context) -> Bounds:
        return c.once(("day", "=", day), lambda: day_bounds("=", day, c.tz))

    if op in ("=", "in"):
        return lambda v, c: any(on(d, c).contains(v) for d in days)  # type: ignore[arg-type]
    if op in ("!=", "not in"):
        return lambda v, c: not any(on(d, c).contains(v) for d in days)  # type: ignore[arg-type]
    day = days[0]
    assert isinstance(day, date)
    return lambda v, c: c.once(("day", op, day), lambda: day_bounds(op, day, c.tz)).contains(v)


def _dynamic(op: str, value: object) -> Callable[[Any, Context], bool]:
    """A JSON property: the kind of the value compared with decides how (see values.py)."""
    first = value[0] if isinstance(value, tuple) else value
    if isinstance(first, bool):
        read: Callable[[Any], Any] = lambda v: v if isinstance(v, bool) else None  # noqa: E731
        literal: Any = value
    elif isinstance(first, Decimal):
        read = values.json_number
        literal = tuple(float(x) for x in value) if isinstance(value, tuple) else float(value)  # type: ignore[arg-type]
    else:
        read = values.present_text
        literal = value
    if op in ast.TEXT_OPS:
        text_test = _text_op(op, str(value))
        return lambda v, c: text_test(read(v), c)
    if op in ast.LIST_OPS:
        options = set(literal)
        inside = op == "in"
        return lambda v, c: (x := read(v)) is not None and (x in options) == inside
    compare = OPS[op]
    return lambda v, c: (x := read(v)) is not None and compare(x, literal)


def _compare_number(
    value: Getter, op: str, limit: Decimal, func: str, path: str | None, source: ast.Source
) -> Pred:
    compare = OPS[op]
    if func == "sum":
        # Sums are kept in units (cents, thousandths): compare with the limit in units too.
        scaled = limit * values.sum_scale(path or "")
        return lambda p, c: compare(value(p, c), scaled)
    if func in ("min", "max") and path and path.startswith("properties."):
        as_float = float(limit)
        return lambda p, c: (v := value(p, c)) is not None and compare(v, as_float)
    return lambda p, c: (v := value(p, c)) is not None and compare(v, limit)


def _age(cond: ast.Cond) -> Pred:
    """Age in whole years on today's date (in relata's time zone)."""
    op, value = cond.op, cond.value

    def age_of(p: Profile, c: Context) -> int | None:
        birth = p.fields.get("birth_date")
        if not isinstance(birth, date):
            return None
        t = c.today
        return t.year - birth.year - ((t.month, t.day) < (birth.month, birth.day))

    if op == "is set":
        return lambda p, c: age_of(p, c) is not None
    if op == "is empty":
        return lambda p, c: age_of(p, c) is None
    if op in ast.LIST_OPS:
        options = set(value)  # type: ignore[arg-type]
        inside = op == "in"
        return lambda p, c: (a := age_of(p, c)) is not None and (a in options) == inside
    compare = OPS[op]
    return lambda p, c: (a := age_of(p, c)) is not None and compare(Decimal(a), value)


def _birthday(cond: ast.Cond) -> Pred:
    def birth(p: Profile) -> date | None:
        found = p.fields.get("birth_date")
        return found if isinstance(found, date) else None

    if cond.op == "is set":
        return lambda p, c: birth(p) is not None
    if cond.op == "is empty":
        return lambda p, c: birth(p) is None
    window = cond.value
    assert isinstance(window, ast.Last | ast.Next | ast.This)

    def test(p: Profile, c: Context) -> bool:
        b = birth(p)
        if b is None:
            return False
        days = c.once(("birthday", window), lambda: month_days(window, c.now, c.tz))
        return days is None or f"{b.month:02d}-{b.day:02d}" in days

    return test
