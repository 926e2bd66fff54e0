"""Who is in which segment since when, and the "Segment Entered"/"Segment Left" events.

Two ways in, one result:

- ``refresh`` (batch): the SQL compiler selects every member; the difference to the open
  stays becomes entries and exits. Run it when time alone moves people (a purchase
  leaving the 90-day window) and after a segment is saved.
- ``reevaluate`` (live): after an event or a profile change, the affected customers are
  loaded and every segment's Python closure decides, at once.

A stay is a row in ``segment_memberships``; entering and leaving each write a system event
on the customer's timeline (message id ``segment-entered:<stay>:<token>``, written with the
stay in one transaction), for journeys to react to.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relata.db import allocate_ids, bulk_insert, lock_keys, utcnow
from relata.events.models import Event
from relata.ingest.sources import system_source
from relata.segments import service
from relata.segments.compile_py import Compiled, Context, compile_rule
from relata.segments.fields import REGISTRY
from relata.segments.loader import Needs, json_rows, load_packed, needs_of
from relata.segments.models import Segment, SegmentMembership
from relata.segments.rules import RuleError, from_json
from relata.segments.rules.ast import Node

ENTERED, LEFT = "Segment Entered", "Segment Left"
log = logging.getLogger(__name__)
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Refreshed:
    segment: str
    members: int
    entered: int
    left: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What a live re-evaluation changed: (segment name, customer id) pairs."""

    entered: list[tuple[str, int]] = field(default_factory=list)
    left: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, order=True)
class _Stay:
    id: int
    segment_id: int
    customer_id: int


# --- batch -----------------------------------------------------------------------------------


def refresh(
    session: Session, names: Sequence[str] | None = None, now: datetime | None = None
) -> list[Refreshed]:
    """Materialise membership of the named segments (all if None) for every customer."""
    now = now or utcnow()
    stmt = select(Segment).order_by(Segment.id)
    if names is not None:
        missing = sorted(set(names) - set(session.scalars(select(Segment.name))))
        if missing:
            raise service.SegmentNotFound(f"no segment {missing[0]!r}")
        stmt = stmt.where(Segment.name.in_(names))
    done = []
    for segment in session.scalars(stmt).all():
        # One writer of a segment's stays at a time (live re-evaluation takes it too).
        lock_keys(session, [f"segment:{segment.id}"])
        rule = service.compiled(session, from_json(segment.rule), now, segment.name)
        members = set(session.scalars(rule.members()))
        open_stays = dict(
            session.execute(
                select(SegmentMembership.customer_id, SegmentMembership.id).where(
                    SegmentMembership.segment_id == segment.id,
                    SegmentMembership.left_at.is_(None),
                )
            ).all()
        )
        entering = sorted(members - open_stays.keys())
        leaving = [
            _Stay(open_stays[cid], segment.id, cid) for cid in sorted(open_stays.keys() - members)
        ]
        stays = _bulk_enter(session, segment, entering, now)
        _close(session, [s.id for s in leaving], now)
        names_by_id = {segment.id: (segment.name, segment.version)}
        _events(session, stays, leaving, names_by_id, now)
        segment.refreshed_at = now
        done.append(Refreshed(segment.name, len(members), len(entering), len(leaving)))
    session.flush()
    return done


def _bulk_enter(
    session: Session, segment: Segment, customer_ids: list[int], now: datetime
) -> list[_Stay]:
    table = SegmentMembership.__table__
    ids = allocate_ids(session, table, len(customer_ids))  # type: ignore[arg-type]
    columns = ["id", "segment_id", "customer_id", "version", "entered_at"]
    rows = [
        (i, segment.id, cid, segment.version, now) for i, cid in zip(ids, customer_ids, strict=True)
    ]
    bulk_insert(session, table, columns, rows)  # type: ignore[arg-type]
    return [_Stay(i, segment.id, cid) for i, cid in zip(ids, customer_ids, strict=True)]


def _close(session: Session, stay_ids: list[int], now: datetime) -> None:
    for i in range(0, len(stay_ids), CHUNK):
        session.execute(
            update(SegmentMembership)
            .where(SegmentMembership.id.in_(stay_ids[i : i + CHUNK]))
            .values(left_at=now)
        )


