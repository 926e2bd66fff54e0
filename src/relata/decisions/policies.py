"""Why an offer may not be shown to this customer now: live dates, channels, caps, holdings,
impression and rejection limits, and the contact policies of a channel. Pure.

Checks run cheapest first; the first that fails is the reason given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from relata.decisions.catalogue import OfferSpec, PolicySpec
from relata.decisions.features import CustomerState


@dataclass(frozen=True, slots=True)
class Exclusion:
    code: str  # see CODES
    detail: str


CODES = (
    "consent",
    "policy",
    "not_live",
    "channel",
    "placement",
    "cap_total",
    "cap_daily",
    "budget",
    "held",
    "impressions",
    "rejected",
    "rule",
)


@dataclass(frozen=True, slots=True)
class Usage:
    """Counts across all customers: the engine keeps them from the usage table plus its own."""

    offer_total: Mapping[int, int] = field(default_factory=dict)
    offer_today: Mapping[int, int] = field(default_factory=dict)
    offer_spent: Mapping[int, float] = field(default_factory=dict)
    channel_today: Mapping[str, int] = field(default_factory=dict)


def offer_exclusion(
    offer: OfferSpec,
    state: CustomerState,
    channel: str,
    placement: str | None,
    now: datetime,
    usage: Usage,
) -> Exclusion | None:
    """Everything but the eligibility rule, which the engine evaluates last (it costs most)."""
    if not offer.live(now):
        return Exclusion("not_live", _not_live(offer, now))
    if channel not in offer.channels:
        return Exclusion("channel", f"not offered on {channel}")
    if not offer.shown_on(channel, placement):
        return Exclusion("placement", f"not offered in placement {placement}")
    for check in (caps(offer, usage), held(offer, state, now), impressions(offer, state, now)):
        if check is not None:
            return check
    return rejected(offer, state, now)


def _not_live(offer: OfferSpec, now: datetime) -> str:
    if offer.status != "active":
        return f"offer is {offer.status}"
    if offer.starts_at is not None and now < offer.starts_at:
        return f"starts {offer.starts_at:%Y-%m-%d %H:%M} UTC"
    return f"ended {offer.ends_at:%Y-%m-%d %H:%M} UTC"


def caps(offer: OfferSpec, usage: Usage) -> Exclusion | None:
    total = usage.offer_total.get(offer.id, 0)
    if offer.cap_total is not None and total >= offer.cap_total:
        return Exclusion("cap_total", f"shown {total} times, cap {offer.cap_total}")
    today = usage.offer_today.get(offer.id, 0)
    if offer.cap_daily is not None and today >= offer.cap_daily:
        return Exclusion("cap_daily", f"shown {today} times today, daily cap {offer.cap_daily}")
    spent = usage.offer_spent.get(offer.id, 0.0)
    if offer.budget is not None and spent + offer.cost > offer.budget:
        return Exclusion("budget", f"budget {offer.budget:g} spent ({spent:g})")
    return None


def held(offer: OfferSpec, state: CustomerState, now: datetime) -> Exclusion | None:
    """A customer who holds or recently bought the product (or category) is not offered it."""
    if offer.suppress_held == "none":
        return None
    keys = [f"p:{offer.product_id}"] if offer.product_id else []
    if offer.suppress_held == "category" and offer.category:
        keys.append(f"c:{offer.category}")
    since = now - timedelta(days=offer.held_days)
    for key in keys:
        found = state.held.get(key)
        if found is None:
            continue
        what = key[2:]
        if found.active_contract:
            return Exclusion("held", f"holds {what} (active contract)")
        if found.last_bought is not None and found.last_bought >= since:
            return Exclusion("held", f"bought {what} on {found.last_bought:%Y-%m-%d}")
    return None


def held_until(offer: OfferSpec, state: CustomerState, now: datetime) -> datetime:
    """No earlier than this may ``held`` (excluding ``offer`` now) stop excluding it: the
    first recent purchase to age out; an active contract ends only with a new state."""
    ends = datetime.max.replace(tzinfo=UTC)
    since = now - timedelta(days=offer.held_days)
    for key in (f"p:{offer.product_id}", f"c:{offer.category}"):
        found = state.held.get(key)
        if found is not None and found.last_bought is not None and found.last_bought >= since:
            ends = min(ends, found.last_bought + timedelta(days=offer.held_days))
    return ends


def impressions(offer: OfferSpec, state: CustomerState, now: datetime) -> Exclusion | None:
    """Suppressed for ``window`` days after the ``max``-th impression within ``window`` days."""
    found = impression_block(offer, state, now)
    if found is None:
        return None
    if found == NEVER:  # by value: the empty tuple is the marker
        return Exclusion("impressions", "never shown (max_impressions 0)")
    reached, until = found
    limit = offer.max_impressions
    return Exclusion(
        "impressions", f"{limit} impressions by {reached:%Y-%m-%d}; again from {until:%Y-%m-%d}"
    )


NEVER = ()  # impression_block of an offer never to be shown


def impression_block(
    offer: OfferSpec, state: CustomerState, now: datetime
) -> tuple[datetime, ...] | None:
    """``impressions`` without the words: (limit reached, suppressed until), ``NEVER``, or
    None. The fast pass asks this for every offer a customer has seen, on every decision."""
    limit = offer.max_impressions
    if limit is None:
        return None
    if limit == 0:
        return NEVER
    shown = state.impressions.get(offer.id)
    if shown is None or len(shown) < limit:
        return None
    # Until when the limit suppresses depends only on the impressions, not on now: worked
    # out once per history (a customer asked about again and again is the hot path).
    days = offer.impression_window_days
    memo = state.reached.get(offer.id)
    if memo is None:
        memo = state.reached[offer.id] = {}
    key = (limit, days)
    found = memo.get(key, _UNKNOWN)
    if found is _UNKNOWN:
        window = timedelta(days=days)
        reached = last_reached(sorted(shown.values()), limit, window)
        found = memo[key] = None if reached is None else (reached, reached + window)
    if found is None or now >= found[1]:
        return None
    return found


_UNKNOWN = object()


def last_reached(times: list[datetime], limit: int, window: timedelta) -> datetime | None:
    """The latest impression (of ``times``, sorted) that was the ``limit``-th within
    ``window``; None if none was."""
    for i in range(len(times) - 1, limit - 2, -1):
        if times[i] - times[i - limit + 1] <= window:
            return times[i]
    return None


def rejected(offer: OfferSpec, state: CustomerState, now: datetime) -> Exclusion | None:
    at = state.rejected.get(offer.id)
    if offer.reject_suppress_days is None or at is None:
        return None
    until = at + timedelta(days=offer.reject_suppress_days)
    if now < until:
        return Exclusion("rejected", f"rejected on {at:%Y-%m-%d}; again from {until:%Y-%m-%d}")
    return None


def rejected_until(offer: OfferSpec, state: CustomerState) -> datetime:
    """Until when ``rejected`` excludes ``offer`` (when it does)."""
    return state.rejected[offer.id] + timedelta(days=offer.reject_suppress_days or 0)


RuleCheck = Callable[[str], bool]  # does the policy's audience rule match this customer?


def channel_block(
    policies: tuple[PolicySpec, ...],
    state: CustomerState,
    channel: str,
    now: datetime,
    usage: Usage,
    matches: RuleCheck,
) -> Exclusion | None:
    """A contact policy that forbids any contact on this channel now, for this customer.

    A frequency policy over several channels counts their contacts together; for a cap per
    channel ("1 e-mail and 1 SMS a week") define one policy each. A contact is a decision
    with at least one impression.
    """
    for policy in policies:
        if not policy.covers(channel):
            continue
        if policy.rule and not matches(policy.rule):
            continue
        if policy.kind == "suppress":
            return Exclusion("policy", f"{policy.name}: no contact on {channel}")
        if policy.kind == "volume":
            # Like frequency, a volume policy over several channels counts them together.
            count = sum(n for ch, n in usage.channel_today.items() if policy.covers(ch))
            if count >= (policy.max_count or 0):
                return Exclusion("policy", f"{policy.name}: {count} contacts today")
        if policy.kind == "frequency":
            since = now - timedelta(days=policy.window_days or 0)
            covered = policy.channels or frozenset(state.contacts)
            count = sum(state.contacts_since(ch, since) for ch in covered)
            if count >= (policy.max_count or 0):
                days = policy.window_days
                return Exclusion(
                    "policy", f"{policy.name}: {count} contacts in {days} days on {channel}"
                )
    return None
