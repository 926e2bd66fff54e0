"""Everything the engine shares between customers, prepared once per change. Pure.

A ``Snapshot`` holds the catalogue with compiled rules, the bandit counts, usage for the
caps and the trained model, plus arrays and indexes over the offers so that a decision
works on whole arrays instead of looping over 200 offers in Python. It is replaced whole
when anything changes, so a decision in flight never sees half an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from relata.decisions import eligibility
from relata.decisions.bandit import CellStats, Prior, logit, moments
from relata.decisions.catalogue import Catalogue, OfferSpec
from relata.decisions.collaborative import ItemModel
from relata.decisions.policies import Usage
from relata.decisions.scoring import Weights
from relata.segments.loader import Needs

DEFAULT_CHAIN = ("channel", "placement", "fav", "tier")
MEMO_SIZE = 50_000


@dataclass(frozen=True)
class Model:
    id: int | None = None
    weights: Weights = field(default_factory=Weights)
    shares: Mapping[str, float] = field(default_factory=dict)
    items: ItemModel | None = None

    def share(self, category: str) -> float:
        # Unknown categories count as rare, so buying them stands out.
        return self.shares.get(category) or 0.05


@dataclass(frozen=True)
class Config:
    chain: tuple[str, ...] = DEFAULT_CHAIN
    prior: Prior = field(default_factory=Prior)
    control_share: float = 0.05


@dataclass(frozen=True)
class Snapshot:
    catalogue: Catalogue
    rules: tuple[eligibility.Rule | None, ...]  # by catalogue position
    policy_rules: Mapping[str, eligibility.Rule]  # by rule text
    compiled: Mapping[str, eligibility.Rule]  # every rule by text, reused by the next snapshot
    needs: Needs
    stats: CellStats
    usage: Usage
    model: Model
    offer_rows: sp.csr_matrix | None  # collaborative: items × offers by catalogue position
    horizon_days: int  # how far back a customer's responses matter
    # Arrays over the offers, by catalogue position.
    values: np.ndarray
    weights: np.ndarray
    nothing: np.ndarray
    active: np.ndarray
    starts: np.ndarray  # epoch seconds, -inf when open
    ends: np.ndarray  # epoch seconds, +inf when open
    category_ids: np.ndarray  # -1: no category
    categories: tuple[str, ...]
    # Each eligibility rule once, with the positions of the offers that have it.
    rule_groups: tuple[tuple[eligibility.Rule, np.ndarray], ...]
    capped: tuple[int, ...]  # positions of offers with a cap or a budget
    never: tuple[int, ...]  # positions of offers with max_impressions 0
    by_channel: Mapping[str, np.ndarray]  # channel -> bool mask
    placements: Mapping[str, np.ndarray]  # placement -> bool mask of offers allowed there
    category_list: tuple[str | None, ...]  # by position
    open_placement: np.ndarray  # offers without a placement list (any placement)
    held_index: Mapping[str, tuple[int, ...]]  # "p:<product>"/"c:<category>" -> positions
    category_positions: Mapping[str, np.ndarray]  # category -> positions of its offers
    has_category: np.ndarray
    # Bandit moments per chain of cells: they depend only on this snapshot's counts.
    memo: dict[tuple[int, ...], Cell] = field(default_factory=dict)

    def cell(self, keys: tuple[int, ...], prior: Prior) -> Cell:
        found = self.memo.get(keys)
        if found is None:
            overall, mean, var = moments(self.stats, keys, prior)
            found = Cell(mean, var, logit(overall), logit(mean))
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()  # rare: bounded memory beats a perfect hit rate
            self.memo[keys] = found
        return found


@dataclass(frozen=True, slots=True)
class Cell:
    """The bandit's view of every offer in one chain of cells (arrays by position)."""

    mean: np.ndarray
    var: np.ndarray
    logit_overall: np.ndarray
    logit_mean: np.ndarray


