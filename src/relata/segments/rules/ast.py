"""The tree every rule is: what the parser builds, the printers print and the compilers read.

Nodes are frozen and hashable, so two rules are equal exactly when their trees are, and
a compiled rule can be cached by its tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Union

Scalar = Union[str, Decimal, bool, date]  # noqa: UP007 (a runtime alias)

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
TEXT_OPS = ("contains", "starts with", "ends with")
LIST_OPS = ("in", "not in")
PRESENCE_OPS = ("is empty", "is set")
WITHIN = "within"
FIELD_OPS = (*COMPARISONS, *LIST_OPS, *TEXT_OPS, *PRESENCE_OPS, WITHIN)

AGGREGATES = ("count", "sum", "min", "max")
COLLECTIONS = ("events", "purchases", "contracts", "holdings", "identifiers")
# How a collection is named after "has" (one) and inside count(...) (many).
SINGULAR = {
    "events": "event",
    "purchases": "purchase",
    "contracts": "contract",
    "holdings": "holding",
    "identifiers": "identifier",
}
UNITS = ("days", "weeks", "months", "years")
PERIODS = ("day", "week", "month", "year")


# --- time windows --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Last:
    """The last ``amount`` units up to now."""

    amount: int
    unit: str


@dataclass(frozen=True, slots=True)
class Next:
    """From now, the next ``amount`` units."""

    amount: int
    unit: str


@dataclass(frozen=True, slots=True)
class Since:
    """From the start of ``day`` on."""

    day: date


@dataclass(frozen=True, slots=True)
class Before:
    """Before the start of ``day``."""

    day: date


@dataclass(frozen=True, slots=True)
class Between:
    """From the start of ``first`` to the end of ``last``, both days included."""

    first: date
    last: date


@dataclass(frozen=True, slots=True)
class This:
    """The current calendar day, week (Monday first), month or year."""

    period: str


Window = Last | Next | Since | Before | Between | This


# --- conditions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cond:
    """``field op value``; value is a Scalar, a tuple of them (in), a Window, or None."""

    field: str
    op: str
    value: Scalar | tuple[Scalar, ...] | Window | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """Rows of one collection of the customer: optionally one event name, a filter, a window."""

    collection: str
    name: str | None = None
    where: Node | None = None
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class Has:
    source: Source


@dataclass(frozen=True, slots=True)
class Agg:
    """``count(source) op value``, or sum/min/max of a number field of the source's rows."""

    func: str
    source: Source
    field: str | None
    op: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class InSegment:
    name: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Cond | Has | Agg | InSegment | And | Or | Not


def walk(node: Node):  # type: ignore[no-untyped-def]
    """Every node of the tree, parents first, including the filters inside sources."""
    yield node
    if isinstance(node, And | Or):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Not):
        yield from walk(node.item)
    elif isinstance(node, Has | Agg) and node.source.where is not None:
        yield from walk(node.source.where)


def segments_of(node: Node) -> set[str]:
    """The names of the segments a rule refers to."""
    return {n.name for n in walk(node) if isinstance(n, InSegment)}


def depth(node: Node) -> int:
    if isinstance(node, And | Or):
        return 1 + max(depth(i) for i in node.items)
    if isinstance(node, Not):
        return 1 + depth(node.item)
    if isinstance(node, Has | Agg) and node.source.where is not None:
        return 1 + depth(node.source.where)
    return 1


def size(node: Node) -> int:
    return sum(1 for _ in walk(node))
