"""Which offers may be shown: the fast pass of the hot path. Pure.

Gives the same first reason as ``policies.offer_exclusion`` followed by the rule (a
property test holds them to it), but works on arrays: dates, channels and placements
for all offers at once, then only the few offers the customer's history touches
(holdings, impressions, rejections), the capped offers, and the rules. An eligibility
rule shared by many offers is evaluated once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

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
    for i in _touched(snap, state):
        if found[i] == 0:
            offer = offers[i]
            if (e := policies.held(offer, state, now)) is not None:
                found[i] = CODE[e.code]
            elif policies.impression_block(offer, state, now) is not None:
                found[i] = CODE["impressions"]  # only the code: its words cost strftime
            elif (e := policies.rejected(offer, state, now)) is not None:
                found[i] = CODE[e.code]
    memo: dict[str, bool] = {}
    for i in snap.with_rule.tolist():
        if found[i] == 0:
            rule = snap.rules[i]
            assert rule is not None
            ok = memo.get(rule.text)
            if ok is None:
                ok = memo[rule.text] = rule_ok(rule)
            if not ok:
                found[i] = CODE["rule"]
    return found


def _mark(found: np.ndarray, where: np.ndarray, code: str) -> None:
    found[(found == 0) & where] = CODE[code]


def _touched(snap: Snapshot, state: CustomerState) -> set[int]:
    """Offers the customer's holdings, impressions or rejections can exclude."""
    index = snap.catalogue.index
    touched = {i for key in state.held for i in snap.held_index.get(key, ())}
    touched.update(snap.never)
    touched.update(index[o] for o in state.impressions if o in index)
    touched.update(index[o] for o in state.rejected if o in index)
    return touched
