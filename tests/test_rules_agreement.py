"""Both compilers agree on every customer: random rules over random data, on SQLite and
PostgreSQL. The data and the rules draw from the same small pools, so that equal values,
window bounds, missing values and empty texts meet often."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import count

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relata.consent.models import ConsentEntry
from relata.db import Database
from relata.events.models import Event
from relata.identity.models import Identifier
from relata.ingest.models import Source
from relata.profiles.models import Customer, Holding
from relata.segments import compile_py, compile_sql
from relata.segments.fields import REGISTRY
from relata.segments.loader import load_profiles, needs_of
from relata.segments.rules import ast, validate
from tests.test_rules_strategies import (
    CONSENT_CHANNELS,
    EVENT_NAMES,
    NOWS,
    PROPERTY_KEYS,
    PURPOSES,
    TEXTS,
    day_pool,
    moment_pool,
    typed_rule,
)

PROPERTY_VALUES = [
    "", "a", "ab", "Ab", "shoes", "x y", 0, 1, 2, 3, -1, 0.5, 2.5, 10, 99.99, 100, 0.125,
    1.005, 0.1, 0.2, True, False, None, [1], {"a": 1}, 1e12, 10**13, 2**53 + 1,
]  # fmt: skip
AMOUNTS = [
    None,
    *(Decimal(x) for x in ("0", "0.01", "0.1", "0.2", "0.29", "0.5", "1", "2.5", "99.99", "150")),
]
QUANTITIES = [None, *(Decimal(x) for x in ("0.5", "1", "2", "2.125"))]
maybe_text = st.none() | st.sampled_from(TEXTS)


@st.composite
def datasets(draw: st.DrawFn, now: datetime) -> dict[str, list[dict]]:
    moments = st.sampled_from(moment_pool(now))
    ids = count(1)
    data: dict[str, list[dict]] = {
        "customers": [], "events": [], "holdings": [], "identifiers": [], "consent_entries": []
    }  # fmt: skip
    # Few instants, so that entries tie; two sides per customer, as after a merge.
    instants = st.sampled_from(moment_pool(now)[:3])
    n = draw(st.integers(3, 8))
    for cid in range(1, n + 1):
        merged = cid > 1 and draw(st.integers(0, 9)) == 0
        data["customers"].append(
            {
                "id": cid,
                "status": "merged" if merged else "active",
                "merged_into_id": 1 if merged else None,
                "first_name": draw(maybe_text),
                "last_name": draw(maybe_text),
                "gender": draw(st.none() | st.sampled_from(["m", "f", "d", ""])),
                "birth_date": draw(st.none() | st.sampled_from(day_pool(now))),
                "company": draw(maybe_text),
                "email": draw(maybe_text),
                "postcode": draw(maybe_text),
                "city": draw(maybe_text),
                "country": draw(st.none() | st.sampled_from(["DE", "AT", "", "a", "ab", "Ab"])),
                "provenance": {},
                "created_at": draw(moments),
                "updated_at": draw(moments),
            }
        )
        for _ in range(draw(st.integers(0, 5))):
            keys = draw(st.lists(st.sampled_from(PROPERTY_KEYS), max_size=3, unique=True))
            data["events"].append(
                {
                    "id": next(ids),
                    "source_id": draw(st.sampled_from([1, 2])),
                    "message_id": f"m{next(ids)}",
                    "customer_id": cid,
                    "origin_customer_id": cid,
                    "type": draw(st.sampled_from(["track", "page", "identify"])),
                    "name": draw(st.none() | st.sampled_from(EVENT_NAMES)),
                    "properties": {k: draw(st.sampled_from(PROPERTY_VALUES)) for k in keys},
                    "context": {},
                    "occurred_at": draw(moments),
                    "received_at": now,
                    "profiling": draw(st.integers(0, 4)) > 0,
                }
            )
        for _ in range(draw(st.integers(0, 4))):
            data["holdings"].append(
                {
                    "id": next(ids),
                    "customer_id": cid,
                    "origin_customer_id": cid,
                    "source_id": 1,
                    "kind": draw(st.sampled_from(["purchase", "contract"])),
                    "reference": f"r{next(ids)}",
                    "line": "0",
                    "product_name": draw(maybe_text),
                    "category": draw(maybe_text),
                    "quantity": draw(st.sampled_from(QUANTITIES)),
                    "amount": draw(st.sampled_from(AMOUNTS)),
                    "currency": draw(st.none() | st.sampled_from(["EUR", ""])),
                    "status": draw(st.sampled_from(["completed", "active", "ended"])),
                    "started_at": draw(moments),
                    "ended_at": draw(st.none() | moments),
                }
            )
        for _ in range(draw(st.integers(0, 5))):
            sides = [cid, cid + 100]
            data["consent_entries"].append(
                {
                    "id": next(ids),
                    "customer_id": cid,
                    "origin_customer_id": draw(st.sampled_from(sides)),
                    "purpose": draw(st.sampled_from(PURPOSES)),
                    "channel": draw(st.sampled_from(CONSENT_CHANNELS)),
                    "action": draw(st.sampled_from(["grant", "revoke", "request"])),
                    "occurred_at": draw(instants),
                    "recorded_at": now,
                    "via": "api",
                    "evidence": {},
                    "covers": draw(st.lists(st.sampled_from(sides), max_size=2, unique=True)),
                }
            )
        for _ in range(draw(st.integers(0, 2))):
            data["identifiers"].append(
                {
                    "id": next(ids),
                    "kind": draw(st.sampled_from(["email", "anonymous_id"])),
                    "value": draw(st.sampled_from(TEXTS[1:])),
                    "customer_id": cid,
                    "origin_customer_id": cid,
                    "created_at": draw(moments),
                }
            )
    return data


TABLES = [ConsentEntry, Identifier, Holding, Event, Customer, Source]


def store(db: Database, data: dict[str, list[dict]]) -> None:
    with db.session() as session:
        for model in TABLES:
            session.execute(sa.delete(model.__table__))
        session.execute(
            sa.insert(Source.__table__),
            [{"id": 1, "name": "shop", "channel": "shop", "trust": 50},
             {"id": 2, "name": "web", "channel": "web", "trust": 20}],
        )  # fmt: skip
        for model in (Customer, Event, Holding, Identifier, ConsentEntry):
            rows = data.get(model.__tablename__)  # type: ignore[attr-defined]
            if rows:
                session.execute(sa.insert(model.__table__), rows)


def members_sql(db: Database, rule: ast.Node, now: datetime, segments: dict) -> set[int]:
    with db.session(write=False) as session:
        dialect = session.get_bind().dialect.name
        compiled = compile_sql.compile_rule(rule, REGISTRY, now, dialect, segments.__getitem__)
        return set(session.scalars(compiled.members()))


def members_py(db: Database, rule: ast.Node, now: datetime, segments: dict) -> set[int]:
    compiled = compile_py.compile_rule(rule, REGISTRY, segments.__getitem__)
    needs = needs_of([rule, *segments.values()], REGISTRY, now)
    with db.session(write=False) as session:
        ids = list(session.scalars(sa.select(Customer.id)))
        profiles = load_profiles(session, ids, needs)
    ctx = compile_py.Context(now)
    return {cid for cid, p in profiles.items() if compiled(p, ctx)}


@st.composite
def scenarios(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    now = draw(st.sampled_from(NOWS))
    s1 = draw(typed_rule(now))
    s2 = draw(typed_rule(now, ("s1",)))
    rules = draw(st.lists(typed_rule(now, ("s1", "s2")), min_size=1, max_size=4))
    return now, draw(datasets(now)), {"s1": s1, "s2": s2}, rules


@given(scenarios())
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
def test_both_compilers_agree_on_every_customer(db, scenario):
    now, data, segments, rules = scenario
    store(db, data)
    for rule in rules:
        validate(rule, REGISTRY, segments.__contains__)
        assert members_sql(db, rule, now, segments) == members_py(db, rule, now, segments), rule


@pytest.mark.parametrize(
    "text",
    [
        'city = "Köln"',
        'not city = "Köln"',
        'city != "Köln"',
        "count(purchases) = 0",
        "sum(amount of purchases) < 1",
        "max(amount of purchases) < 1",
        "not max(amount of purchases) >= 1",
    ],
)
def test_missing_values_are_decided_alike(db, text):
    """A comparison with a missing value is false, and NOT of it is true, in both."""
    from relata.segments.rules import parse

    now = NOWS[0]
    people = [
        {"id": i, "status": "active", "city": city, "provenance": {}, "created_at": now}
        for i, city in ((1, None), (2, ""))
    ]
    store(db, {"customers": people})
    rule = parse(text)
    expected = {
        'city = "Köln"': set(),
        'not city = "Köln"': {1, 2},
        'city != "Köln"': set(),
        "count(purchases) = 0": {1, 2},
        "sum(amount of purchases) < 1": {1, 2},
        "max(amount of purchases) < 1": set(),
        "not max(amount of purchases) >= 1": {1, 2},
    }[text]
    assert members_sql(db, rule, now, {}) == expected
    assert members_py(db, rule, now, {}) == expected
