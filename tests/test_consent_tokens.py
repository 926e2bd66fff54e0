"""Tokens and the cookie-banner choice: pure functions, held to properties."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relata.consent.cookies import allows_profiling, preferences, problem
from relata.consent.tokens import (
    CONFIRM_TOKEN,
    Unsubscribe,
    new_confirm_token,
    read_unsubscribe,
    sign_unsubscribe,
    token_hash,
)

KEY = b"k" * 32
claims = st.builds(
    Unsubscribe,
    st.integers(1, 2**63 - 1),
    st.sampled_from(["marketing", "profiling", "third_party_sharing"]),
    st.sampled_from(["email", "sms", "post"]),
    st.dates(date(2020, 1, 1), date(2100, 1, 1)),
)


@given(claims)
def test_a_signed_link_reads_back_as_signed(claim):
    assert read_unsubscribe(KEY, sign_unsubscribe(KEY, claim)) == claim


@given(claims, st.data())
def test_any_changed_character_makes_a_link_unknown(claim, data):
    token = sign_unsubscribe(KEY, claim)
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCabc019-_.").filter(lambda c: c != token[i]))
    assert read_unsubscribe(KEY, token[:i] + replacement + token[i + 1 :]) is None


@given(claims)
def test_another_key_reads_nothing(claim):
    assert read_unsubscribe(b"x" * 32, sign_unsubscribe(KEY, claim)) is None


def test_confirmation_tokens_are_random_and_stored_as_hashes():
    tokens = {new_confirm_token() for _ in range(100)}
    assert len(tokens) == 100
    for token, digest in tokens:
        assert CONFIRM_TOKEN.fullmatch(token) and digest == token_hash(token) != token


@pytest.mark.parametrize(
    ("context", "channel", "allowed"),
    [
        ({"consent": {"categoryPreferences": {"Personalization": True}}}, "web", True),
        ({"consent": {"categoryPreferences": {"personalisierung": False}}}, "web", False),
        ({"consent": {"categoryPreferences": {"Analytics": True}}}, "web", False),
        ({}, "web", False),  # a tracker that asked nobody
        ({}, "shop", True),  # a shop's server: the ledger decides
        ({"consent": {"categoryPreferences": {"Profiling": True}}}, "shop", True),
    ],
)
def test_profiling_follows_the_visitors_choice(context, channel, allowed):
    assert allows_profiling(context, channel) is allowed


def test_reading_the_choice():
    assert preferences({"consent": {"categoryPreferences": {"A": True, "B": 1}}}) == {"A": True}
    assert preferences({"consent": "yes"}) is None
    assert problem({}) is None
    assert problem({"consent": {"categoryPreferences": {"A": False}}}) is None
    assert "true or false" in problem({"consent": {"categoryPreferences": {"A": "no"}}})
