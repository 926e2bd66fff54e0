"""Every reason an offer is not shown, from the pure engine: policies, limits, rules."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relata.decisions.bandit import CellStats
from relata.decisions.catalogue import Catalogue, OfferSpec, PolicySpec
from relata.decisions.decide import Request, decide
from relata.decisions.features import ResponseRow, build
from relata.decisions.policies import Usage, offer_exclusion
from relata.decisions.snapshot import Config, Model
from relata.decisions.snapshot import build as snapshot
from relata.segments.profile import HoldingRow, Profile

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CHANNELS = frozenset({"web", "email", "sms", "hotline"})


def offer(i: int = 1, **kw) -> OfferSpec:
    base = {
        "id": i,
        "key": f"offer-{i}",
        "name": f"Offer {i}",
        "kind": "product",
        "value": 10.0,
        "channels": CHANNELS,
    }
    return OfferSpec(**{**base, **kw})


def holding(kind="purchase", product="p1", category="cat", days_ago=1, status=None, ended=None):
    return HoldingRow(
        kind=kind,
        product_id=product,
        product_name=None,
        category=category,
        reference=f"r-{product}-{days_ago}",
        quantity=None,
        amount=None,
        currency=None,
        status=status or ("completed" if kind == "purchase" else "active"),
        started_at=NOW - timedelta(days=days_ago),
        ended_at=ended,
    )


def customer(holdings=(), responses=(), **fields):
    return build(Profile(7, dict(fields), holdings=list(holdings)), list(responses), NOW)


def response(offer_id=1, kind="impression", days_ago=1.0, channel="web", decision=None):
    decision = decision or f"d-{offer_id}-{kind}-{days_ago}"
    return ResponseRow(decision, offer_id, "cat", channel, kind, NOW - timedelta(days=days_ago))


def run(offers, state, channel="web", placement=None, policies=(), usage=None, limit=5):
    cat = Catalogue.build(1, list(offers), list(policies))
    snap = snapshot(cat, CellStats(len(cat.offers)), usage or Usage(), Model(), NOW)
    request = Request(channel, placement, {}, limit=limit, explain=True)
    config = Config(control_share=0.0)
    return decide(snap, state, request, NOW, config, np.random.default_rng(1), usage)


def why(outcome, offer_id=1):
    found = next(c for c in outcome.considered if c.offer.id == offer_id)
    return found.code, found.detail


def test_an_eligible_offer_is_chosen_with_a_reason():
    outcome = run([offer()], customer())
    assert [c.offer.id for c in outcome.chosen] == [1]
    assert outcome.chosen[0].reason
    assert why(outcome) == (None, "")


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ({"status": "paused"}, "offer is paused"),
        ({"starts_at": NOW + timedelta(days=1)}, "starts 2026-03-11"),
        ({"ends_at": NOW - timedelta(seconds=1)}, "ended 2026-03-10"),
    ],
)
def test_an_offer_outside_its_dates_or_paused_is_not_live(spec, detail):
    code, text = why(run([offer(**spec)], customer()))
    assert code == "not_live" and text.startswith(detail)


def test_channel_and_placement_restrict_where_an_offer_appears():
    email_only = offer(channels=frozenset({"email"}))
    assert why(run([email_only], customer()))[0] == "channel"
    banner = offer(placements=frozenset({"home"}))
    assert why(run([banner], customer(), placement="checkout"))[0] == "placement"
    assert run([banner], customer(), placement="home").chosen


@pytest.mark.parametrize(
    ("spec", "usage", "code"),
    [
        ({"cap_total": 100}, Usage(offer_total={1: 100}), "cap_total"),
        ({"cap_daily": 5}, Usage(offer_today={1: 5}), "cap_daily"),
        ({"budget": 50.0, "cost": 10.0}, Usage(offer_spent={1: 45.0}), "budget"),
    ],
)
def test_volume_caps_and_budgets(spec, usage, code):
    assert why(run([offer(**spec)], customer(), usage=usage))[0] == code
    # One short of the cap: still shown.
    assert run([offer(**spec)], customer(), usage=Usage()).chosen


def test_a_signed_contract_suppresses_the_offer_on_every_channel():
    mortgage = offer(product_id="mortgage", category="loans", suppress_held="category")
    signed = customer([holding("contract", "mortgage-plus", "loans", days_ago=1)])
    for channel in CHANNELS:
        code, detail = why(run([mortgage], signed, channel=channel))
        assert code == "held" and "active contract" in detail, channel


def test_a_recent_purchase_suppresses_for_held_days_only():
    shoes = offer(product_id="p1", held_days=30)
    assert why(run([shoes], customer([holding(days_ago=10)])))[0] == "held"
    assert run([shoes], customer([holding(days_ago=31)])).chosen
    # Category suppression is opt-in: another product of the category does not count.
    assert run([shoes], customer([holding(product="p2", days_ago=1)])).chosen


def test_an_ended_contract_no_longer_suppresses():
    gone = holding("contract", "p1", "cat", days_ago=400, ended=NOW - timedelta(days=200))
    assert run([offer(product_id="p1", held_days=30)], customer([gone])).chosen


def test_three_impressions_suppress_for_thirty_days_after_the_third():
    limited = offer(max_impressions=3, impression_window_days=30)
    two = [response(days_ago=d) for d in (20, 10)]
    assert run([limited], customer(responses=two)).chosen
    three = [*two, response(days_ago=5)]
    code, detail = why(run([limited], customer(responses=three)))
    assert code == "impressions" and "again from 2026-04-04" in detail
    # Thirty days after the third impression it may be shown again.
    old = [response(days_ago=d) for d in (45, 40, 31)]
    assert run([limited], customer(responses=old)).chosen


def _impressions_reference(times, limit, window, now):
    """The rule as first written: every check sorts the recent impressions again."""
    times = sorted(at for at in times if at > now - window * 2)
    for i in range(len(times) - 1, limit - 2, -1):
        if now - times[i] >= window:
            break
        if times[i] - times[i - limit + 1] <= window:
            return times[i] + window
    return None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 120), max_size=12),
    st.integers(1, 5),
    st.integers(1, 40),
    st.lists(st.floats(-60, 60), min_size=1, max_size=4),
    st.floats(0, 30),
)
def test_the_remembered_impression_limit_agrees_with_the_rule(days, limit, window, laters, new):
    from relata.decisions.policies import impressions

    limited = offer(max_impressions=limit, impression_window_days=window)
    state = customer(responses=[response(days_ago=d) for d in days])

    def check() -> None:
        shown = list(state.impressions.get(1, {}).values())
        for later in laters:  # one history, asked about at several moments
            now = NOW + timedelta(days=later)
            until = _impressions_reference(shown, limit, timedelta(days=window), now)
            found = impressions(limited, state, now)
            assert (found is None) == (until is None)
            if found is not None:
                assert f"again from {until:%Y-%m-%d}" in found.detail

    check()
    state.record(response(days_ago=new))  # a new impression: what was remembered is stale
    check()


def test_a_rejection_suppresses_for_its_days():
    offer_ = offer(reject_suppress_days=30)
    assert (
        why(run([offer_], customer(responses=[response(kind="reject", days_ago=29)])))[0]
        == "rejected"
    )
    assert run([offer_], customer(responses=[response(kind="reject", days_ago=31)])).chosen


def test_an_eligibility_rule_excludes_and_reads_the_context():
    older = offer(1, rule="age >= 40")
    mobile = offer(2, rule='context.device = "mobile"')
    young = customer(birth_date=date(2000, 1, 1))
    outcome = run([older, mobile], young)
    assert why(outcome, 1) == ("rule", "age >= 40")
    assert why(outcome, 2)[0] == "rule"
    cat = Catalogue.build(1, [older, mobile], [])
    snap = snapshot(cat, CellStats(2), Usage(), Model(), NOW)
    request = Request("web", None, {"device": "mobile"}, limit=5)
    found = decide(snap, young, request, NOW, Config(control_share=0), np.random.default_rng(0))
    assert [c.offer.id for c in found.chosen] == [2]


def test_frequency_policy_one_email_a_week():
    week = PolicySpec(1, "email-weekly", "frequency", frozenset({"email"}), 1, 7)
    sent = customer(responses=[response(channel="email", days_ago=3)])
    outcome = run([offer()], sent, channel="email", policies=[week])
    assert not outcome.chosen and outcome.blocked.code == "policy"
    assert "email-weekly" in outcome.blocked.detail
    assert why(outcome)[0] == "policy"
    # An SMS is not an e-mail, and an e-mail eight days ago is outside the week.
    assert run([offer()], sent, channel="sms", policies=[week]).chosen
    old = customer(responses=[response(channel="email", days_ago=8)])
    assert run([offer()], old, channel="email", policies=[week]).chosen


def test_suppress_policy_applies_to_whom_its_rule_matches():
    minors = PolicySpec(2, "no-minors", "suppress", frozenset(), rule="age < 18")
    child = customer(birth_date=date(2015, 5, 5))
    adult = customer(birth_date=date(1980, 5, 5))
    assert run([offer()], child, policies=[minors]).blocked.detail.startswith("no-minors")
    assert run([offer()], adult, policies=[minors]).chosen


def test_global_volume_cap_of_a_channel():
    calls = PolicySpec(3, "call-centre", "volume", frozenset({"hotline"}), 500)
    full = Usage(channel_today={"hotline": 500})
    assert run([offer()], customer(), "hotline", policies=[calls], usage=full).blocked
    assert run([offer()], customer(), "web", policies=[calls], usage=full).chosen
    assert run([offer()], customer(), "hotline", policies=[calls], usage=Usage()).chosen


def test_counts_of_exclusions_add_up():
    offers = [
        offer(1, status="paused"),
        offer(2, channels=frozenset({"email"})),
        offer(3, rule="age > 200"),
        offer(4),
    ]
    outcome = run(offers, customer())
    assert outcome.excluded == {"not_live": 1, "channel": 1, "rule": 1}
    assert outcome.eligible == 1


# --- the fast path gives the same first reason as the readable checks --------------------

offers_strategy = st.builds(
    offer,
    i=st.integers(1, 6),
    status=st.sampled_from(["active", "active", "paused"]),
    channels=st.sampled_from([CHANNELS, frozenset({"email"}), frozenset({"web"})]),
    placements=st.sampled_from([frozenset(), frozenset({"home"})]),
    product_id=st.sampled_from([None, "p1", "p2"]),
    category=st.sampled_from([None, "cat", "other"]),
    suppress_held=st.sampled_from(["product", "category", "none"]),
    held_days=st.integers(0, 60),
    max_impressions=st.sampled_from([None, 0, 1, 2, 3]),
    impression_window_days=st.integers(1, 40),
    reject_suppress_days=st.sampled_from([None, 5, 30]),
    cap_daily=st.sampled_from([None, 0, 2]),
    starts_at=st.sampled_from([None, NOW + timedelta(hours=1), NOW - timedelta(days=1)]),
    rule=st.sampled_from([None, "age > 30", 'context.device = "mobile"']),
)


# (kind, product, days ago) of a customer's holdings
holdings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["purchase", "contract"]),
        st.sampled_from(["p1", "p2"]),
        st.integers(0, 90),
    ),
    max_size=3,
)


def responses_strategy(offers: int, kinds: list[str], n: int) -> st.SearchStrategy:
    """(offer id, kind, days ago) of a customer's responses."""
    return st.lists(
        st.tuples(st.integers(1, offers), st.sampled_from(kinds), st.integers(0, 70)),
        max_size=n,
    )


