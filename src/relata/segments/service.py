"""Segments: create, edit (every edit a new version), delete, count and list members.

Services take a session and flush; the caller owns the transaction. They pass frozen
dataclasses out, never ORM objects. Live and batch membership: ``membership.py``
(``reevaluate`` is re-exported here for the callers that wire it in).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from relata.db import utcnow
from relata.profiles.models import Customer
from relata.segments import compile_sql
from relata.segments.fields import REGISTRY
from relata.segments.models import Segment, SegmentMembership, SegmentVersion
from relata.segments.rules import (
    RuleError,
    check_text,
    from_json,
    to_json,
    to_text,
    validate,
)
from relata.segments.rules.ast import Node, segments_of
from relata.segments.rules.limits import MAX_SEGMENT_DEPTH

NAME = re.compile(r"\w(?:[\w .-]{0,62}[\w.-])?")
MEMBER_COLUMNS = ("first_name", "last_name", "email", "postcode", "city", "customer_number")


class SegmentError(ValueError):
    """A segment that cannot be saved or found, with the reason."""


class SegmentNotFound(SegmentError):
    pass


class SegmentExists(SegmentError):
    pass


class SegmentInUse(SegmentError):
    pass


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    id: int
    name: str
    description: str
    version: int
    rule: dict[str, Any]
    text: str
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None
    members: int  # open memberships: as of the last refresh and live re-evaluation


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    rule: dict[str, Any]
    text: str
    description: str
    created_at: datetime


# --- reading a rule -------------------------------------------------------------------------


def read_rule(session: Session, text: str | None = None, rule: Any = None) -> Node:
    """A rule from its text or its JSON form (exactly one), checked against the registry
    and the segments that exist; RuleError says what is wrong and where."""
    if (text is None) == (rule is None):
        raise RuleError("give the rule either as text or as JSON, not both or neither")
    names = set(_names(session))
    if text is not None:
        return check_text(text, REGISTRY, names.__contains__)
    node = from_json(rule)
    validate(node, REGISTRY, names.__contains__)
    return node


def rules(session: Session) -> dict[str, Node]:
    """Every segment's current rule by name (to resolve `in segment "…"`)."""
    return {
        name: from_json(rule) for name, rule in session.execute(select(Segment.name, Segment.rule))
    }


def _names(session: Session) -> list[str]:
    return list(session.scalars(select(Segment.name)))


def _check_references(session: Session, name: str, node: Node) -> None:
    """Refuse a rule that would make segments refer to each other in a circle."""
    graph = {n: segments_of(r) for n, r in rules(session).items()}
    graph[name] = segments_of(node)

    def visit(current: str, path: list[str]) -> None:
        if len(path) > MAX_SEGMENT_DEPTH:
            raise RuleError(f"segments refer to segments more than {MAX_SEGMENT_DEPTH} deep")
        for ref in sorted(graph.get(current, ())):
            if ref == name:
                raise RuleError(
                    f"segments refer to each other in a circle: {' → '.join([*path, ref])}"
                )
            visit(ref, [*path, ref])

    visit(name, [name])


# --- create, edit, delete -------------------------------------------------------------------


def _valid_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise SegmentError(
            f"invalid segment name {name[:80]!r}: 1 to 64 letters, digits, spaces, "
            "'.', '-' or '_', not starting or ending with a space"
        )
    return name


def create(session: Session, name: str, node: Node, description: str = "") -> SegmentInfo:
    _valid_name(name)
    if _find(session, name) is not None:
        raise SegmentExists(f"segment {name!r} exists already")
    _check_references(session, name, node)
    now = utcnow()
    segment = Segment(
        name=name,
        description=_description(description),
        version=1,
        rule=to_json(node),
        created_at=now,
        updated_at=now,
    )
    session.add(segment)
    session.flush()
    _add_version(session, segment, node)
    _changed(session)
    return _info(session, segment)


def update(
    session: Session, name: str, node: Node | None = None, description: str | None = None
) -> SegmentInfo:
    """A new version when the rule or description changes; an unchanged edit changes nothing."""
    segment = _require(session, name)
    new_rule = to_json(node) if node is not None else segment.rule
    new_description = _description(description) if description is not None else segment.description
    if new_rule == segment.rule and new_description == segment.description:
        return _info(session, segment)
    if node is not None:
        _check_references(session, name, node)
    segment.rule, segment.description = new_rule, new_description
    segment.version += 1
    segment.updated_at = utcnow()
    session.flush()
    _add_version(session, segment, from_json(new_rule))
    _changed(session)
    return _info(session, segment)


def delete_segment(session: Session, name: str) -> None:
    """Delete a segment with its versions and memberships (the timeline keeps its events)."""
    segment = _require(session, name)
    users = sorted(n for n, r in rules(session).items() if n != name and name in segments_of(r))
    if users:
        raise SegmentInUse(f"segment {name!r} is used by {', '.join(users)}; change those first")
    session.execute(delete(SegmentMembership).where(SegmentMembership.segment_id == segment.id))
    session.execute(delete(SegmentVersion).where(SegmentVersion.segment_id == segment.id))
    session.delete(segment)
    session.flush()
    _changed(session)


