"""The tree as text that the parser reads back into the same tree (the canonical text form)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from relata.segments.rules import ast
from relata.segments.rules.ast import Node, Source, Window

_PLAIN = re.compile(r"[^\W\d]\w*\Z")


def to_text(node: Node) -> str:
    return _node(node)


def _node(node: Node) -> str:
    if isinstance(node, ast.Or):
        return " or ".join(_wrapped(i, ast.Or) for i in node.items)
    if isinstance(node, ast.And):
        return " and ".join(_wrapped(i, ast.And | ast.Or) for i in node.items)
    if isinstance(node, ast.Not):
        return "not " + _wrapped(node.item, ast.And | ast.Or)
    if isinstance(node, ast.Cond):
        return _cond(node)
    if isinstance(node, ast.Has):
        return "has " + _source(node.source, ast.SINGULAR[node.source.collection])
    if isinstance(node, ast.Agg):
        inner = _source(node.source, node.source.collection)
        if node.field is not None:
            inner = f"{field(node.field)} of {inner}"
        return f"{node.func}({inner}) {node.op} {number(node.value)}"
    if isinstance(node, ast.InSegment):
        return f"in segment {string(node.name)}"
    raise TypeError(f"not a rule node: {node!r}")


def _wrapped(node: Node, groups: type | object) -> str:
    text = _node(node)
    return f"({text})" if isinstance(node, groups) else text  # type: ignore[arg-type]


def _source(source: Source, noun: str) -> str:
    parts = [noun]
    if source.name is not None:
        parts.append(string(source.name))
    if source.where is not None:
        parts.append("where " + _wrapped(source.where, ast.And | ast.Or))
    if source.window is not None:
        parts.append(window(source.window))
    return " ".join(parts)


def _cond(cond: ast.Cond) -> str:
    name = field(cond.field)
    if cond.op in ast.PRESENCE_OPS:
        return f"{name} {cond.op}"
    if cond.op == ast.WITHIN:
        assert not isinstance(cond.value, tuple | str | Decimal | bool | date | type(None))
        return f"{name} {window(cond.value)}"
    if cond.op in ast.LIST_OPS:
        assert isinstance(cond.value, tuple)
        return f"{name} {cond.op} ({', '.join(literal(v) for v in cond.value)})"
    assert not isinstance(cond.value, tuple) and cond.value is not None
    return f"{name} {cond.op} {literal(cond.value)}"  # type: ignore[arg-type]


def window(w: Window) -> str:
    if isinstance(w, ast.Last | ast.Next):
        unit = w.unit[:-1] if w.amount == 1 else w.unit
        return f"in {'last' if isinstance(w, ast.Last) else 'next'} {w.amount} {unit}"
    if isinstance(w, ast.Since):
        return f"since {w.day.isoformat()}"
    if isinstance(w, ast.Before):
        return f"before {w.day.isoformat()}"
    if isinstance(w, ast.Between):
        return f"between {w.first.isoformat()} and {w.last.isoformat()}"
    return "today" if w.period == "day" else f"this {w.period}"


def field(path: str) -> str:
    first, *rest = path.split(".")
    return ".".join([first, *(p if _PLAIN.match(p) else string(p) for p in rest)])


def literal(value: ast.Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, date):
        return value.isoformat()
    return string(value)


def number(value: Decimal) -> str:
    """Canonical: 2.50 and 2.5 print alike, never in exponent form, and -0 is 0."""
    return "0" if value == 0 else format(value.normalize(), "f")


def string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'
