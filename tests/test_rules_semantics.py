"""What a rule means, decided once for both compilers: days in German time, ages and
birthdays around 29 February, months of different lengths, missing values, JSON types,
exact sums. Pure: the Python compiler over in-memory profiles (the agreement tests hold
the SQL compiler to the same answers)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from relata.segments.compile_py import Context, compile_rule
from relata.segments.fields import REGISTRY
from relata.segments.profile import EventRow, HoldingRow, Profile
from relata.segments.rules import ast, check_text
from relata.segments.rules.timing import birth_date_limit, moment_bounds, shift


def matches(rule: str, profile: Profile, now: datetime) -> bool:
    return compile_rule(check_text(rule, REGISTRY), REGISTRY)(profile, Context(now))


def person(**fields: object) -> Profile:
    return Profile(1, dict(fields))


def event(name: str, at: datetime, **props: object) -> EventRow:
    return EventRow(name, "track", "web", at, props)


def purchase(amount: str | None, at: datetime) -> HoldingRow:
    value = None if amount is None else Decimal(amount)
    return HoldingRow("purchase", None, None, "x", "o", None, value, "EUR", "completed", at, None)


@pytest.mark.parametrize(
    ("today", "birth", "age"),
    [
        (date(2025, 2, 28), date(2000, 2, 29), 24),  # no 29 February in 2025: not yet
        (date(2025, 3, 1), date(2000, 2, 29), 25),
        (date(2024, 2, 29), date(2000, 2, 29), 24),
        (date(2024, 2, 28), date(2000, 2, 29), 23),
        (date(2025, 12, 31), date(1990, 12, 31), 35),
    ],
)
def test_age_in_whole_years_on_todays_date(today, birth, age):
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    profile = person(birth_date=birth)
    assert matches(f"age = {age}", profile, now)
    assert not matches(f"age > {age}", profile, now)
    limit = birth_date_limit(today, age)
    assert limit is not True and limit is not False and birth <= limit


def test_birthdays_on_29_february_are_celebrated_on_the_28th_without_one():
    leapling = person(birth_date=date(2000, 2, 29))
    assert matches("birthday today", leapling, datetime(2025, 2, 28, 12, tzinfo=UTC))
    assert not matches("birthday today", leapling, datetime(2024, 2, 28, 12, tzinfo=UTC))
    assert matches("birthday in next 7 days", leapling, datetime(2025, 2, 22, 12, tzinfo=UTC))
    assert not matches("birthday in next 5 days", leapling, datetime(2025, 2, 22, 12, tzinfo=UTC))


def test_days_are_german_days():
    # 23:30 UTC on 31 May is already 1 June in Berlin.
    late = datetime(2025, 5, 31, 22, 30, tzinfo=UTC)
    assert matches("created_at = 01.06.2025", person(created_at=late), late)
    assert matches("created_at since 2025-06-01", person(created_at=late), late)
    assert not matches("created_at before 2025-06-01", person(created_at=late), late)
    bounds = moment_bounds(ast.Since(date(2025, 6, 1)), late)
    assert bounds.lo == datetime(2025, 5, 31, 22, 0, tzinfo=UTC)
    # Across the switch to winter time the day is 25 hours long.
    autumn = moment_bounds(ast.Between(date(2025, 10, 26), date(2025, 10, 26)), late)
    assert autumn.hi - autumn.lo == timedelta(hours=25)


def test_months_keep_the_day_where_it_exists():
    assert shift(date(2025, 3, 31), -1, "months") == date(2025, 2, 28)
    assert shift(date(2024, 3, 31), -1, "months") == date(2024, 2, 29)
    assert shift(date(2024, 2, 29), 1, "years") == date(2025, 2, 28)
    assert shift(date(1, 1, 1), -1, "days") is None  # before the calendar: open-ended


def test_a_missing_value_fails_every_comparison_and_not_turns_it_round():
    nobody = person(city=None)
    empty = person(city="")
    now = datetime(2025, 7, 1, tzinfo=UTC)
    for profile in (nobody, empty):
        assert not matches('city = "Köln"', profile, now)
        assert not matches('city != "Köln"', profile, now)
        assert not matches('city not in ("Köln")', profile, now)
        assert matches('not city = "Köln"', profile, now)
        assert matches("city is empty", profile, now)


def test_text_compares_case_sensitively_by_code_point():
    now = datetime(2025, 7, 1, tzinfo=UTC)
    assert not matches('city = "köln"', person(city="Köln"), now)
    assert matches('city < "a"', person(city="Z"), now)  # upper case sorts first
    assert matches('city contains "ö"', person(city="Köln"), now)


def test_properties_compare_by_their_json_type():
    now = datetime(2025, 7, 1, tzinfo=UTC)
    profile = Profile(1, {}, events=[event("X", now, n="5", m=5, b=True, z=None)])
    assert not matches("has event where properties.n = 5", profile, now)  # a text "5"
    assert matches('has event where properties.n = "5"', profile, now)
    assert matches("has event where properties.m = 5", profile, now)
    assert matches("has event where properties.b = true", profile, now)
    assert not matches("has event where properties.b = 1", profile, now)
    assert matches("has event where properties.z is empty", profile, now)


def test_sums_are_exact_and_zero_over_nothing():
    now = datetime(2025, 7, 1, tzinfo=UTC)
    cents = Profile(1, {}, holdings=[purchase("0.10", now), purchase("0.20", now)])
    assert matches("sum(amount of purchases) = 0.3", cents, now)  # not 0.30000000000000004
    events = Profile(1, {}, events=[event("O", now, r=0.1), event("O", now, r=0.2)])
    assert matches("sum(properties.r of events) = 0.3", events, now)
    nothing = Profile(1, {})
    assert matches("sum(amount of purchases) < 1", nothing, now)
    assert not matches("max(amount of purchases) < 1", nothing, now)
    assert matches("purchases_total = 0", nothing, now)


def test_windows_include_both_ends_of_last_and_next():
    now = datetime(2025, 7, 1, 12, tzinfo=UTC)
    edge = Profile(1, {}, events=[event("E", datetime(2025, 6, 1, 12, tzinfo=UTC))])
    assert matches('has event "E" in last 30 days', edge, now)
    assert not matches('has event "E" in last 29 days', edge, now)
    future = Profile(1, {}, events=[event("E", datetime(2025, 7, 2, tzinfo=UTC))])
    assert not matches('has event "E" in last 30 days', future, now)
    assert matches('has event "E" in next 1 day', future, now)
