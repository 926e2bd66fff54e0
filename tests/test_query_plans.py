"""The hot reads use indexes, never a scan of a table that grows with the customer base."""

from __future__ import annotations

from sqlalchemy import text

from relata.profiles import service as profiles
from tests.helpers import make_source, put, rec


def _plan(db, sql: str, params: dict) -> str:
    with db.session(write=False) as s:
        if db.is_sqlite:
            rows = s.execute(text(f"EXPLAIN QUERY PLAN {sql}"), params).all()
            return "\n".join(str(r[-1]) for r in rows)
        s.execute(
            text("SET LOCAL enable_seqscan = off")
        )  # tiny tables: ask what it would do at scale
        return "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {sql}"), params))


def _compiled(db, stmt) -> tuple[str, dict]:
    return str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True})), {}


def test_name_search_uses_the_name_indexes(db, settings):
    make_source(db, "shop")
    put(db, settings, "shop", rec("K1", first_name="Jürgen", last_name="Müller"))
    from sqlalchemy import or_, select

    from relata.profiles.models import Customer

    token = "mueller"
    stmt = select(Customer.id).where(
        Customer.status == "active",
        or_(
            Customer.last_name_key.between(token, token + "\U0010ffff"),
            Customer.first_name_key.between(token, token + "\U0010ffff"),
        ),
    )
    sql, params = _compiled(db, stmt)
    plan = _plan(db, sql, params)
    assert "ix_customers_last_name_key" in plan and "ix_customers_first_name_key" in plan, plan
    with db.session(write=False) as s:
        assert profiles.name_matches(s, ["mueller"], 10)


def test_identifier_lookup_and_timeline_use_their_indexes(db, settings):
    plan = _plan(
        db,
        "SELECT customer_id FROM identifiers WHERE kind = :k AND value = :v",
        {"k": "email", "v": "a@b.de"},
    )
    assert "ix_identifiers_kind_value" in plan, plan
    plan = _plan(
        db,
        "SELECT id FROM events WHERE customer_id = :c ORDER BY occurred_at DESC, id DESC LIMIT 50",
        {"c": 1},
    )
    assert "ix_events_customer_time" in plan, plan
    assert "TEMP B-TREE" not in plan.upper()  # no sort of the whole history
