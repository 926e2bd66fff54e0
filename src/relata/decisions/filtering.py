"""Which offers may be shown: the fast pass of the hot path. Pure.

Gives the same first reason as ``policies.offer_exclusion`` followed by the rule (a
property test holds them to it), but works on arrays: dates, channels and placements
for all offers at once, then only the few offers the customer's history touches
(holdings, impressions, rejections), the capped offers, and the rules. An eligibility
rule shared by many offers is evaluated once, and only while one of them is still open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from relata.decisions import eligibility, policies
from relata.decisions.catalogue import OfferSpec
from relata.decisions.features import CustomerState
from relata.decisions.policies import CODES, Exclusion, Usage
from relata.decisions.snapshot import Snapshot

CODE = {c: i + 1 for i, c in enumerate(CODES)}  # 0: eligible
RuleCheck = Callable[[eligibility.Rule], bool]


def codes(
    snap: Snapshot,
    state: CustomerState,
    channel: str,
    placement: str | None,
    now: datetime,
    usage: Usage,
    rule_ok: RuleCheck,
    block: Exclusion | None,
) -> np.ndarray:
    """For every offer: 0 when it may be shown, else ``CODE`` of the first reason not to."""
    offers = snap.catalogue.offers
    found = np.zeros(len(offers), dtype=np.int8)
    if block is not None:
        found[:] = CODE[block.code]
        return found
    t = now.timestamp()
    found[~(snap.active & (snap.starts <= t) & (t < snap.ends))] = CODE["not_live"]
    none = np.zeros(len(offers), dtype=bool)
    _mark(found, ~snap.by_channel.get(channel, none), "channel")
    if placement is not None:
        _mark(found, ~(snap.open_placement | snap.placements.get(placement, none)), "placement")
    for i in snap.capped:
        if found[i] == 0 and (e := policies.caps(offers[i], usage)) is not None:
            found[i] = CODE[e.code]
    for i, code in _history(snap, state, now):
        if found[i] == 0:
            found[i] = code
    for rule, where in snap.rule_groups:
        open_ = where[found[where] == 0]
        if open_.size and not rule_ok(rule):
            found[open_] = CODE["rule"]
    return found


def _mark(found: np.ndarray, where: np.ndarray, code: str) -> None:
    found[(found == 0) & where] = CODE[code]


def _history(snap: Snapshot, state: CustomerState, now: datetime) -> list[tuple[int, int]]:
    """(position, code) of the offers the customer's history excludes now.

    Each offer's check is remembered on the state (features.PER_OFFER_MEMOS) from the
    moment it was made until its exclusion runs out (time only ever ends a purchase's,
    impressions' or rejection's suppression, never starts one) or a new response to the
    offer arrives. A customer with some 35 offers seen was checked offer by offer on every
    decision, though each decision changes the history of its own few offers only."""
    key = (snap.catalogue.version, id(snap.catalogue))
    memo = state.memo.get("history")
    checked = memo[1] if memo is not None and memo[0] == key else {}
    offers = snap.catalogue.offers
    found: list[tuple[int, int]] = []
    fresh: dict[int, tuple[int, datetime, datetime]] | None = None
    for i in _touched(snap, state):
        offer = offers[i]
        entry = checked.get(offer.id)
        if entry is None or not entry[1] <= now < entry[2]:
            entry = _check(offer, state, now)
            if fresh is None:
                fresh = dict(checked)
            fresh[offer.id] = entry
        if entry[0]:
            found.append((i, entry[0]))
    if fresh is not None:
        state.memo["history"] = (key, fresh)
    return found


def _check(offer: OfferSpec, state: CustomerState, now: datetime) -> tuple[int, datetime, datetime]:
    """(code or 0, valid from, valid until) of one offer's history check."""
    if (e := policies.held(offer, state, now)) is not None:
        return CODE[e.code], now, policies.held_until(offer, state, now)
    if (b := policies.impression_block(offer, state, now)) is not None:
        # Only the code: its words cost strftime. NEVER (empty) lasts.
        return CODE["impressions"], now, b[1] if b else _FOREVER
    if (e := policies.rejected(offer, state, now)) is not None:
        return CODE[e.code], now, policies.rejected_until(offer, state)
    return 0, now, _FOREVER


_FOREVER = datetime.max.replace(tzinfo=UTC)


def _touched(snap: Snapshot, state: CustomerState) -> set[int]:
    """Offers the customer's holdings, impressions or rejections can exclude."""
    index = snap.catalogue.index
    touched = {i for key in state.held for i in snap.held_index.get(key, ())}
    touched.update(snap.never)
    touched.update(index[o] for o in state.impressions if o in index)
    touched.update(index[o] for o in state.rejected if o in index)
    return touched
