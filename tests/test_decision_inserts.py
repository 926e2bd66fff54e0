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


# PostgreSQL keeps no NUL in text or JSON, whichever way it is sent; no lone surrogates.
TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(TEXT, max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=5), inner),
    max_leaves=8,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(
            st.none() | st.text(TEXT, max_size=20),  # anonymous_id
            st.dictionaries(st.text(TEXT, max_size=6), JSON, max_size=3),  # context
            st.booleans(),
            st.lists(JSON, max_size=3),  # offers: a list, which must stay one JSON value
            st.none() | st.text(TEXT, max_size=30),  # blocked
            st.integers(0, 2**40),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_group_commits_deferred_rows_are_stored_as_given(db, rows):
    """db.flush_deferred: on PostgreSQL one statement a table in a pipeline, VALUES for a
    few rows and unnest for more (both sizes are drawn)."""
    from relata.db import DEFERRED, defer_insert, flush_deferred
    from relata.decisions.models import Decision
    from relata.decisions.service import DECISION_COLUMNS

    rows = [tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in r) for r in rows]
    ids = [uuid.uuid4() for _ in rows]
    full = [
        (i, 7, 7, anon, "web", None, context, control, offers, ["c0"], 3, {}, blocked, version, AT)
        for i, (anon, context, control, offers, blocked, version) in zip(ids, rows, strict=True)
    ]
    half = len(full) // 2
    with db.session() as s:
        s.info[DEFERRED] = {}
        defer_insert(s, Decision.__table__, list(DECISION_COLUMNS), full[:half])
        defer_insert(s, Decision.__table__, list(DECISION_COLUMNS), full[half:])
        flush_deferred(s)
    with db.session(write=False) as s:
        stored = {d.id: d for d in s.scalars(select(Decision).where(Decision.id.in_(ids)))}
    assert len(stored) == len(full)
    for i, anon, context, control, offers, blocked, version in (
        (r[0], r[3], r[6], r[7], r[8], r[12], r[13]) for r in full
    ):
        d = stored[i]
        assert (d.anonymous_id, d.context, d.control, d.offers) == (anon, context, control, offers)
        assert (d.blocked, d.catalogue_version, d.created_at) == (blocked, version, AT)
