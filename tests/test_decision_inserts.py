"""The decision log's "insert what is new, say which" on both databases (responses.py's
unnest statement on PostgreSQL, db.insert_new_sqlite's multi-row statements on SQLite)."""

import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from relata.decisions.models import DecisionOutcome
from relata.decisions.responses import OUTCOME_COLUMNS, _insert_new

KEYS = ("decision_id", "offer_id", "kind")
AT = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def row(decision: uuid.UUID, offer: int, kind: str) -> tuple:
    return (decision, offer, kind, "web", False, ["c0", "c0|web"], 0.0, AT, False)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    stored=st.sets(
        st.tuples(st.integers(0, 9), st.integers(1, 30), st.sampled_from(["show", "win"]))
    ),
    batch=st.lists(
        st.tuples(st.integers(0, 9), st.integers(1, 30), st.sampled_from(["show", "win"])),
        max_size=150,  # across the statement sizes (64, 16, 4, 1)
    ),
)
def test_only_new_rows_are_inserted_and_named(db, stored, batch):
    decisions = [uuid.uuid4() for _ in range(10)]  # fresh each example: no clash with others

    def rows(keys):
        return [row(decisions[d], offer, kind) for d, offer, kind in keys]

    with db.session() as s:
        _insert_new(s, DecisionOutcome.__table__, OUTCOME_COLUMNS, rows(sorted(stored)))
    with db.session() as s:
        got = _insert_new(s, DecisionOutcome.__table__, OUTCOME_COLUMNS, rows(batch), KEYS)
    new = {(decisions[d], offer, kind) for d, offer, kind in batch} - {
        (decisions[d], offer, kind) for d, offer, kind in stored
    }
    assert got == new
    assert all(isinstance(k[0], uuid.UUID) and isinstance(k[1], int) for k in got)
    with db.session(write=False) as s:
        count = s.scalar(
            select(func.count())
            .select_from(DecisionOutcome)
            .where(DecisionOutcome.decision_id.in_(decisions))
        )
        labels = s.scalars(
            select(DecisionOutcome.labels).where(DecisionOutcome.decision_id.in_(decisions))
        ).all()
    assert count == len(stored) + len(new)
    assert all(v == ["c0", "c0|web"] for v in labels)
