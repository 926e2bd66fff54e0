"""sync.fold against a plain sum of the same outcomes, on both databases: the decayed
counts per offer and learning cell, and the exact usage per offer, channel, Berlin day
and control flag, however the outcomes are split into folds."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from relata.db import bulk_insert
from relata.decisions import sync
from relata.decisions.bandit import cell_key
from relata.decisions.loader import STATE_ID
from relata.decisions.models import DecisionOutcome, DecisionStat, DecisionState, DecisionUsage

HALF_LIFE = 30.0
BERLIN = ZoneInfo("Europe/Berlin")
# Around the end of summer time in Berlin (25 October 2026, 01:00 UTC): days by local time.
START = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
COLUMNS = [
    "decision_id", "offer_id", "kind", "channel", "control", "labels", "cost", "occurred_at",
    "folded",
]  # fmt: skip

outcome = st.tuples(
    st.integers(1, 4),  # offer
    st.sampled_from(["show", "win"]),
    st.sampled_from(["web", "email"]),
    st.booleans(),  # control
    st.lists(st.sampled_from(["channel=web", "channel=web|tier=1", "é=ü"]), max_size=2),
    st.sampled_from([0.0, 2.5]),  # cost
    st.integers(0, 12 * 60),  # minutes after START
)


def _reset(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        for model in (DecisionOutcome, DecisionStat, DecisionUsage):
            s.execute(delete(model))
        s.execute(update(DecisionState).where(DecisionState.id == STATE_ID).values(landmark=None))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(outcomes=st.lists(outcome, min_size=1, max_size=60), limit=st.integers(1, 70))
def test_a_fold_adds_up_what_a_plain_sum_does(db, outcomes, limit) -> None:  # type: ignore[no-untyped-def]
    _reset(db)
    rows = [
        (uuid.uuid4(), offer, kind, channel, control, ["", *labels], cost,
         START + timedelta(minutes=minute), False)
        for offer, kind, channel, control, labels, cost, minute in outcomes
    ]  # fmt: skip
    with db.session() as s:
        bulk_insert(s, DecisionOutcome.__table__, COLUMNS, rows)
    folded = 0
    while True:
        with db.session() as s:
            done = sync.fold(s, HALF_LIFE, limit)
        folded += done
        if done == 0:
            break
    assert folded == len(rows)
    with db.session(write=False) as s:
        landmark = s.scalar(select(DecisionState.landmark).where(DecisionState.id == STATE_ID))
        stats = {(r.offer_id, r.cell): r for r in s.scalars(select(DecisionStat))}
        usage = {(u.scope, u.day, u.control): u for u in s.scalars(select(DecisionUsage))}
        assert sync.pending(s) == 0

    want: dict[tuple[int, int], list] = defaultdict(lambda: [0.0, 0.0, ""])
    want_usage: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0])
    for _, offer, kind, channel, control, labels, cost, at, _ in rows:
        weight = 2.0 ** ((at.timestamp() - landmark) / (HALF_LIFE * 86400))
        for label in labels:
            entry = want[(offer, cell_key(label))]
            entry[1 if kind == "win" else 0] += weight
            entry[2] = label
        day = at.astimezone(BERLIN).date()
        if kind == "win":
            want_usage[(f"offer:{offer}", day, control)][1] += 1
            want_usage[(f"offer:{offer}", day, control)][2] += cost
        else:
            want_usage[(f"offer:{offer}", day, control)][0] += 1
            want_usage[(f"channel:{channel}", day, control)][0] += 1
    assert set(stats) == set(want)
    for key, (shows, wins, label) in want.items():
        got = stats[key]
        assert (got.shows, got.wins) == (pytest.approx(shows), pytest.approx(wins))
        assert got.label == label
    assert set(usage) == set(want_usage)
    for key, (shows, wins, spent) in want_usage.items():
        got = usage[key]
        assert (got.shows, got.wins, got.spent) == (shows, wins, pytest.approx(spent))
