"""What a rule may speak of: fields with their types, and collections of rows with theirs.

The registry is data. The validator reads types from it; the two compilers read where
each value lives (``source``). A new kind of condition (consents, say) is one more
``Field`` registered here with its own ``sql`` and ``py`` accessors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relata.segments.rules.parser import NAME_PART

TYPES = ("text", "number", "date", "datetime", "bool", "anniversary", "dynamic")


@dataclass(frozen=True, slots=True)
class Field:
    """One thing a condition can test.

    ``source`` says where its value lives: ``column`` (a column of the customer or of a
    collection's table), ``age`` and ``birthday`` (derived from ``birth_date``),
    ``trait`` (an aggregate over a collection, ``trait`` names it), ``property`` (a
    key of an event's JSON properties, type decided by the value compared with) or
    ``custom`` (``sql(ctx)`` gives a column expression, ``py(profile)`` the value).
    """

    name: str
    type: str
    source: str = "column"
    column: str | None = None
    choices: tuple[str, ...] | None = None
    group: str = "person"
    trait: tuple[str, str, str | None, Any] | None = None  # (func, collection, field, where)
    sql: Callable[..., Any] | None = None
    py: Callable[..., Any] | None = None
    # Needs of a custom field's Python accessor, read by the profile loader.
    loads: tuple[str, ...] = ()
    # A custom field whose value is never missing: SQL can skip the IS NOT NULL guard.
    never_null: bool = False


@dataclass(frozen=True, slots=True)
class Collection:
    """Rows that belong to a customer: events, purchases, contracts, holdings, identifiers."""

    name: str
    fields: dict[str, Field]
    time_field: str
    has_properties: bool = False

    def field(self, path: str) -> Field | None:
        if self.has_properties and path.startswith("properties."):
            key = path.removeprefix("properties.")
            if NAME_PART.fullmatch(key):
                return Field(path, "dynamic", source="property", column=key)
            return None
        return self.fields.get(path)


@dataclass
class Registry:
    fields: dict[str, Field] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    # Families of fields named by a prefix, e.g. "consent." → consent.<purpose>.<channel>.
    prefixes: dict[str, Callable[[str], Field | None]] = field(default_factory=dict)

    def register(self, f: Field) -> None:
        """Add a customer field (e.g. a consent); a name is registered once."""
        if f.type not in TYPES:
            raise ValueError(f"unknown field type {f.type!r}")
        if f.name in self.fields:
            raise ValueError(f"field {f.name!r} is registered already")
        self.fields[f.name] = f

    def register_prefix(self, prefix: str, make: Callable[[str], Field | None]) -> None:
        """Fields whose names start with ``prefix``: ``make(path)`` gives one, or None."""
        self.prefixes[prefix] = make

    def field(self, path: str) -> Field | None:
        found = self.fields.get(path)
        if found is None:
            for prefix, make in self.prefixes.items():
                if path.startswith(prefix):
                    return make(path)
        return found
