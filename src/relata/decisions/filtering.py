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

    Memoised on the state until its history or the catalogue changes, or until the first
    of these exclusions runs out: time only ever ends one (a purchase's, impressions' or
    rejection's suppression), never starts one. A customer with some 35 offers seen was
    checked offer by offer on every decision. (Valid from the time it was worked out: a
    caller may ask about an earlier moment.)"""
    key = (snap.catalogue.version, id(snap.catalogue), state.version)
    memo = state.memo.get("history")
    if memo is not None and memo[0] == key and memo[1] <= now < memo[2]:
        return memo[3]
    offers = snap.catalogue.offers
    found: list[tuple[int, int]] = []
    ends = _FOREVER
    for i in sorted(_touched(snap, state)):
        offer = offers[i]
        if (e := policies.held(offer, state, now)) is not None:
            found.append((i, CODE[e.code]))
            ends = min(ends, policies.held_until(offer, state, now))
        elif (b := policies.impression_block(offer, state, now)) is not None:
            found.append((i, CODE["impressions"]))  # only the code: its words cost strftime
            if b:  # not NEVER
                ends = min(ends, b[1])
        elif (e := policies.rejected(offer, state, now)) is not None:
            found.append((i, CODE[e.code]))
            ends = min(ends, policies.rejected_until(offer, state))
    state.memo["history"] = (key, now, ends, found)
    return found


_FOREVER = datetime.max.replace(tzinfo=UTC)


def _touched(snap: Snapshot, state: CustomerState) -> set[int]:
    """Offers the customer's holdings, impressions or rejections can exclude."""
    index = snap.catalogue.index
    touched = {i for key in state.held for i in snap.held_index.get(key, ())}
    touched.update(snap.never)
    touched.update(index[o] for o in state.impressions if o in index)
    touched.update(index[o] for o in state.rejected if o in index)
    return touched