def build(
    catalogue: Catalogue,
    stats: CellStats,
    usage: Usage,
    model: Model,
    now: datetime,
    compiled: Mapping[str, eligibility.Rule] | None = None,
    segments: eligibility.Segments | None = None,
) -> Snapshot:
    """``compiled``: rules compiled before, by text, so a reload compiles only what changed
    (pass none when the segments changed); ``segments``: what `in segment` rules name."""
    cache = dict(compiled or {})

    def rule(text: str | None) -> eligibility.Rule | None:
        if not text:
            return None
        if text not in cache:
            cache[text] = eligibility.compile_text(text, segments)
        return cache[text]

    offers = catalogue.offers
    n = len(offers)
    rules = tuple(rule(o.rule) for o in offers)
    policy_rules = {p.rule: r for p in catalogue.policies if (r := rule(p.rule)) is not None}
    used = [r for r in (*rules, *policy_rules.values()) if r is not None]
    categories = tuple(sorted({o.category for o in offers if o.category}))
    category_index = {c: i for i, c in enumerate(categories)}
    rows = None
    if model.items is not None:
        rows = model.items.offer_rows([offer_items(o) for o in offers])
    return Snapshot(
        catalogue=catalogue,
        rules=rules,
        policy_rules=policy_rules,
        compiled={r.text: r for r in used if not r.problem},
        needs=eligibility.needs(used, now),
        stats=stats,
        usage=usage,
        model=model,
        offer_rows=rows,
        horizon_days=_horizon(catalogue),
        values=np.array([o.value for o in offers], dtype=float),
        weights=np.array([o.weight for o in offers], dtype=float),
        nothing=np.array([o.is_nothing for o in offers], dtype=bool),
        active=np.array([o.status == "active" for o in offers], dtype=bool),
        starts=_times([o.starts_at for o in offers], -np.inf),
        ends=_times([o.ends_at for o in offers], np.inf),
        category_ids=np.array([category_index.get(o.category or "", -1) for o in offers]),
        categories=categories,
        rule_groups=_rule_groups(rules),
        capped=tuple(i for i, o in enumerate(offers) if o.capped),
        never=tuple(i for i, o in enumerate(offers) if o.max_impressions == 0),
        by_channel=_masks(
            n,
            {
                c: [i for i, o in enumerate(offers) if c in o.channels]
                for c in {c for o in offers for c in o.channels}
            },
        ),
        placements=_masks(n, _placements(offers)),
        open_placement=np.array([not o.placements for o in offers], dtype=bool),
        held_index=_held_index(offers),
        category_positions={
            c: np.array([i for i, o in enumerate(offers) if o.category == c], dtype=np.int64)
            for c in categories
        },
        has_category=np.array([o.category is not None for o in offers], dtype=bool),
        category_list=tuple(o.category for o in offers),
    )


def offer_items(offer: OfferSpec) -> list[str]:
    items = [f"o:{offer.id}"]
    if offer.product_id:
        items.append(f"p:{offer.product_id}")
    if offer.category:
        items.append(f"c:{offer.category}")
    return items


def _horizon(catalogue: Catalogue) -> int:
    windows = [o.impression_window_days * 2 for o in catalogue.offers]
    windows += [o.reject_suppress_days or 0 for o in catalogue.offers]
    windows += [p.window_days or 0 for p in catalogue.policies]
    return min(max([30, *windows]), 400)


def _times(values: list[datetime | None], missing: float) -> np.ndarray:
    return np.array([missing if v is None else v.timestamp() for v in values], dtype=float)


def _masks(n: int, positions: Mapping[str, list[int]]) -> dict[str, np.ndarray]:
    masks = {}
    for name, found in positions.items():
        mask = np.zeros(n, dtype=bool)
        mask[found] = True
        masks[name] = mask
    return masks


def _placements(offers: tuple[OfferSpec, ...]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for i, o in enumerate(offers):
        for p in o.placements:
            found.setdefault(p, []).append(i)
    return found


def _rule_groups(
    rules: tuple[eligibility.Rule | None, ...],
) -> tuple[tuple[eligibility.Rule, np.ndarray], ...]:
    by_text: dict[str, tuple[eligibility.Rule, list[int]]] = {}
    for i, r in enumerate(rules):
        if r is not None:
            by_text.setdefault(r.text, (r, []))[1].append(i)
    return tuple((r, np.array(at, dtype=np.int64)) for r, at in by_text.values())


def _held_index(offers: tuple[OfferSpec, ...]) -> dict[str, tuple[int, ...]]:
    found: dict[str, list[int]] = {}
    for i, o in enumerate(offers):
        if o.suppress_held == "none":
            continue
        if o.product_id:
            found.setdefault(f"p:{o.product_id}", []).append(i)
        if o.suppress_held == "category" and o.category:
            found.setdefault(f"c:{o.category}", []).append(i)
    return {k: tuple(v) for k, v in found.items()}
