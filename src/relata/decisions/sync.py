"""Learning across processes: outcomes are folded into shared counts; engines poll a version.

Every API process writes decisions and responses to append-only tables, among them one
``decision_outcomes`` row per show and per win. ``fold`` (a background thread in each
server process, and ``relata decisions train``) takes the unfolded rows, adds them to
``decision_stats`` (bandit counts per offer and cell, decayed) and ``decision_usage``
(exact counts per offer/channel and day, for caps and reports), marks them folded and
bumps ``decision_state.stats_version``. Only one process folds at a time (an advisory
lock on PostgreSQL, the write lock on SQLite); a fold is a sum, so order never matters.

Engines poll ``decision_state`` (one primary-key read) at most every
``RELATA_DECISION_SYNC_SECONDS`` and reload what changed: the catalogue when
``catalogue_version`` moved, the counts written since their last version when
``stats_version`` moved, the model when ``model_id`` moved. So a response reaches every
process's model within fold interval + sync interval (2 s by default), and an offer change
within the sync interval. Polling was chosen over LISTEN/NOTIFY because it works the
same on SQLite and through connection poolers, and costs one indexed read a second.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from relata.db import utcnow
from relata.decisions.bandit import cell_key
from relata.decisions.loader import STATE_ID, decay
from relata.decisions.models import DecisionOutcome, DecisionStat, DecisionState
from relata.segments.rules.timing import BERLIN

REBASE_HALF_LIVES = 300  # 2^300 ≈ 1e90: far from a float's limit of 2^1024
FOLD_LOCK = 0x5245_4C41_4446  # "RELADF": the advisory lock key of the fold on PostgreSQL


def bump(
    session: Session, *, catalogue: bool = False, stats: bool = False, model_id: int | None = None
) -> int:
    """Advance the versions engines poll; returns the new stats version."""
    values: dict[str, object] = {"updated_at": utcnow()}
    if catalogue:
        values["catalogue_version"] = DecisionState.catalogue_version + 1
    if stats:
        values["stats_version"] = DecisionState.stats_version + 1
    if model_id is not None:
        values["model_id"] = model_id
    stmt = (
        update(DecisionState)
        .where(DecisionState.id == STATE_ID)
        .values(**values)
        .returning(DecisionState.stats_version)
    )
    found = session.execute(stmt).scalar()
    if found is None:  # the first bump of a new database
        _ensure_state(session)
        found = session.execute(stmt).scalar_one()
    return found


def _ensure_state(session: Session) -> None:
    exists = session.execute(select(DecisionState.id).where(DecisionState.id == STATE_ID)).first()
    if exists is None:
        from relata.db import insert_ignoring_duplicates

        session.execute(
            insert_ignoring_duplicates(session, DecisionState.__table__),
            [{"id": STATE_ID, "catalogue_version": 0, "stats_version": 0, "updated_at": utcnow()}],
        )


def fold(session: Session, half_life_days: float, limit: int = 5_000) -> int:
    """Add up to ``limit`` unfolded outcomes to counts and usage; returns how many."""
    if session.get_bind().dialect.name == "postgresql":
        locked = session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FOLD_LOCK})
        if not locked.scalar():
            return 0  # another process is folding right now
    o = DecisionOutcome
    rows = session.execute(
        select(o.id, o.offer_id, o.kind, o.channel, o.control, o.labels, o.cost, o.occurred_at)
        .where(~o.folded)  # matches the partial index (IS 0 would scan)
        .order_by(o.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    now = time.time()
    version = bump(session, stats=True)
    landmark = _landmark(session, now, half_life_days)
    counts: dict[tuple[int, int], list] = {}
    usage: dict[tuple[str, object, bool], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    keys: dict[str, int] = {}
    days: dict[tuple[int, int, int, int], object] = {}
    for _, offer_id, kind, channel, control, labels, cost, at in rows:
        # Forward decay: a later show weighs more, by as much as older ones have faded since.
        weight = decay(at.timestamp(), landmark, half_life_days)
        slot = 1 if kind == "win" else 0
        win = slot == 1
        for label in labels:
            cell = keys.get(label)
            if cell is None:
                cell = keys[label] = cell_key(label)
            entry = counts.get((offer_id, cell))
            if entry is None:
                entry = counts[(offer_id, cell)] = [0.0, 0.0, label]
            entry[slot] += weight
        # Berlin's offset changes on the hour (UTC), so the hour decides the local day.
        hour = (at.year, at.month, at.day, at.hour)
        day = days.get(hour)
        if day is None:
            day = days[hour] = _day(at)
        offer_usage = usage[(f"offer:{offer_id}", day, control)]
        if win:
            offer_usage[1] += 1
            offer_usage[2] += cost
        else:
            offer_usage[0] += 1
            usage[(f"channel:{channel}", day, control)][0] += 1
    _write_stats(session, counts, now, version)
    _write_usage(session, usage)
    _mark_folded(session, [r[0] for r in rows])
    return len(rows)


def _mark_folded(session: Session, ids: list[int]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        # The write lock is held since the transaction began (BEGIN IMMEDIATE), so the
        # unfolded rows up to the last id read are exactly the ones read: one statement
        # through the partial index instead of IN lists of 500.
        session.connection().exec_driver_sql(
            "UPDATE decision_outcomes SET folded = 1 WHERE folded = 0 AND id <= ?", (max(ids),)
        )
        return
    # One statement, the ids as one binary array (an expanded IN of 500 a statement was a
    # tenth of a busy server's ingest of responses).
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(
            "UPDATE decision_outcomes SET folded = true WHERE id = ANY(%b::bigint[])", [ids]
        )
    finally:
        cursor.close()


def _day(at: datetime) -> object:
    # Days are relata's local days (Europe/Berlin), like the caps that count them.
    return at.astimezone(BERLIN).date()


def _landmark(session: Session, now: float, half_life_days: float) -> float:
    """The forward-decay landmark; moved to now (and every count scaled down to match) once
    counts would grow past what a float holds comfortably."""
    found = session.execute(
        select(DecisionState.landmark).where(DecisionState.id == STATE_ID)
    ).scalar_one()
    if found is None:
        found = now
    elif half_life_days > 0 and (now - found) / (half_life_days * 86400) > REBASE_HALF_LIVES:
        factor = decay(found, now, half_life_days)
        t = DecisionStat.__table__
        session.execute(t.update().values(shows=t.c.shows * factor, wins=t.c.wins * factor))
        found = now
    else:
        return found
    session.execute(
        update(DecisionState).where(DecisionState.id == STATE_ID).values(landmark=found)
    )
    return found


def _write_stats(
    session: Session, counts: dict[tuple[int, int], list], now: float, version: int
) -> None:
    """One upsert a row: a sum, so no read of the stored counts is needed."""
    if session.get_bind().dialect.name == "sqlite":
        _write_stats_sqlite(session, counts, now, version)
        return
    rows = [
        (offer_id, cell, label[:300], shows, wins, now, version)
        for (offer_id, cell), (shows, wins, label) in sorted(counts.items())
    ]
    if not rows:
        return
    # One statement over arrays, a binary parameter a column: SQLAlchemy's executemany of
    # the upsert built a dictionary and a VALUES group a row, and a fold job of 250
    # outcomes touches ~1,000 counts. Keys are unique here (a dict's), as ON CONFLICT DO
    # UPDATE needs within one statement.
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(_STATS_PG, [list(col) for col in zip(*rows, strict=True)])
    finally:
        cursor.close()


_STATS_PG = (
    "INSERT INTO decision_stats (offer_id, cell, label, shows, wins, at, version) "
    "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::float8[], "
    "%b::float8[], %b::float8[], %b::bigint[]) "
    "ON CONFLICT (offer_id, cell) DO UPDATE SET "
    "shows = decision_stats.shows + excluded.shows, "
    "wins = decision_stats.wins + excluded.wins, "
    "at = excluded.at, version = excluded.version"
)

_STATS_COLUMNS = ("offer_id", "cell", "label", "shows", "wins", "at", "version")
_STATS_SQL: dict[int, str] = {}
_STATS_CHUNKS = (128, 32, 8, 2, 1)  # few statement shapes; 7 × 128 under SQLite's 999


def _write_stats_sqlite(
    session: Session, counts: dict[tuple[int, int], list], now: float, version: int
) -> None:
    """The same upserts as multi-row statements through the driver. An executemany
    releases and retakes the GIL once a row, and in a busy server each retake waits behind
    the event loop: a fold that takes milliseconds alone took 50–200 in the server, and
    the decisions committed behind it waited too. (SQLAlchemy compiling multi-row VALUES
    of each new length cost more than it saved.)"""
    rows = [
        (offer_id, cell, label[:300], shows, wins, now, version)
        for (offer_id, cell), (shows, wins, label) in sorted(counts.items())
    ]
    _upsert_sqlite(session, rows, _stats_sql)


def _upsert_sqlite(session: Session, rows: list[tuple], sql_for: Any) -> None:
    """``rows`` in multi-row statements of a few sizes (``sql_for(size)``: compiled once
    each by SQLite's statement cache), through the driver."""
    conn = session.connection()
    at = 0
    while at < len(rows):
        size = next(n for n in _STATS_CHUNKS if n <= len(rows) - at)
        conn.exec_driver_sql(sql_for(size), tuple(chain.from_iterable(rows[at : at + size])))
        at += size


def _stats_sql(n: int) -> str:
    found = _STATS_SQL.get(n)
    if found is None:
        row = "(" + ", ".join("?" * len(_STATS_COLUMNS)) + ")"
        found = _STATS_SQL[n] = (
            f"INSERT INTO decision_stats ({', '.join(_STATS_COLUMNS)}) "
            f"VALUES {', '.join([row] * n)} "
            "ON CONFLICT (offer_id, cell) DO UPDATE SET "
            "shows = decision_stats.shows + excluded.shows, "
            "wins = decision_stats.wins + excluded.wins, "
            "at = excluded.at, version = excluded.version"
        )
    return found


_USAGE_PG = (
    "INSERT INTO decision_usage (scope, day, control, shows, wins, spent) "
    "SELECT * FROM unnest(%b::text[], %b::date[], %b::boolean[], %b::bigint[], "
    "%b::bigint[], %b::float8[]) "
    "ON CONFLICT (scope, day, control) DO UPDATE SET "
    "shows = decision_usage.shows + excluded.shows, "
    "wins = decision_usage.wins + excluded.wins, "
    "spent = decision_usage.spent + excluded.spent"
)


def _write_usage(session: Session, usage: dict[tuple[str, object, bool], list[float]]) -> None:
    if not usage:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One statement over arrays: SQLAlchemy's executemany was a round of the pipeline
        # a row, and a fold job touches one row an offer and channel shown.
        ordered = sorted(usage.items(), key=lambda kv: kv[0][:2])
        columns = [
            [k[0] for k, _ in ordered],
            [k[1] for k, _ in ordered],
            [k[2] for k, _ in ordered],
            [int(v[0]) for _, v in ordered],
            [int(v[1]) for _, v in ordered],
            [float(v[2]) for _, v in ordered],
        ]
        cursor = session.connection().connection.cursor()
        try:
            cursor.execute(_USAGE_PG, columns)
        finally:
            cursor.close()
        return
    _write_usage_sqlite(session, usage)


_USAGE_SQL: dict[int, str] = {}


def _write_usage_sqlite(
    session: Session, usage: dict[tuple[str, object, bool], list[float]]
) -> None:
    """The usage upserts as multi-row statements through the driver, as the counts'."""
    rows = [
        (scope, day.isoformat(), int(control), int(v[0]), int(v[1]), float(v[2]))  # type: ignore[attr-defined]
        for (scope, day, control), v in sorted(usage.items(), key=lambda kv: kv[0][:2])
    ]
    _upsert_sqlite(session, rows, _usage_sql)


def _usage_sql(n: int) -> str:
    found = _USAGE_SQL.get(n)
    if found is None:
        found = _USAGE_SQL[n] = (
            "INSERT INTO decision_usage (scope, day, control, shows, wins, spent) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
            + " ON CONFLICT (scope, day, control) DO UPDATE SET "
            "shows = decision_usage.shows + excluded.shows, "
            "wins = decision_usage.wins + excluded.wins, "
            "spent = decision_usage.spent + excluded.spent"
        )
    return found


def pending(session: Session) -> int:
    """Outcomes not folded yet (for status displays and tests)."""
    o = DecisionOutcome
    return session.execute(select(func.count()).where(~o.folded)).scalar_one()