def _events(
    session: Session,
    entered: Sequence[_Stay],
    left: Sequence[_Stay],
    segments: dict[int, tuple[str, int]],
    now: datetime,
) -> None:
    if not entered and not left:
        return
    source_id = system_source(session).id
    # The stay's id, and a token of this write: SQLite hands out the ids of deleted stays
    # again, and a message id must never meet an old event's. Each event is written once
    # anyway: only with the stay it belongs to, in one transaction.
    token = secrets.token_hex(4)
    rows: list[tuple[Any, ...]] = []
    for name, prefix, stays in (
        (ENTERED, "segment-entered", entered),
        (LEFT, "segment-left", left),
    ):
        for stay in stays:
            segment, version = segments[stay.segment_id]
            properties = {"segment": segment, "segment_id": stay.segment_id, "version": version}
            message = f"{prefix}:{stay.id}:{token}"
            cid = stay.customer_id
            rows.append((source_id, message, cid, cid, "system", name, properties, {}, now, now))
    table = Event.__table__
    ids = allocate_ids(session, table, len(rows))  # type: ignore[arg-type]
    columns = [
        "id",
        "source_id",
        "message_id",
        "customer_id",
        "origin_customer_id",
        "type",
        "name",
        "properties",
        "context",
        "occurred_at",
        "received_at",
    ]
    bulk_insert(
        session,
        table,  # type: ignore[arg-type]
        columns,
        [(i, *row) for i, row in zip(ids, rows, strict=True)],
    )


# --- live ------------------------------------------------------------------------------------


# Live evaluation trusts the segments it compiled for this long before it reads their
# versions again (one query). A segment saved, edited or deleted through ``service`` in
# this process is seen at once (``invalidate``); one changed by another process within
# this interval, and always before a membership is written: a change is decided again
# with the segments as they are then. Seconds; tests patch it.
REVALIDATE_SECONDS = 1.0
_clock = time.monotonic


@dataclass
class _Live:
    key: tuple[Any, ...]
    segments: list[tuple[int, str, int, Compiled]]  # id, name, version, closure
    nodes: list[Node]
    checked: float = 0.0  # _clock() when ``key`` was last found current
    needs_by_day: dict[date, Needs] = field(default_factory=dict)

    def needs(self, now: datetime) -> Needs:
        """What to load, worked out once a day: from that day's first moment every window
        starts no later than it does now, so the rows loaded are a superset."""
        day = now.astimezone(UTC).date()
        found = self.needs_by_day.get(day)
        if found is None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            found = self.needs_by_day[day] = needs_of(self.nodes, REGISTRY, start)
        return found


_S = Segment.__table__
_VERSIONS = select(_S.c.id, _S.c.name, _S.c.version, _S.c.updated_at).order_by(_S.c.id)
_M = SegmentMembership.__table__
_cache: dict[str, _Live] = {}
_cache_lock = threading.Lock()
_generation = 0  # moved on by every invalidate: a compilation begun before is not kept


def invalidate() -> None:
    """Forget the compiled segments (of every database): one was saved, edited or deleted.

    ``service`` calls it when it changes a segment, and again when that transaction ends.
    """
    global _generation
    with _cache_lock:
        _generation += 1
        _cache.clear()


def _live(session: Session) -> _Live:
    """Every segment compiled for Python, as current as ``REVALIDATE_SECONDS`` allows."""
    return _current(session, False)[0]


def _current(session: Session, check: bool) -> tuple[_Live, bool]:
    """The compiled segments, and whether their versions were read just now (``check``
    forces it). Compiled again only when a segment changed."""
    url = str(session.get_bind().engine.url)
    found = _cache.get(url)
    clock = _clock()
    if found is not None and not check and clock - found.checked < REVALIDATE_SECONDS:
        return found, False
    generation = _generation
    rows = session.connection().execute(_VERSIONS).all()
    key = tuple(tuple(r) for r in rows)
    if found is not None and found.key == key:
        found.checked = clock
        return found, True
    known = _readable_rules(session)
    compiled = []
    for sid, name, version, _ in rows:
        try:
            rule = compile_rule(known[name], REGISTRY, known.__getitem__, name)
        except (RuleError, KeyError, AssertionError) as exc:
            # A segment that no longer compiles (a field another domain removed) must not
            # stop event intake: it is left out of live evaluation, and said so.
            log.warning("segment %r is not evaluated live: %s", name, exc)
            continue
        compiled.append((sid, name, version, rule))
    live = _Live(key, compiled, [known[n] for _, n, _, _ in compiled], clock)
    with _cache_lock:
        if generation == _generation:  # no segment changed here meanwhile
            _cache[url] = live
    return live, True


