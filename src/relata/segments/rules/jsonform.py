"""The tree as JSON for the UI and the API, and back, refusing anything it does not know.

    {"and": [node, node, …]}   {"or": [node, node, …]}   {"not": node}
    {"field": "age", "op": ">", "value": 30}
    {"field": "birth_date", "op": "<", "value": {"date": "1990-01-01"}}
    {"field": "gender", "op": "in", "value": ["f", "d"]}
    {"field": "email", "op": "is set"}
    {"field": "created_at", "op": "within", "value": {"last": 30, "unit": "days"}}
    {"has": source}
    {"agg": "sum", "field": "amount", "of": source, "op": ">", "value": 500}
    {"segment": "Stammkunden"}
    source = {"collection": "events", "name": "Order Completed", "where": node, "window": window}
    window = {"last": 90, "unit": "days"} | {"next": 7, "unit": "days"} | {"since": "2025-06-01"}
           | {"before": "2025-06-01"} | {"between": ["2025-01-01", "2025-03-31"]} | {"this": "year"}

Dates are wrapped ({"date": …}) so that a date and a text that looks like one stay apart.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from relata.segments.rules import ast
from relata.segments.rules.ast import Node, Source, Window
from relata.segments.rules.errors import RuleError, RuleSyntaxError
from relata.segments.rules.lexer import number
from relata.segments.rules.limits import (
    MAX_AMOUNT,
    MAX_DEPTH,
    MAX_LIST,
    MAX_NODES,
    MAX_STRING,
)
from relata.segments.rules.parser import KEYWORDS, NAME_PART

Json = Any
_FIELD_FIRST = re.compile(r"[^\W\d]\w*\Z")


# --- tree → JSON ---------------------------------------------------------------------------


def to_json(node: Node) -> Json:
    if isinstance(node, ast.And):
        return {"and": [to_json(i) for i in node.items]}
    if isinstance(node, ast.Or):
        return {"or": [to_json(i) for i in node.items]}
    if isinstance(node, ast.Not):
        return {"not": to_json(node.item)}
    if isinstance(node, ast.Cond):
        out: dict[str, Json] = {"field": node.field, "op": node.op}
        if node.op == ast.WITHIN:
            out["value"] = window_json(node.value)  # type: ignore[arg-type]
        elif isinstance(node.value, tuple):
            out["value"] = [_scalar_json(v) for v in node.value]
        elif node.value is not None:
            out["value"] = _scalar_json(node.value)  # type: ignore[arg-type]
        return out
    if isinstance(node, ast.Has):
        return {"has": _source_json(node.source)}
    if isinstance(node, ast.Agg):
        agg: dict[str, Json] = {"agg": node.func}
        if node.field is not None:
            agg["field"] = node.field
        agg.update({"of": _source_json(node.source), "op": node.op})
        agg["value"] = _number_json(node.value)
        return agg
    if isinstance(node, ast.InSegment):
        return {"segment": node.name}
    raise TypeError(f"not a rule node: {node!r}")


def _source_json(source: Source) -> Json:
    out: dict[str, Json] = {"collection": source.collection}
    if source.name is not None:
        out["name"] = source.name
    if source.where is not None:
        out["where"] = to_json(source.where)
    if source.window is not None:
        out["window"] = window_json(source.window)
    return out


def window_json(w: Window) -> Json:
    if isinstance(w, ast.Last):
        return {"last": w.amount, "unit": w.unit}
    if isinstance(w, ast.Next):
        return {"next": w.amount, "unit": w.unit}
    if isinstance(w, ast.Since):
        return {"since": w.day.isoformat()}
    if isinstance(w, ast.Before):
        return {"before": w.day.isoformat()}
    if isinstance(w, ast.Between):
        return {"between": [w.first.isoformat(), w.last.isoformat()]}
    return {"this": w.period}


def _scalar_json(value: ast.Scalar) -> Json:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return _number_json(value)
    return {"date": value.isoformat()}


def _number_json(value: Decimal) -> int | float:
    # At most 15 significant digits (see limits): a double holds them exactly.
    return int(value) if value == value.to_integral_value() else float(value)


# --- JSON → tree ---------------------------------------------------------------------------


def from_json(data: Json) -> Node:
    """The tree of a rule in its JSON form; raises RuleError naming the place (``and.1.op``)."""
    reader = _Reader()
    return reader.node(data, "", 0)


class _Reader:
    def __init__(self) -> None:
        self.nodes = 0

    def fail(self, path: str, message: str) -> RuleError:
        return RuleError(message, path=path or "rule")

    def node(self, data: Json, path: str, level: int) -> Node:
        if level > MAX_DEPTH:
            raise self.fail(path, f"the rule is nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(path, f"the rule has more than {MAX_NODES} conditions")
        if not isinstance(data, dict):
            raise self.fail(path, 'expected an object like {"field": …} or {"and": […]}')
        for key, build in (
            ("and", self.group),
            ("or", self.group),
            ("not", self.negation),
            ("agg", self.agg),  # before "field": sum/min/max have one too
            ("has", self.has),
            ("segment", self.segment),
            ("field", self.cond),
        ):
            if key in data:
                return build(key, data, path, level)
        raise self.fail(path, "expected one of the keys and, or, not, field, has, agg, segment")

    def keys(self, data: dict[str, Json], path: str, allowed: set[str]) -> None:
        extra = sorted(set(data) - allowed)
        if extra:
            expected = ", ".join(sorted(allowed))
            raise self.fail(path, f"unknown key {extra[0]!r}; expected {expected}")

    def group(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {key})
        items = data[key]
        where = _join(path, key)
        if not isinstance(items, list) or len(items) < 2:
            raise self.fail(where, f"an '{key}' group needs a list of at least two conditions")
        nodes = tuple(self.node(item, _join(where, i), level + 1) for i, item in enumerate(items))
        return ast.And(nodes) if key == "and" else ast.Or(nodes)

    def negation(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {"not"})
        return ast.Not(self.node(data["not"], _join(path, "not"), level + 1))

    def segment(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {"segment"})
        return ast.InSegment(self.text(data["segment"], _join(path, "segment")))

    def cond(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {"field", "op", "value"})
        name = self.field(data["field"], _join(path, "field"))
        op = data.get("op")
        if op not in ast.FIELD_OPS:
            known = ", ".join(ast.FIELD_OPS)
            raise self.fail(_join(path, "op"), f"unknown operator {op!r}; expected one of {known}")
        value_path = _join(path, "value")
        if op in ast.PRESENCE_OPS:
            if "value" in data:
                raise self.fail(value_path, f"'{op}' takes no value")
            return ast.Cond(name, op)
        if "value" not in data:
            raise self.fail(value_path, f"'{op}' needs a value")
        raw = data["value"]
        if op == ast.WITHIN:
            return ast.Cond(name, op, self.window(raw, value_path))
        if op in ast.LIST_OPS:
            if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LIST:
                raise self.fail(value_path, f"'{op}' needs a list of 1 to {MAX_LIST} values")
            return ast.Cond(
                name, op, tuple(self.scalar(v, _join(value_path, i)) for i, v in enumerate(raw))
            )
        if op in ast.TEXT_OPS:
            return ast.Cond(name, op, self.text(raw, value_path))
        return ast.Cond(name, op, self.scalar(raw, value_path))

    def has(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {"has"})
        return ast.Has(self.source(data["has"], _join(path, "has"), level))

    def agg(self, key: str, data: dict[str, Json], path: str, level: int) -> Node:
        self.keys(data, path, {"agg", "field", "of", "op", "value"})
        func = data["agg"]
        if func not in ast.AGGREGATES:
            raise self.fail(_join(path, "agg"), f"expected one of {', '.join(ast.AGGREGATES)}")
        name = None
        if func != "count":
            if "field" not in data:
                raise self.fail(_join(path, "field"), f"{func} needs the field to {func}")
            name = self.field(data["field"], _join(path, "field"))
        elif "field" in data:
            raise self.fail(_join(path, "field"), "count takes no field")
        if "of" not in data:
            raise self.fail(_join(path, "of"), "expected the source of the rows to aggregate")
        source = self.source(data["of"], _join(path, "of"), level)
        op = data.get("op")
        if op not in ast.COMPARISONS:
            raise self.fail(_join(path, "op"), f"expected one of {', '.join(ast.COMPARISONS)}")
        value = self.scalar(data.get("value"), _join(path, "value"))
        if not isinstance(value, Decimal):
            raise self.fail(_join(path, "value"), "expected a number")
        return ast.Agg(func, source, name, op, value)

    def source(self, data: Json, path: str, level: int) -> Source:
        if not isinstance(data, dict):
            raise self.fail(path, 'expected an object like {"collection": "purchases"}')
        self.keys(data, path, {"collection", "name", "where", "window"})
        collection = data.get("collection")
        if collection not in ast.COLLECTIONS:
            known = ", ".join(ast.COLLECTIONS)
            raise self.fail(_join(path, "collection"), f"expected one of {known}")
        name = None
        if data.get("name") is not None:
            if collection != "events":
                raise self.fail(_join(path, "name"), "only events have a name")
            name = self.text(data["name"], _join(path, "name"))
        where = None
        if data.get("where") is not None:
            where = self.node(data["where"], _join(path, "where"), level + 1)
        window = None
        if data.get("window") is not None:
            window = self.window(data["window"], _join(path, "window"))
        return Source(collection, name, where, window)

    def window(self, data: Json, path: str) -> Window:
        if not isinstance(data, dict):
            raise self.fail(path, 'expected a time window like {"last": 90, "unit": "days"}')
        if "last" in data or "next" in data:
            key = "last" if "last" in data else "next"
            self.keys(data, path, {key, "unit"})
            amount = data[key]
            whole = isinstance(amount, int) and not isinstance(amount, bool)
            if not whole or not 0 <= amount <= MAX_AMOUNT:
                raise self.fail(_join(path, key), f"expected a whole number from 0 to {MAX_AMOUNT}")
            unit = data.get("unit")
            if unit not in ast.UNITS:
                raise self.fail(_join(path, "unit"), f"expected one of {', '.join(ast.UNITS)}")
            return ast.Last(amount, unit) if key == "last" else ast.Next(amount, unit)
        for key, cls in (("since", ast.Since), ("before", ast.Before)):
            if key in data:
                self.keys(data, path, {key})
                return cls(self.date(data[key], _join(path, key)))
        if "between" in data:
            self.keys(data, path, {"between"})
            pair = data["between"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(_join(path, "between"), "expected two dates")
            where = _join(path, "between")
            first, last = (self.date(d, _join(where, i)) for i, d in enumerate(pair))
            if last < first:
                raise self.fail(_join(path, "between"), "the second date is before the first")
            return ast.Between(first, last)
        if "this" in data:
            self.keys(data, path, {"this"})
            if data["this"] not in ast.PERIODS:
                raise self.fail(_join(path, "this"), f"expected one of {', '.join(ast.PERIODS)}")
            return ast.This(data["this"])
        raise self.fail(path, "expected one of the keys last, next, since, before, between, this")

    def scalar(self, data: Json, path: str) -> ast.Scalar:
        if isinstance(data, bool):
            return data
        if isinstance(data, str):
            return self.text(data, path)
        if isinstance(data, int | float):
            try:
                return number(repr(data) if isinstance(data, float) else str(data))
            except RuleSyntaxError as exc:
                raise self.fail(path, exc.message) from None
        if isinstance(data, dict) and set(data) == {"date"}:
            return self.date(data["date"], _join(path, "date"))
        raise self.fail(path, 'expected a text, a number, true/false or {"date": "YYYY-MM-DD"}')

    def text(self, data: Json, path: str) -> str:
        if not isinstance(data, str):
            raise self.fail(path, "expected a text")
        if len(data) > MAX_STRING:
            raise self.fail(path, f"a text value is longer than {MAX_STRING} characters")
        if "\x00" in data:
            raise self.fail(path, "a text value contains a NUL character")
        return data

    def date(self, data: Json, path: str) -> date:
        if isinstance(data, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", data):
            try:
                return date.fromisoformat(data)
            except ValueError:
                pass
        raise self.fail(path, f"expected a date as YYYY-MM-DD, got {str(data)[:40]!r}")

    def field(self, data: Json, path: str) -> str:
        if not isinstance(data, str):
            raise self.fail(path, "expected a field name")
        first, *rest = data.split(".")
        if (
            not _FIELD_FIRST.match(first)
            or first.lower() in KEYWORDS
            or not all(NAME_PART.fullmatch(p) for p in rest)
        ):
            raise self.fail(path, f"not a field name: {data[:80]!r}")
        return data


def _join(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)
