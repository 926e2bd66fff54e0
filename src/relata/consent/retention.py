"""Retention: events older than their type's period are deleted (``relata retention run``).

``RELATA_RETENTION_DAYS`` maps an event name (``"Product Viewed"``) or type (``"page"``)
to days; a name's period wins over its type's; events of neither are kept. The table is
walked once by primary key, a window at a time, one transaction each: no index on
name or time is needed (the event hot path would pay for it on every insert), and a long
run never holds the write lock for long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from relata.db import Database, utcnow
from relata.events.models import Event
from relata.profiles.models import Holding

WINDOW = 20_000  # event ids per transaction


@dataclass(slots=True)
class RetentionRun:
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)  # rule -> events deleted

    def as_dict(self) -> dict[str, object]:
        return {
            "deleted": dict(sorted(self.deleted.items())),
            "total": sum(self.deleted.values()),
            "cutoffs": {k: v.isoformat() for k, v in sorted(self.cutoffs.items())},
        }


def conditions(days: Mapping[str, int], now: datetime) -> dict[str, ColumnElement[bool]]:
    """Per rule, which events it removes: a name rule by name, a type rule for the rest."""
    names = sorted(days)
    found: dict[str, ColumnElement[bool]] = {}
    for rule, keep in days.items():
        cutoff = now - timedelta(days=keep)
        by_name = and_(Event.name == rule, Event.occurred_at < cutoff)
        by_type = and_(
            Event.type == rule,
            Event.occurred_at < cutoff,
            or_(Event.name.is_(None), Event.name.not_in(names)),
        )
        found[rule] = or_(by_name, by_type)
    return found


def _window(session: Session, low: int, high: int, rule: ColumnElement[bool]) -> int:
    in_window = and_(Event.id >= low, Event.id < high, rule)
    doomed = select(Event.id).where(in_window)
    # Holdings keep the purchase, without the event it came from.
    session.execute(
        update(Holding)
        .where(Holding.event_id.in_(doomed))
        .values(event_id=None)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        delete(Event).where(in_window).execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)


def run(
    db: Database, days: Mapping[str, int], now: datetime | None = None, dry_run: bool = False
) -> RetentionRun:
    """Delete what is older than its period; ``dry_run`` only counts."""
    now = now or utcnow()
    report = RetentionRun({rule: now - timedelta(days=d) for rule, d in days.items()})
    rules = conditions(days, now)
    report.deleted = dict.fromkeys(rules, 0)
    if not rules:
        return report
    with db.session(write=False) as session:
        low, high = session.execute(select(func.min(Event.id), func.max(Event.id))).one()
    if low is None:
        return report
    for start in range(low, high + 1, WINDOW):
        with db.session(write=not dry_run) as session:
            for rule, condition in rules.items():
                if dry_run:
                    in_window = and_(Event.id >= start, Event.id < start + WINDOW, condition)
                    count = session.scalar(select(func.count()).where(in_window)) or 0
                else:
                    count = _window(session, start, start + WINDOW, condition)
                report.deleted[rule] += count
    return report