def _readable_rules(session: Session) -> dict[str, Node]:
    found = {}
    for name, rule in session.execute(select(Segment.name, Segment.rule)):
        try:
            found[name] = from_json(rule)
        except RuleError as exc:
            log.warning("segment %r has an unreadable rule: %s", name, exc)
    return found


def reevaluate(
    session: Session, customer_ids: Iterable[int], now: datetime | None = None
) -> Changes:
    """Decide the affected customers' memberships of every segment now (Python compiler).

    Call it in the transaction that changed them: after events are stored and after
    records are upserted, with the customers they touched. Customers no longer active
    (merged away) leave every segment; their survivor is evaluated when passed in.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return Changes()
    now = now or utcnow()
    live, checked = _current(session, False)
    while True:
        if not live.segments:
            return Changes()
        entering, leaving = _decide(session, live, ids, now)
        if not entering and not leaving:
            return Changes()
        if checked:
            break
        # About to write: never on segments another process changed or deleted meanwhile.
        fresh, checked = _current(session, True)
        if fresh is live:
            break
        live = fresh
    meta = {sid: (name, version) for sid, name, version, _ in live.segments}
    # The segments' locks, in one sorted call, as refresh takes them: no deadlock.
    lock_keys(session, [f"segment:{sid}" for sid, _ in (*entering, *leaving)])
    entered = _enter(session, entering, meta, now)
    left = _leave(session, [stay for _, stay in leaving], now)
    _events(session, entered, left, meta, now)
    return Changes(
        [(meta[s.segment_id][0], s.customer_id) for s in entered],
        [(meta[s.segment_id][0], s.customer_id) for s in left],
    )


def _decide(
    session: Session, live: _Live, ids: list[int], now: datetime
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Who enters which segment (segment, customer) and which stays end (segment, stay)."""
    # One statement: the profiles, their open stays and what registered loaders give as
    # rows (consent's ledger).
    profiles, stays = load_packed(session, ids, live.needs(now), _open_stays_json)
    current = {(sid, cid): stay for cid, (found,) in stays.items() for sid, stay in found}
    ctx = Context(now)
    entering: list[tuple[int, int]] = []
    leaving: list[tuple[int, int]] = []
    for cid in ids:
        profile = profiles.get(cid)
        for sid, name, _, rule in live.segments:
            stay = current.get((sid, cid))
            try:
                inside = profile is not None and rule(profile, ctx)
            except Exception:  # a bug must not lose the event that triggered this
                log.exception("segment %r failed for customer %s; membership unchanged", name, cid)
                continue
            if inside and stay is None:
                entering.append((sid, cid))
            elif not inside and stay is not None:
                leaving.append((sid, stay))
    return entering, leaving


def _open_stays_json(dialect: str, customer_id: Any) -> Any:
    """A customer's open stays as a JSON array of [segment id, stay id] (for load_packed)."""
    where = (_M.c.customer_id == customer_id, _M.c.left_at.is_(None))
    return json_rows(dialect, _M, [_M.c.segment_id, _M.c.id], *where)


def _enter(
    session: Session,
    pairs: list[tuple[int, int]],
    meta: dict[int, tuple[str, int]],
    now: datetime,
) -> list[_Stay]:
    """New stays; one that a concurrent writer opened already is skipped, not doubled."""
    if not pairs:
        return []
    table = SegmentMembership.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = (
        insert(table)
        .on_conflict_do_nothing(
            index_elements=["segment_id", "customer_id"], index_where=table.c.left_at.is_(None)
        )
        .returning(table.c.id, table.c.segment_id, table.c.customer_id)
    )
    rows = [
        {"segment_id": sid, "customer_id": cid, "version": meta[sid][1], "entered_at": now}
        for sid, cid in pairs
    ]
    result = session.execute(stmt, rows)
    return sorted(_Stay(*r) for r in result)


def _leave(session: Session, stay_ids: list[int], now: datetime) -> list[_Stay]:
    if not stay_ids:
        return []
    table = SegmentMembership.__table__
    result = session.execute(
        update(table)
        .where(table.c.id.in_(stay_ids), table.c.left_at.is_(None))
        .values(left_at=now)
        .returning(table.c.id, table.c.segment_id, table.c.customer_id)
    )
    return sorted(_Stay(*r) for r in result)
