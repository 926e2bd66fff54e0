"""What the engine knows about one customer, worked out once when the profile is loaded. Pure.

``CustomerState`` is built from the customer's profile (golden record, holdings, the
events the rules need) and their recent decision responses; the engine caches it and
appends to it as it decides and hears responses.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from relata.segments.profile import Profile

POSITIVE = frozenset({"click", "accept", "convert"})
AGE_BANDS = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
DAYPARTS = ((6, "night"), (11, "morning"), (14, "midday"), (18, "afternoon"), (22, "evening"))
MISSING = "?"


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """A response as the engine remembers it (loaded or just recorded)."""

    decision_id: str
    offer_id: int
    category: str | None
    channel: str
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Held:
    """The newest purchase of a product or category, and whether a contract is running."""

    last_bought: datetime | None
    active_contract: bool


# Memos of (catalogue key, {offer id: what was worked out about it}) on a CustomerState:
# a new response to an offer drops that offer's entry, and only that one (a decision's
# impressions change its offers' history, not the others').
PER_OFFER_MEMOS = ("history", "ignored")


@dataclass(slots=True)
class CustomerState:
    customer_id: int
    profile: Profile
    held: dict[str, Held] = field(default_factory=dict)  # "p:<product>" / "c:<category>"
    category_counts: Counter[str] = field(default_factory=Counter)
    items: frozenset[str] = frozenset()  # for the collaborative model
    traits: dict[str, str] = field(default_factory=dict)  # learning cells: age, tier, fav
    # The response history, indexed the ways the policies and the score read it.
    impressions: dict[int, dict[str, datetime]] = field(default_factory=dict)  # offer→{dec: at}
    answered: set[tuple[str, int]] = field(default_factory=set)  # (decision, offer) with a reply
    won: set[tuple[str, int]] = field(default_factory=set)  # (decision, offer) with a positive
    rejected: dict[int, datetime] = field(default_factory=dict)  # offer → latest rejection
    positives: Counter[str] = field(default_factory=Counter)  # category → positive responses
    contacts: dict[str, dict[str, datetime]] = field(default_factory=dict)  # channel→{decision: at}
    memo: dict[str, Any] = field(default_factory=dict)  # per-model values, e.g. collaborative
    # offer → {(max impressions, window days): (when the limit was last reached, until when
    # it suppresses), or None}; worked out once per impression history
    # (policies.impressions), dropped by record.
    reached: dict[int, dict[tuple[int, int], tuple[datetime, datetime] | None]] = field(
        default_factory=dict
    )

    @property
    def purchases(self) -> int:
        return sum(self.category_counts.values())

    def record(self, row: ResponseRow) -> None:
        self._forget(row.offer_id)
        if row.kind == "impression":
            self.impressions.setdefault(row.offer_id, {}).setdefault(row.decision_id, row.at)
            self.reached.pop(row.offer_id, None)
            self.contacts.setdefault(row.channel, {}).setdefault(row.decision_id, row.at)
            return
        self.answered.add((row.decision_id, row.offer_id))
        if row.kind == "reject":
            last = self.rejected.get(row.offer_id)
            self.rejected[row.offer_id] = row.at if last is None else max(last, row.at)
        elif row.kind in POSITIVE and (row.decision_id, row.offer_id) not in self.won:
            self.won.add((row.decision_id, row.offer_id))
            self.positives[row.category or ""] += 1
            self.items = self.items | {f"o:{row.offer_id}"}

    def _forget(self, offer_id: int) -> None:
        """Drop what the memos hold about this offer (copy on write: see engine.remember)."""
        for name in PER_OFFER_MEMOS:
            memo = self.memo.get(name)
            if memo is not None and offer_id in memo[1]:
                entries = dict(memo[1])
                del entries[offer_id]
                self.memo[name] = (memo[0], entries)

    def contacts_since(self, channel: str, since: datetime) -> int:
        return sum(1 for at in self.contacts.get(channel, {}).values() if at >= since)

    def impressions_since(self, offer_id: int, since: datetime) -> int:
        return sum(1 for at in self.impressions.get(offer_id, {}).values() if at >= since)

    def ignored(self, offer_id: int) -> int:
        shown = self.impressions.get(offer_id, {})
        return sum(1 for d in shown if (d, offer_id) not in self.answered)


def build(profile: Profile, responses: Iterable[ResponseRow], now: datetime) -> CustomerState:
    held: dict[str, Held] = {}
    counts: Counter[str] = Counter()
    items: set[str] = set()
    for h in profile.holdings:
        running = h.kind == "contract" and h.status == "active" and _running(h.ended_at, now)
        bought = h.started_at if h.kind == "purchase" else None
        for key in _held_keys(h.product_id, h.category):
            held[key] = _merge(held.get(key), bought, running)
        if h.category:
            counts[h.category] += 1
        items.update(_held_keys(h.product_id, h.category))
    state = CustomerState(
        profile.id, profile, held, counts, frozenset(items), traits_of(profile, counts, now)
    )
    for row in sorted(responses, key=lambda r: r.at):
        state.record(row)
    return state


def _running(ended_at: datetime | None, now: datetime) -> bool:
    return ended_at is None or ended_at > now


def _held_keys(product_id: str | None, category: str | None) -> list[str]:
    keys = []
    if product_id:
        keys.append(f"p:{product_id}")
    if category:
        keys.append(f"c:{category}")
    return keys


def _merge(old: Held | None, bought: datetime | None, running: bool) -> Held:
    if old is None:
        return Held(bought, running)
    newest = max((d for d in (old.last_bought, bought) if d is not None), default=None)
    return Held(newest, old.active_contract or running)


def traits_of(profile: Profile, counts: Counter[str], now: datetime) -> dict[str, str]:
    """Coarse, stable features of the customer that the bandit learns per cell.

    Gender is deliberately not among them: offers should not be steered by it.
    """
    total = sum(counts.values())
    return {
        "age": age_band(profile.fields.get("birth_date"), now.date()),
        "tier": "0" if total == 0 else "1" if total == 1 else "2-4" if total < 5 else "5+",
        "fav": counts.most_common(1)[0][0][:40] if counts else MISSING,
    }


def age_band(birth: Any, today: date) -> str:
    if not isinstance(birth, date):
        return MISSING
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return next((label for limit, label in AGE_BANDS if age < limit), "65+")


def daypart(hour: int) -> str:
    return next((label for limit, label in DAYPARTS if hour < limit), "night")


def context_values(
    context: Mapping[str, Any], traits: Mapping[str, str], now_local: datetime
) -> dict[str, str]:
    """Every value a learning chain can name: request context, then customer traits, then time."""
    values = {"daypart": daypart(now_local.hour), "weekday": str(now_local.isoweekday())}
    values.update(traits)
    for key, value in context.items():
        if (cell := cell_value(value)) is not None:
            values[key] = cell
    return values


def cell_value(value: Any) -> str | None:
    """A context value as a learning cell: short text as is, numbers in coarse log bins."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        if value == 0:
            return "0"
        # Bins by powers of two keep a cell per order of magnitude, not per value.
        exponent = math.floor(math.log2(abs(value)))
        return f"{'-' if value < 0 else ''}2^{exponent}"
    if isinstance(value, str) and value and len(value) <= 40:
        return value
    return None


def window_start(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


# --- what the customer's own history says about an offer ------------------------------------


@dataclass(frozen=True, slots=True)
class Personal:
    """Features of (customer, offer) the score weights: see scoring.py."""

    own: float  # log-lift of the offer's category in the customer's purchases
    past_positive: float  # log1p of positive responses to offers of that category
    past_ignored: float  # log1p of impressions of this offer without a response


def personal(state: CustomerState, offer_id: int, category: str | None, share: float) -> Personal:
    """``share``: the category's share of all purchases (from the trained model)."""
    own = 0.0
    if category and state.category_counts:
        n, k = state.purchases, state.category_counts.get(category, 0)
        # Smoothed towards the population share with two pseudo-purchases.
        own = math.log((k + 2 * share) / (n + 2) / share)
    positive = state.positives.get(category, 0) if category else 0
    return Personal(own, math.log1p(positive), math.log1p(state.ignored(offer_id)))