@settings(max_examples=150, deadline=None)
@given(
    offers=st.lists(offers_strategy, min_size=1, max_size=6, unique_by=lambda o: o.id),
    held=holdings_strategy,
    shown=responses_strategy(offers=6, kinds=["impression", "reject", "accept"], n=8),
    channel=st.sampled_from(["web", "email"]),
    placement=st.sampled_from([None, "home", "checkout"]),
    today=st.integers(0, 3),
)
def test_fast_exclusions_match_the_readable_checks(offers, held, shown, channel, placement, today):
    state = customer(
        [holding(k, p, "cat", days_ago=d) for k, p, d in held],
        [response(o, k, d) for o, k, d in shown],
        birth_date=date(1990, 1, 1),
    )
    usage = Usage(offer_today={o.id: today for o in offers})
    outcome = run(offers, state, channel, placement, usage=usage)
    for considered in outcome.considered:
        expected = offer_exclusion(considered.offer, state, channel, placement, NOW, usage)
        if expected is None and considered.code is not None:
            assert considered.code == "rule"
        else:
            assert considered.code == (expected.code if expected else None)


@settings(max_examples=300, deadline=None)
@given(
    # Without rules, so that every exclusion has a readable reason to agree with.
    offers=st.lists(
        offers_strategy.map(lambda o: dataclasses.replace(o, rule=None)),
        min_size=1,
        max_size=6,
        unique_by=lambda o: o.id,
    ),
    held=holdings_strategy,
    # Few offers, mostly impressions: their limits are reached, and then run out.
    shown=responses_strategy(
        offers=2, kinds=["impression", "impression", "reject", "accept"], n=10
    ),
    moments=st.lists(st.floats(-40, 70), min_size=2, max_size=8),
    new=st.tuples(st.integers(1, 6), st.sampled_from(["impression", "reject"])),
)
def test_the_remembered_history_exclusions_follow_time_and_new_responses(
    offers, held, shown, moments, new
):
    """One customer and one snapshot, asked about at moments forwards and backwards, and
    again after a new response: each time the fast pass agrees with the readable checks."""
    state = customer(
        [holding(k, p, "cat", days_ago=d) for k, p, d in held],
        [response(o, k, d) for o, k, d in shown],
        birth_date=date(1990, 1, 1),
    )
    cat = Catalogue.build(1, list(offers), [])
    snap = snapshot(cat, CellStats(len(cat.offers)), Usage(), Model(), NOW)
    request = Request("web", None, {}, limit=5, explain=True)
    config = Config(control_share=0.0)

    def check() -> None:
        for days in moments:
            now = NOW + timedelta(days=days)
            outcome = decide(snap, state, request, now, config, np.random.default_rng(1))
            for considered in outcome.considered:
                expected = offer_exclusion(considered.offer, state, "web", None, now, Usage())
                assert considered.code == (expected.code if expected else None), days

    check()
    state.record(response(new[0], new[1], days_ago=0.5))
    check()


