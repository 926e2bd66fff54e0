"""The rule language without a database: text and JSON forms, errors, limits, validation."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relata.segments.fields import REGISTRY
from relata.segments.rules import (
    RuleError,
    RuleSyntaxError,
    ast,
    check_text,
    from_json,
    parse,
    to_json,
    to_text,
    validate,
)
from relata.segments.rules.limits import MAX_DEPTH, MAX_NODES, MAX_TEXT
from tests.test_rules_strategies import NOWS, any_rule, typed_rule

EXAMPLE = (
    'gender = "f" and age > 30 and postcode starts with "8" '
    'and has purchase where category = "Laufschuhe" in last 90 days '
    'and not has contract where (category = "Kreditkarte" and status = "active") '
    'and not has event "Email Opened" where properties.campaign = "newsletter" since 2025-06-01'
)


# --- the two forms convert into each other without loss ------------------------------------


@given(any_rule)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_text_form_reads_back_into_the_same_tree(rule):
    assert parse(to_text(rule)) == rule


@given(any_rule)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_json_form_survives_serialisation_and_reads_back_into_the_same_tree(rule):
    wire = json.loads(json.dumps(to_json(rule)))
    assert from_json(wire) == rule
    assert to_text(from_json(wire)) == to_text(rule)


@given(typed_rule(NOWS[0], ("vip",)))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_generated_rules_over_the_registry_are_valid(rule):
    validate(rule, REGISTRY, lambda name: name == "vip")


def test_the_marketers_sentence_reads_as_expected():
    rule = parse(EXAMPLE)
    assert isinstance(rule, ast.And) and len(rule.items) == 6
    shoes = rule.items[3]
    assert shoes == ast.Has(
        ast.Source("purchases", None, ast.Cond("category", "=", "Laufschuhe"), ast.Last(90, "days"))
    )
    newsletter = rule.items[5]
    assert newsletter == ast.Not(
        ast.Has(
            ast.Source(
                "events",
                "Email Opened",
                ast.Cond("properties.campaign", "=", "newsletter"),
                ast.Since(date(2025, 6, 1)),
            )
        )
    )
    assert to_text(rule) == EXAMPLE
    check_text(EXAMPLE, REGISTRY)


def test_where_takes_one_condition_so_a_following_and_belongs_to_the_customer():
    rule = parse('has purchase where category = "x" and age > 30')
    assert rule == ast.And(
        (
            ast.Has(ast.Source("purchases", None, ast.Cond("category", "=", "x"))),
            ast.Cond("age", ">", Decimal(30)),
        )
    )


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        (
            "created_at since 31.12.2025",
            ast.Cond("created_at", "within", ast.Since(date(2025, 12, 31))),
        ),
        ("birth_date < 1.2.1980", ast.Cond("birth_date", "<", date(1980, 2, 1))),
        ("city = „Köln“", ast.Cond("city", "=", "Köln")),
        ("city = 'Köln'", ast.Cond("city", "=", "Köln")),
        (
            "age ≥ 18 UND age ≤ 65",
            ast.And((ast.Cond("age", ">=", Decimal(18)), ast.Cond("age", "<=", Decimal(65)))),
        ),
        ("nicht email is set", ast.Not(ast.Cond("email", "is set"))),
        (
            "a = 1 oder b = 2",
            ast.Or((ast.Cond("a", "=", Decimal(1)), ast.Cond("b", "=", Decimal(2)))),
        ),
        ("has event in last 3 Tagen", ast.Has(ast.Source("events", window=ast.Last(3, "days")))),
        ("has purchase this Month", ast.Has(ast.Source("purchases", window=ast.This("month")))),
        ("birthday today", ast.Cond("birthday", "within", ast.This("day"))),
        ("x <> 2", ast.Cond("x", "!=", Decimal(2))),
        ('in segment "VIP Kunden"', ast.InSegment("VIP Kunden")),
    ],
)
def test_german_friendly_input(text, tree):
    assert parse(text) == tree


# --- errors say where and what was expected -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("age >", 6, "expected a value"),
        ("age 30", 5, "expected a comparison"),
        ('gender = "f" and', 17, "expected a condition"),
        ('gender = "f" age > 3', 14, "expected 'and', 'or' or the end"),
        ("(age > 3", 9, "expected ')'"),
        ('city = "Köln', 8, "text value not closed"),
        ("birth_date < 31.02.1980", 14, "there is no such day"),
        ("has purchase in last 3 fortnights", 24, "expected days, weeks, months or years"),
        ("has purchase in last 2.5 days", 22, "a whole number"),
        ("count(purchases) >= many", 21, "expected a number"),
        ("sum(purchases) > 3", 14, "expected 'of'"),
        ("city contains 3", 15, "expected a text in quotes"),
        ("age > 30days", 7, "expected a number"),
        ("age > 1234567890123456", 7, "out of range"),
        ("age > 1.0000000000000001", 7, "more than 15 digits"),
        ("city = 'a' § 3", 12, "unexpected character '§'"),
        ("created_at between 2.1.2025 and 1.1.2025", 33, "on or after 2025-01-02"),
        ('properties."a.b" = 1', 12, "a name after '.'"),
    ],
)
def test_syntax_errors_point_at_the_position_and_say_what_was_expected(text, column, says):
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    assert caught.value.column == column, str(caught.value)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"line 1, column {column}: ")


def test_errors_on_later_lines_name_the_line():
    with pytest.raises(RuleSyntaxError) as caught:
        parse('gender = "f"\nand age >\n')
    assert (caught.value.line, caught.value.column) == (3, 1)


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("agee > 30", 1, "unknown field 'agee'; did you mean age?"),
        ('gender = "female"', 1, "gender is one of m, f, d, not 'female'"),
        ('age > 30 and age = "dreißig"', 14, "age is compared with a number, not a text"),
        ('has purchase where colour = "rot"', 20, "unknown field 'colour' of purchases"),
        ('has event where campaign = "x"', 17, "properties.campaign"),
        ("birthday = 2020-01-01", 1, "takes a time window"),
        ("birthday since 2020-01-01", 1, "takes 'in last …'"),
        ("sum(category of purchases) > 1", 1, "sum needs a number field"),
        ("age in last 3 days", 1, "a time window does not apply"),
        ("email < 3", 1, "compared with a text"),
        ('gender > "f"', 1, "compare it with =, != or in"),
        ("has event where properties.n > true", 17, "compared with = or != only"),
        ("has purchase where has event", 20, "cannot hold 'has'"),
        ('in segment "nope"', 1, "there is no segment 'nope'"),
    ],
)
def test_unknown_fields_and_type_mismatches_are_refused_at_their_place(text, column, says):
    with pytest.raises(RuleError) as caught:
        check_text(text, REGISTRY, segment_exists=lambda name: False)
    assert says in str(caught.value)
    assert caught.value.column == column, str(caught.value)


@pytest.mark.parametrize(
    ("data", "path", "says"),
    [
        ([], "rule", "expected an object"),
        ({"and": [{"field": "age", "op": ">", "value": 1}]}, "and", "at least two"),
        ({"field": "age", "op": "like", "value": 1}, "op", "unknown operator 'like'"),
        ({"field": "age", "op": ">"}, "value", "needs a value"),
        ({"field": "age", "op": "is set", "value": 1}, "value", "takes no value"),
        ({"field": "age", "op": ">", "value": 1, "x": 1}, "rule", "unknown key 'x'"),
        ({"field": "x; DROP TABLE customers", "op": "is set"}, "field", "not a field name"),
        ({"field": "a", "op": "=", "value": {"date": "2025-02-30"}}, "value.date", "YYYY-MM-DD"),
        ({"field": "a", "op": "=", "value": 1e300}, "value", "out of range"),
        ({"field": "a", "op": "=", "value": [1]}, "value", "expected a text, a number"),
        ({"has": {"collection": "orders"}}, "has.collection", "expected one of events"),
        ({"has": {"collection": "purchases", "name": "x"}}, "has.name", "only events"),
        (
            {
                "agg": "count",
                "field": "amount",
                "of": {"collection": "purchases"},
                "op": ">",
                "value": 1,
            },
            "field",
            "count takes no field",
        ),
        (
            {"not": {"field": "a", "op": "within", "value": {"last": -1, "unit": "days"}}},
            "not.value.last",
            "whole number",
        ),
        ({"or": [{"segment": 1}, {"segment": "a"}]}, "or.0.segment", "expected a text"),
        ({"field": "a", "op": "=", "value": "x\x00"}, "value", "NUL"),
    ],
)
def test_json_errors_name_the_place(data, path, says):
    with pytest.raises(RuleError) as caught:
        from_json(data)
    assert caught.value.path == path, str(caught.value)
    assert says in str(caught.value)


# --- bounded size: a rule is user input that becomes a query --------------------------------


def test_nesting_and_size_are_bounded_in_both_forms():
    deep = "(" * 50 + "age > 1" + ")" * 50
    with pytest.raises(RuleSyntaxError, match=f"deeper than {MAX_DEPTH}"):
        parse(deep)
    nots = "not " * 4000 + "age > 1"
    with pytest.raises(RuleSyntaxError, match="deeper"):
        parse(nots)
    wide = " or ".join(["age > 1"] * (MAX_NODES + 1))
    with pytest.raises(RuleSyntaxError, match=f"more than {MAX_NODES}"):
        parse(wide)
    with pytest.raises(RuleSyntaxError, match="longer than"):
        parse("a" * (MAX_TEXT + 1))
    nested: dict = {"field": "age", "op": ">", "value": 1}
    for _ in range(100):
        nested = {"not": nested}
    with pytest.raises(RuleError, match="deeper"):
        from_json(nested)
    with pytest.raises(RuleError, match="more than"):
        from_json({"or": [{"field": "age", "op": "is set"}] * (MAX_NODES + 1)})


@given(st.text(max_size=200))
@settings(max_examples=500)
def test_any_text_parses_or_fails_with_a_rule_error(text):
    try:
        rule = parse(text)
    except RuleError as exc:
        assert exc.message
    else:
        assert parse(to_text(rule)) == rule


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "and",
                        "or",
                        "not",
                        "field",
                        "op",
                        "value",
                        "has",
                        "collection",
                        "agg",
                        "of",
                        "segment",
                        "where",
                        "window",
                        "last",
                        "unit",
                    ]
                ),
                c,
                max_size=4,
            )
        ),
    )
)
@settings(max_examples=500)
def test_any_json_reads_or_fails_with_a_rule_error(data):
    try:
        rule = from_json(data)
    except RuleError as exc:
        assert exc.message
    else:
        assert from_json(to_json(rule)) == rule
