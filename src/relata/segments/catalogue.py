"""The registry described for the segment builder and API clients: fields, collections,
operators per type, windows. Names only; the web UI adds labels in both languages."""

from __future__ import annotations

from typing import Any

from relata.consent.ledger import CHANNELS
from relata.segments.fields import REGISTRY
from relata.segments.rules import ast
from relata.segments.rules.registry import Field, Registry

ORDERED = ("=", "!=", "<", "<=", ">", ">=", "in", "not in")
OPERATORS: dict[str, list[str]] = {
    "text": [*ORDERED, *ast.TEXT_OPS, *ast.PRESENCE_OPS],
    "choice": ["=", "!=", "in", "not in", *ast.PRESENCE_OPS],
    "number": [*ORDERED, *ast.PRESENCE_OPS],
    "date": [*ORDERED[:6], ast.WITHIN, *ast.PRESENCE_OPS],
    "datetime": [*ORDERED[:6], ast.WITHIN, *ast.PRESENCE_OPS],
    "bool": ["=", "!=", *ast.PRESENCE_OPS],
    "anniversary": [ast.WITHIN, *ast.PRESENCE_OPS],
    "dynamic": [*ORDERED, *ast.TEXT_OPS, *ast.PRESENCE_OPS],
}
# Consent fields are a family; the builder offers these purposes (Settings decides).
DEFAULT_PURPOSES = ("marketing",)


def _field(f: Field) -> dict[str, Any]:
    kind = "choice" if f.choices else f.type
    out: dict[str, Any] = {"name": f.name, "type": f.type, "group": f.group, "ops": OPERATORS[kind]}
    if f.choices:
        out["choices"] = list(f.choices)
    return out


def describe(
    registry: Registry = REGISTRY, purposes: tuple[str, ...] = DEFAULT_PURPOSES
) -> dict[str, Any]:
    fields = [_field(f) for f in registry.fields.values()]
    for purpose in purposes:
        for channel in CHANNELS:
            found = registry.field(f"consent.{purpose}.{channel}")
            if found is not None:
                fields.append(_field(found))
    collections = []
    for c in registry.collections.values():
        numbers = [n for n, f in c.fields.items() if f.type == "number"]
        collections.append(
            {
                "name": c.name,
                "singular": ast.SINGULAR[c.name],
                "named": c.name == "events",
                "properties": c.has_properties,
                "time_field": c.time_field,
                "fields": [_field(f) for f in c.fields.values()],
                "sum_fields": numbers,
            }
        )
    return {
        "fields": fields,
        "collections": collections,
        "dynamic_ops": OPERATORS["dynamic"],
        "aggregates": list(ast.AGGREGATES),
        "comparisons": list(ast.COMPARISONS),
        "units": list(ast.UNITS),
        "periods": list(ast.PERIODS),
        "windows": ["last", "next", "since", "before", "between", "this"],
    }