def _changed(session: Session) -> None:
    """Live evaluation in this process sees a saved, edited or deleted segment at once:
    its compiled segments are forgotten now (for this session, which sees the change)
    and again when the transaction ends (for every other, once it is committed or gone)."""
    from relata.segments.membership import invalidate

    invalidate()
    for name in ("after_commit", "after_rollback"):
        if not event.contains(session, name, _forget):
            event.listen(session, name, _forget)


def _forget(session: Session) -> None:
    from relata.segments.membership import invalidate

    invalidate()


def _description(text: str) -> str:
    text = text.replace("\x00", "").strip()
    if len(text) > 500:
        raise SegmentError("a description holds at most 500 characters")
    return text


def _add_version(session: Session, segment: Segment, node: Node) -> None:
    session.add(
        SegmentVersion(
            segment_id=segment.id,
            version=segment.version,
            rule=segment.rule,
            text=to_text(node),
            description=segment.description,
            created_at=segment.updated_at,
        )
    )
    session.flush()


# --- reading segments -----------------------------------------------------------------------


def _find(session: Session, name: str) -> Segment | None:
    return session.scalar(select(Segment).where(Segment.name == name))


def _require(session: Session, name: str) -> Segment:
    segment = _find(session, name)
    if segment is None:
        raise SegmentNotFound(f"no segment {name[:80]!r}")
    return segment


def _info(session: Session, segment: Segment, members: int | None = None) -> SegmentInfo:
    if members is None:
        members = session.scalar(
            select(func.count()).where(
                SegmentMembership.segment_id == segment.id, SegmentMembership.left_at.is_(None)
            )
        )
    return SegmentInfo(
        segment.id,
        segment.name,
        segment.description,
        segment.version,
        segment.rule,
        to_text(from_json(segment.rule)),
        segment.created_at,
        segment.updated_at,
        segment.refreshed_at,
        members or 0,
    )


def get(session: Session, name: str) -> SegmentInfo:
    return _info(session, _require(session, name))


def list_segments(session: Session) -> list[SegmentInfo]:
    counts = dict(
        session.execute(
            select(SegmentMembership.segment_id, func.count())
            .where(SegmentMembership.left_at.is_(None))
            .group_by(SegmentMembership.segment_id)
        ).all()
    )
    found = session.scalars(select(Segment).order_by(Segment.name))
    return [_info(session, s, counts.get(s.id, 0)) for s in found]


def versions(session: Session, name: str) -> list[VersionInfo]:
    segment = _require(session, name)
    rows = session.scalars(
        select(SegmentVersion)
        .where(SegmentVersion.segment_id == segment.id)
        .order_by(SegmentVersion.version.desc())
    )
    return [VersionInfo(v.version, v.rule, v.text, v.description, v.created_at) for v in rows]


# --- evaluating over every customer (SQL) ---------------------------------------------------


def compiled(
    session: Session, node: Node, now: datetime | None = None, name: str | None = None
) -> compile_sql.SqlRule:
    dialect = session.get_bind().dialect.name
    known = rules(session)

    def resolve(ref: str) -> Node:
        if ref not in known:
            raise RuleError(f"there is no segment {ref!r}")
        return known[ref]

    return compile_sql.compile_rule(node, REGISTRY, now or utcnow(), dialect, resolve, name)


def count(session: Session, node: Node, now: datetime | None = None) -> int:
    """How many active customers the rule selects now (before saving it, too)."""
    return session.scalar(compiled(session, node, now).count()) or 0


def count_segment(session: Session, name: str, now: datetime | None = None) -> int:
    segment = _require(session, name)
    return count(session, from_json(segment.rule), now)


def member_rows(
    session: Session, name: str, now: datetime | None = None, batch: int = 5000
) -> Iterator[dict[str, Any]]:
    """The segment's members as evaluated now: id and a few golden fields, by id."""
    segment = _require(session, name)
    ids = compiled(session, from_json(segment.rule), now, name).members()
    stmt = select(Customer.id, *(getattr(Customer, c) for c in MEMBER_COLUMNS)).where(
        Customer.id.in_(ids.scalar_subquery())
    )
    result = session.execute(stmt.order_by(Customer.id).execution_options(yield_per=batch))
    for row in result:
        yield {"customer_id": row[0], **dict(zip(MEMBER_COLUMNS, row[1:], strict=True))}


def member_ids(
    session: Session, name: str, after: int = 0, limit: int = 1000, now: datetime | None = None
) -> list[int]:
    """A page of the members' ids as evaluated now, ascending from ``after``."""
    segment = _require(session, name)
    stmt = compiled(session, from_json(segment.rule), now, name).members()
    return list(session.scalars(stmt.where(Customer.id > after).limit(limit)))


def reevaluate(session: Session, customer_ids: Iterable[int], now: datetime | None = None) -> Any:
    """Live re-evaluation of the customers' memberships: see ``membership.reevaluate``."""
    from relata.segments.membership import reevaluate as run

    return run(session, customer_ids, now)


def refresh(session: Session, names: list[str] | None = None, now: datetime | None = None) -> Any:
    """Batch materialisation of membership: see ``membership.refresh``."""
    from relata.segments.membership import refresh as run

    return run(session, names, now)
