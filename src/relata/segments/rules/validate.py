"""Checking a tree against the registry: unknown fields and type mismatches are refused when
a rule is saved, so that the compilers never meet them."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from relata.segments.rules import ast
from relata.segments.rules.ast import Node
from relata.segments.rules.errors import RuleError
from relata.segments.rules.registry import Collection, Field, Registry

ORDERED = ("<", "<=", ">", ">=")
TYPE_NAMES = {str: "a text", Decimal: "a number", bool: "true or false", date: "a date"}


class RuleInvalid(RuleError):
    """A well-formed rule that speaks of something unknown or compares unlike things."""

    def __init__(self, message: str, node: object, path: str) -> None:
        super().__init__(message, path=path or "rule")
        self.node = node


def validate(
    node: Node, registry: Registry, segment_exists: Callable[[str], bool] | None = None
) -> None:
    """Raise RuleInvalid for the first condition that cannot be evaluated."""
    _Checker(registry, segment_exists).node(node, "", None)


class _Checker:
    def __init__(self, registry: Registry, segment_exists: Callable[[str], bool] | None) -> None:
        self.registry = registry
        self.segment_exists = segment_exists

    def node(self, node: Node, path: str, scope: Collection | None) -> None:
        if isinstance(node, ast.And | ast.Or):
            key = "and" if isinstance(node, ast.And) else "or"
            if len(node.items) < 2:
                raise RuleInvalid(f"an '{key}' group needs at least two conditions", node, path)
            for i, item in enumerate(node.items):
                self.node(item, _join(path, f"{key}.{i}"), scope)
        elif isinstance(node, ast.Not):
            self.node(node.item, _join(path, "not"), scope)
        elif isinstance(node, ast.Cond):
            self.cond(node, path, scope)
        elif scope is not None:
            raise RuleInvalid(
                f"a filter of {scope.name} speaks of one row; it cannot hold 'has', "
                "'count(…)' or 'in segment'",
                node,
                path,
            )
        elif isinstance(node, ast.Has):
            self.source(node.source, node, _join(path, "has"))
        elif isinstance(node, ast.Agg):
            self.agg(node, path)
        elif isinstance(node, ast.InSegment):
            if self.segment_exists is not None and not self.segment_exists(node.name):
                raise RuleInvalid(f"there is no segment {node.name!r}", node, path)
        else:
            raise RuleInvalid(f"not a rule node: {type(node).__name__}", node, path)

    def source(self, source: ast.Source, node: Node, path: str) -> Collection:
        collection = self.registry.collections.get(source.collection)
        if collection is None:
            raise RuleInvalid(f"unknown collection {source.collection!r}", node, path)
        if source.name is not None and source.collection != "events":
            raise RuleInvalid("only events have a name", node, path)
        if source.where is not None:
            self.node(source.where, _join(path, "where"), collection)
        return collection

    def agg(self, node: ast.Agg, path: str) -> None:
        collection = self.source(node.source, node, _join(path, "of"))
        if node.func == "count":
            if node.field is not None:
                raise RuleInvalid("count takes no field", node, path)
            return
        if node.field is None:
            raise RuleInvalid(f"{node.func} needs a field", node, path)
        found = collection.field(node.field)
        if found is None:
            raise RuleInvalid(self.unknown(node.field, collection), node, _join(path, "field"))
        if found.type not in ("number", "dynamic"):
            raise RuleInvalid(
                f"{node.func} needs a number field; {node.field} is {found.type}",
                node,
                _join(path, "field"),
            )

    def cond(self, cond: ast.Cond, path: str, scope: Collection | None) -> None:
        found = scope.field(cond.field) if scope else self.registry.field(cond.field)
        if found is None:
            raise RuleInvalid(self.unknown(cond.field, scope), cond, _join(path, "field"))
        problem = _type_problem(found, cond)
        if problem:
            raise RuleInvalid(problem, cond, _join(path, "value"))

    def unknown(self, name: str, scope: Collection | None) -> str:
        known = list(scope.fields) if scope else list(self.registry.fields)
        where = f" of {scope.name}" if scope else ""
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        if scope is not None and scope.has_properties and not close:
            hint = f"; event properties are written properties.{name}"
        return f"unknown field {name!r}{where}{hint}"


def _type_problem(f: Field, cond: ast.Cond) -> str | None:
    op, value = cond.op, cond.value
    if op in ast.PRESENCE_OPS:
        return None
    if op == ast.WITHIN:
        return _window_problem(f, value)
    if f.type == "anniversary":
        return f"{f.name} takes a time window like 'in next 7 days' or 'this month'"
    values = value if isinstance(value, tuple) else (value,)
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        return "the values of a list must all be of one kind"
    kind = kinds.pop()
    expected = _expected(f, kind)
    if expected is not None:
        return f"{f.name} is compared with {expected}, not {TYPE_NAMES[kind]}"
    if op in ast.TEXT_OPS and kind is not str:
        return f"'{op}' needs a text"
    if kind is bool and op not in ("=", "!="):
        return "true and false are compared with = or != only"
    if f.choices is not None:
        if op in ORDERED or op in ast.TEXT_OPS:
            return f"{f.name} is one of {', '.join(f.choices)}; compare it with =, != or in"
        wrong = [v for v in values if v not in f.choices]
        if wrong:
            return f"{f.name} is one of {', '.join(f.choices)}, not {wrong[0]!r}"
    return None


def _kind(value: object) -> type:
    for kind in (bool, Decimal, date, str):  # bool first: it is an int too
        if isinstance(value, kind):
            return kind
    raise TypeError(f"not a value: {value!r}")


def _expected(f: Field, kind: type) -> str | None:
    """What the field is compared with, if not with a value of ``kind``."""
    accepted = {
        "text": (str,),
        "number": (Decimal,),
        "date": (date,),
        "datetime": (date,),
        "bool": (bool,),
        "dynamic": (str, Decimal, bool),
    }[f.type]
    if kind in accepted:
        return None
    return " or ".join(TYPE_NAMES[k] for k in accepted)


def _window_problem(f: Field, value: object) -> str | None:
    if f.type in ("date", "datetime"):
        return None
    if f.type == "anniversary":
        if isinstance(value, ast.Last | ast.Next | ast.This):
            return None
        return f"{f.name} takes 'in last …', 'in next …', 'today' or 'this week/month/year'"
    return f"{f.name} is not a date; a time window does not apply"


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part
