"""The consent state derived from the ledger: pure, checked against a replay for any order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from relata.consent.ledger import Entry, State, decide, derive

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def e(action: str, minute: int, origin: int = 1, covers: tuple[int, ...] = (), i: int = 0) -> Entry:
    return Entry("marketing", "email", action, at(minute), origin, frozenset(covers), i)


# Few distinct minutes, so that ties (same time, different actions) are common.
entry_lists = st.lists(
    st.tuples(st.sampled_from(["grant", "revoke", "request"]), st.integers(0, 6)),
    max_size=12,
)


def one_side(actions: list[tuple[str, int]], origin: int = 1, start: int = 0) -> list[Entry]:
    return [e(a, m, origin, (), start + i) for i, (a, m) in enumerate(actions)]


def replay(entries: list[Entry]) -> str:
    """A customer never merged, told as a story: each entry in time order changes the state.

    At the same minute a grant comes first and a revocation last, so the revocation wins.
    """
    rank = {"grant": 0, "request": 1, "revoke": 2}
    status = "unknown"
    for entry in sorted(entries, key=lambda x: (x.at, rank[x.action])):
        if entry.action == "grant":
            status = "granted"
        elif entry.action == "revoke":
            status = "revoked"
        elif status != "granted":
            status = "pending"
    return status


@given(entry_lists)
def test_a_customer_never_merged_follows_the_latest_entry_and_a_revocation_wins_a_tie(actions):
    entries = one_side(actions)
    assert decide(entries).status == replay(entries)


@given(entry_lists, st.randoms(use_true_random=False))
def test_the_order_of_the_ledger_never_matters(actions, rnd: random.Random):
    entries = one_side(actions) + one_side(actions[::2], origin=2, start=100)
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    assert decide(shuffled) == decide(entries)


def test_the_deciding_entry_is_named():
    state = decide([e("grant", 1, i=7), e("revoke", 0, i=3)])
    assert state == State("granted", at(1), 7)
    assert decide([e("revoke", 1, i=4), e("grant", 1, i=5)]) == State("revoked", at(1), 4)
    assert decide([]) == State("unknown")
    assert not decide([e("request", 1)]).allowed


@settings(max_examples=300)
@given(entry_lists, entry_lists)
def test_after_a_merge_a_revocation_on_either_side_wins_over_a_grant_on_the_other(a, b):
    side_a, side_b = one_side(a, origin=1), one_side(b, origin=2, start=100)
    merged = decide(side_a + side_b)

    def blocks(side: list[Entry]) -> bool:
        # A side blocks while it has a revocation its own later grant did not lift.
        return any(x.action == "revoke" for x in side) and decide(side).status != "granted"

    has_grant = any(x.action == "grant" for x in side_a + side_b)
    assert merged.allowed == (has_grant and not blocks(side_a) and not blocks(side_b))


@given(entry_lists, entry_lists)
def test_a_grant_given_over_the_merged_customer_outweighs_older_revocations(a, b):
    side_a, side_b = one_side(a, origin=1), one_side(b, origin=2, start=100)
    later = e("grant", 10, origin=1, covers=(1, 2), i=999)
    assert decide([*side_a, *side_b, later]).allowed
    # …but not the revocation that comes after it.
    assert not decide([*side_a, *side_b, later, e("revoke", 11, origin=2, i=1000)]).allowed


def test_a_newer_grant_of_one_side_alone_does_not_lift_the_other_sides_revocation():
    revoked_b = e("revoke", 1, origin=2)
    grant_a = e("grant", 5, origin=1)
    assert not decide([revoked_b, grant_a]).allowed
    assert decide([revoked_b, grant_a]).status == "revoked"
    # Unmerged again, A stands alone and is granted.
    assert decide([grant_a]).allowed


def test_derive_decides_each_purpose_and_channel_on_its_own():
    entries = [
        Entry("marketing", "email", "grant", at(1), 1),
        Entry("marketing", "sms", "revoke", at(2), 1),
        Entry("profiling", "web", "request", at(3), 1),
    ]
    states = {k: s.status for k, s in derive(entries).items()}
    assert states == {
        ("marketing", "email"): "granted",
        ("marketing", "sms"): "revoked",
        ("profiling", "web"): "pending",
    }


def test_an_entry_always_covers_its_own_side_and_refuses_unknown_actions():
    assert e("grant", 1, origin=3, covers=(4,)).covers == {3, 4}
    try:
        Entry("marketing", "email", "maybe", at(0), 1)
    except ValueError as exc:
        assert "maybe" in str(exc)
    else:
        raise AssertionError("an unknown action was accepted")
