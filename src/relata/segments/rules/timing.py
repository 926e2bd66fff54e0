"""Time windows, ages and birthdays as plain bounds, computed once from ``now``.

Both compilers take these bounds from here: SQL binds them as parameters (never the
database's clock, so SQLite and PostgreSQL agree) and Python compares with them.
A calendar day is a day in ``tz`` (Europe/Berlin by default): "since 01.06.2025" starts
at midnight German time.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relata.segments.rules import ast
from relata.segments.rules.ast import Window

try:
    BERLIN: tzinfo = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # a system without a time zone database: both compilers alike
    BERLIN = UTC


@dataclass(frozen=True, slots=True)
class Bounds:
    """lo ≤ x (or lo < x) and x ≤ hi (or x < hi); None: unbounded on that side."""

    lo: date | datetime | None
    hi: date | datetime | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True

    def contains(self, x: date | datetime) -> bool:
        if self.lo is not None and (x < self.lo if self.lo_inclusive else x <= self.lo):  # type: ignore[operator]
            return False
        return not (
            self.hi is not None and (x > self.hi if self.hi_inclusive else x >= self.hi)  # type: ignore[operator]
        )


def today(now: datetime, tz: tzinfo = BERLIN) -> date:
    return now.astimezone(tz).date()


def day_start(day: date, tz: tzinfo = BERLIN) -> datetime | None:
    """Midnight of ``day`` in ``tz``, as UTC; None before the first representable instant."""
    try:
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def next_day(day: date) -> date | None:
    return None if day == date.max else day + timedelta(days=1)


def shift(moment: date | datetime, amount: int, unit: str) -> date | datetime | None:
    """``moment`` moved by ``amount`` units (negative: back); months and years keep the day
    of the month where it exists (31 March − 1 month = 28/29 February)."""
    try:
        if unit == "days":
            return moment + timedelta(days=amount)
        if unit == "weeks":
            return moment + timedelta(weeks=amount)
        months = amount * (12 if unit == "years" else 1)
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    except (OverflowError, ValueError):
        return None


def _period(day: date, period: str) -> tuple[date, date]:
    """First and last day of the calendar day/week/month/year around ``day``."""
    if period == "day":
        return day, day
    if period == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if period == "month":
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return date(day.year, 1, 1), date(day.year, 12, 31)


def date_bounds(window: Window, now: datetime, tz: tzinfo = BERLIN) -> Bounds:
    """The window over dates (both ends are whole days)."""
    return date_bounds_on(window, today(now, tz))


# Windows of whole days depend on the date only: worked out once a day, not per customer.
@lru_cache(maxsize=4096)
def date_bounds_on(window: Window, current: date) -> Bounds:
    if isinstance(window, ast.Last):
        return Bounds(shift(current, -window.amount, window.unit), current)
    if isinstance(window, ast.Next):
        return Bounds(current, shift(current, window.amount, window.unit))
    if isinstance(window, ast.Since):
        return Bounds(window.day, None)
    if isinstance(window, ast.Before):
        return Bounds(None, window.day, hi_inclusive=False)
    if isinstance(window, ast.Between):
        return Bounds(window.first, window.last)
    first, last = _period(current, window.period)
    return Bounds(first, last)


def moment_bounds(window: Window, now: datetime, tz: tzinfo = BERLIN) -> Bounds:
    """The window over points in time (UTC)."""
    if isinstance(window, ast.Last):
        return Bounds(shift(now, -window.amount, window.unit), now)
    if isinstance(window, ast.Next):
        return Bounds(now, shift(now, window.amount, window.unit))
    return _day_moments(window, today(now, tz), tz)


@lru_cache(maxsize=4096)
def _day_moments(window: Window, current: date, tz: tzinfo) -> Bounds:
    days = date_bounds_on(window, current)
    # A day before the first representable instant leaves that side open.
    lo = day_start(days.lo, tz) if isinstance(days.lo, date) else None
    if days.hi is None:
        return Bounds(lo, None)
    if not days.hi_inclusive:  # before a day: up to its first moment
        hi = day_start(days.hi, tz)
        return Bounds(lo, hi, hi_inclusive=False) if hi is not None else _nothing()
    after = next_day(days.hi)
    hi = day_start(after, tz) if after is not None else None
    return Bounds(lo, hi, hi_inclusive=False)


def _nothing() -> Bounds:
    """A window no moment lies in."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return Bounds(epoch, epoch, hi_inclusive=False)


@lru_cache(maxsize=4096)
def day_bounds(op: str, day: date, tz: tzinfo = BERLIN) -> Bounds:
    """A point in time compared with a calendar day: ``= day`` is any moment of that day."""
    start, after = day_start(day, tz), next_day(day)
    end = day_start(after, tz) if after is not None else None
    if op == "=":
        return Bounds(start, end, hi_inclusive=False)
    if op == "<":
        return Bounds(None, start, hi_inclusive=False) if start else _nothing()
    if op == "<=":
        return Bounds(None, end, hi_inclusive=False)
    if op == ">":
        return Bounds(end, None, lo_inclusive=True) if end else _nothing()
    if op == ">=":
        return Bounds(start, None)
    raise ValueError(f"no bounds for {op!r}")


def birth_date_limit(current: date, years: int) -> date | bool | None:
    """The latest birth date of someone at least ``years`` old on ``current``.

    age ≥ k exactly when (birth year, month, day) ≤ (year − k, month, day); on 29 February
    in a year without one, that is the 28th. True: everyone qualifies; False: no one.
    """
    year = current.year - years
    if year > date.max.year:
        return True
    if year < date.min.year:
        return False
    day = min(current.day, calendar.monthrange(year, current.month)[1])
    return date(year, current.month, day)


def month_days(window: Window, now: datetime, tz: tzinfo = BERLIN) -> frozenset[str] | None:
    """The "MM-DD" of every birthday that falls in the window; None: every day of the year.

    Someone born on 29 February celebrates on the 28th when the year has no 29th.
    """
    return _month_days_on(window, today(now, tz))


@lru_cache(maxsize=1024)
def _month_days_on(window: Window, current: date) -> frozenset[str] | None:
    days = date_bounds_on(window, current)
    lo, hi = days.lo, days.hi
    if not isinstance(lo, date) or not isinstance(hi, date) or (hi - lo).days >= 365:
        return None
    found: set[str] = set()
    day = lo
    while day <= hi:
        found.add(f"{day.month:02d}-{day.day:02d}")
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            found.add("02-29")
        day += timedelta(days=1)
    return frozenset(found)
