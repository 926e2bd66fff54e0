"""Offer eligibility and policy audiences, in the rule language of segments.

The one place where decisions meets the segments package: rules are checked and compiled
here by ``relata.segments`` (parser, validator, Python compiler, profile loader), and
evaluated in memory against a cached profile. Besides everything a segment can speak of,
a decision rule can read the request's context: ``context.device = "mobile"``,
``context.channel = "web"``, ``context.placement = "home"``, ``context.<any key>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relata.segments.compile_py import Compiled, Context, compile_rule
from relata.segments.fields import REGISTRY as SEGMENT_FIELDS
from relata.segments.loader import (
    Needs,
    json_rows,
    load_packed,
    load_profiles,
    needs_of,
    row_converter,
)
from relata.segments.profile import Profile
from relata.segments.rules import RuleError, check_text
from relata.segments.rules.ast import Node
from relata.segments.rules.parser import NAME_PART
from relata.segments.rules.registry import Field, Registry

__all__ = [
    "Profile",
    "Rule",
    "RuleError",
    "check",
    "compile_text",
    "evaluate",
    "json_rows",
    "load",
    "load_with",
    "row_converter",
]

CONTEXT = "context."


class _WithContext(Registry):
    """The segments' fields (shared, so fields registered later are seen) plus context.*."""

    def field(self, path: str) -> Field | None:
        found = super().field(path)
        if found is not None or not path.startswith(CONTEXT):
            return found
        key = path.removeprefix(CONTEXT)
        if not NAME_PART.fullmatch(key):
            return None
        return Field(path, "dynamic", source="custom", py=lambda p: p.extra["context"].get(key))


REGISTRY = _WithContext(SEGMENT_FIELDS.fields, SEGMENT_FIELDS.collections)


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    node: Node | None  # None: the rule no longer compiles (a segment it names is gone)
    compiled: Compiled | None
    problem: str = ""


Segments = Mapping[str, Node]  # every segment's current rule by name (segments.service.rules)


def check(text: str, segments: Segments | None = None) -> Node:
    """Parse and validate; RuleError says what is wrong and where. A rule may name the
    segments given (``in segment "Stammkunden"``); they are evaluated live, like any rule."""
    known = segments or {}
    return check_text(text, REGISTRY, known.__contains__)


def compile_text(text: str, segments: Segments | None = None) -> Rule:
    """A rule ready to evaluate; one that no longer compiles is kept, evaluating to false,
    with the reason: a deleted segment must not stop every decision."""
    known = segments or {}
    try:
        node = check(text, known)
        return Rule(text, node, compile_rule(node, REGISTRY, known.__getitem__))
    except RuleError as exc:
        return Rule(text, None, None, str(exc))


def segment_rules(session: Session) -> dict[str, Node]:
    from relata.segments import service as segments

    return segments.rules(session)


def segments_version(session: Session) -> tuple[int, Any]:
    """(how many, last change) of the segments: a changed segment recompiles offer rules."""
    from sqlalchemy import func, select

    from relata.segments.models import Segment

    row = session.execute(select(func.count(), func.max(Segment.updated_at))).one()
    return int(row[0]), row[1]


def needs(rules: Iterable[Rule], now: datetime) -> Needs:
    """What profiles must hold for these rules; holdings always (suppression, affinity)."""
    found = needs_of([r.node for r in rules if r.node is not None], REGISTRY, now)
    return dataclasses.replace(found, holdings=True)


def load(session: Session, customer_ids: Iterable[int], what: Needs) -> dict[int, Profile]:
    return load_profiles(session, customer_ids, what)


# The profiles with further JSON arrays, in one statement (a decision's cache miss):
# segments' load_packed, the subquery of such an array, and the reader of its rows.
load_with = load_packed


def empty_profile(customer_id: int) -> Profile:
    return Profile(customer_id, {})


def evaluate(rule: Rule, profile: Profile, ctx: Context) -> bool:
    return rule.compiled is not None and rule.compiled(profile, ctx)


def with_context(profile: Profile, context: Mapping[str, Any]) -> Profile:
    """A shallow copy carrying this request's context: cached profiles are shared by threads."""
    extra = {**profile.extra, "context": context}
    return dataclasses.replace(profile, extra=extra)


def round_context(now: datetime) -> Context:
    """One per decision: segment results are memoised in it per customer."""
    return Context(now)


Evaluator = Callable[[Rule, Profile, Context], bool]
