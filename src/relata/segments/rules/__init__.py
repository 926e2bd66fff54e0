"""The rule language: one tree, a text form and a JSON form, checked against a registry.

Pure: no I/O, no database. The compilers (``relata.segments.compile_sql`` and
``compile_py``) turn a checked tree into SQL or a Python closure.
"""

from __future__ import annotations

from collections.abc import Callable

from relata.segments.rules.ast import Node
from relata.segments.rules.errors import RuleError, RuleSyntaxError
from relata.segments.rules.jsonform import from_json, to_json
from relata.segments.rules.parser import parse, parse_located
from relata.segments.rules.printer import to_text
from relata.segments.rules.registry import Registry
from relata.segments.rules.validate import RuleInvalid, validate

__all__ = [
    "Node",
    "RuleError",
    "RuleInvalid",
    "RuleSyntaxError",
    "check_text",
    "from_json",
    "parse",
    "to_json",
    "to_text",
    "validate",
]


def check_text(
    text: str, registry: Registry, segment_exists: Callable[[str], bool] | None = None
) -> Node:
    """Parse and validate; a refused condition is reported at its place in the text."""
    node, positions = parse_located(text)
    try:
        validate(node, registry, segment_exists)
    except RuleInvalid as exc:
        position = positions.get(id(exc.node))
        if position is None:
            raise
        raise RuleError(exc.message, position=position, text=text, path=exc.path) from None
    return node