@pytest.mark.parametrize(
    ("spec", "state", "ends_after_days"),
    [
        (offer(product_id="p1", held_days=30), customer([holding(days_ago=10)]), 20),
        (
            offer(max_impressions=2, impression_window_days=30),
            customer(responses=[response(days_ago=d) for d in (6, 5)]),
            25,
        ),
        (
            offer(reject_suppress_days=30),
            customer(responses=[response(kind="reject", days_ago=10)]),
            20,
        ),
    ],
    ids=["purchase", "impressions", "rejection"],
)
def test_a_remembered_exclusion_ends_on_time(spec, state, ends_after_days):
    """The same customer asked about again and again: a suppression still ends when due."""
    cat = Catalogue.build(1, [spec], [])
    snap = snapshot(cat, CellStats(1), Usage(), Model(), NOW)
    request = Request("web", None, {}, limit=1)
    config = Config(control_share=0.0)
    for days, shown in (
        (0, False),
        (ends_after_days - 0.01, False),
        (ends_after_days + 0.01, True),
    ):
        now = NOW + timedelta(days=days)
        outcome = decide(snap, state, request, now, config, np.random.default_rng(1))
        assert bool(outcome.chosen) is shown, days


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(1, 4),
            st.sampled_from(["impression", "impression", "click", "reject", "accept"]),
            st.integers(0, 5),  # which decision
            st.booleans(),  # decide (and remember) before this response
        ),
        max_size=25,
    )
)
def test_the_remembered_history_equals_a_history_read_afresh(steps):
    """A cached customer is decided for again and again while responses arrive one by one
    (engine.remember): what the memos hold gives the same exclusions and features as a
    state built from all the responses at once."""
    from relata.decisions.decide import features
    from relata.decisions.filtering import _history

    offers = [
        offer(i, max_impressions=2, impression_window_days=30, reject_suppress_days=20)
        for i in range(1, 5)
    ]
    cat = Catalogue.build(1, offers, [])
    snap = snapshot(cat, CellStats(len(cat.offers)), Usage(), Model(), NOW)
    everyone = np.arange(len(offers))
    state, rows = customer(), []
    for offer_id, kind, decision, decide_first in steps:
        if decide_first:
            features(snap, state, everyone)
            _history(snap, state, NOW)
        row = response(offer_id, kind, days_ago=1, decision=f"d{decision}")
        rows.append(row)
        state.record(row)
    fresh = customer(responses=rows)
    assert np.array_equal(features(snap, state, everyone), features(snap, fresh, everyone))
    assert sorted(_history(snap, state, NOW)) == sorted(_history(snap, fresh, NOW))
