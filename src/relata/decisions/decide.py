"""One decision from what the engine holds in memory. Pure: no I/O.

``decide`` takes a snapshot (see snapshot.py), one customer's ``CustomerState`` and the
request, and returns an ``Outcome``: what to show, each with its score parts and reason,
how many offers each rule or policy excluded, and with ``explain`` every offer considered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from relata.decisions import collaborative, eligibility, explain, filtering, policies
from relata.decisions.arbitration import Arbitrated, arbitrate, control
from relata.decisions.bandit import cell_key, chain_labels, draw, logit
from relata.decisions.catalogue import OfferSpec
from relata.decisions.features import CustomerState, context_values
from relata.decisions.policies import CODES, Exclusion, Usage, channel_block
from relata.decisions.scoring import FEATURES, PARTS, Scores, priority, score_logits
from relata.decisions.snapshot import Config, Snapshot
from relata.segments.rules.timing import BERLIN

SKIPPED = {
    "rank": "ranked below the chosen offers",
    "diversity": "category already shown often enough (diversity)",
    "floor": "worth less than doing nothing",
}


@dataclass(frozen=True)
class Request:
    channel: str
    placement: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    limit: int = 1
    max_per_category: int | None = None
    explain: bool = False


@dataclass(frozen=True)
class Chosen:
    offer: OfferSpec
    rank: int
    priority: float
    propensity: float
    sampled: float
    parts: dict[str, float]
    features: dict[str, float]
    reason: str
    logging_propensity: float | None = None  # exact, for the control group's first pick


@dataclass(frozen=True)
class Considered:
    offer: OfferSpec
    status: str  # chosen | excluded | not chosen
    code: str | None = None
    detail: str = ""
    propensity: float | None = None
    priority: float | None = None
    parts: dict[str, float] | None = None


@dataclass(frozen=True)
class Outcome:
    chosen: list[Chosen]
    labels: list[str]  # learning cells, coarse to fine
    control: bool
    eligible: int
    excluded: dict[str, int]  # exclusion code -> number of offers
    blocked: Exclusion | None = None
    considered: list[Considered] = field(default_factory=list)  # only when explaining

    @property
    def cells(self) -> list[int]:
        return [cell_key(label) for label in self.labels]


def decide(
    snap: Snapshot,
    state: CustomerState,
    request: Request,
    now: datetime,
    config: Config,
    rng: np.random.Generator,
    usage: Usage | None = None,
    block: Exclusion | None = None,
) -> Outcome:
    """``usage``: the snapshot's plus this process's own since; ``block``: a reason found
    outside the engine (consent) that nothing may be shown."""
    usage = usage or snap.usage
    context = {**request.context, "channel": request.channel}
    if request.placement is not None:
        context["placement"] = request.placement
    labels = chain_labels(
        config.chain, context_values(context, state.traits, now.astimezone(BERLIN))
    )
    profile = eligibility.with_context(state.profile, context)
    round_ctx = eligibility.round_context(now)

    def rule_ok(rule: eligibility.Rule) -> bool:
        return eligibility.evaluate(rule, profile, round_ctx)

    def audience(text: str) -> bool:
        rule = snap.policy_rules.get(text)
        return rule is not None and rule_ok(rule)

    policies_ = snap.catalogue.policies
    block = block or channel_block(policies_, state, request.channel, now, usage, audience)
    codes = filtering.codes(
        snap, state, request.channel, request.placement, now, usage, rule_ok, block
    )
    eligible = np.flatnonzero(codes == 0)
    counts = np.bincount(codes, minlength=len(CODES) + 1)
    excluded = {c: int(counts[i + 1]) for i, c in enumerate(CODES) if counts[i + 1]}
    chosen, scored, skipped, in_control = _choose(
        snap, state, request, eligible, labels, config, rng
    )
    considered: list[Considered] = []
    if request.explain:
        considered = _considered(
            snap, state, request, now, usage, codes, block, chosen, scored, skipped
        )
    return Outcome(chosen, labels, in_control, len(eligible), excluded, block, considered)


def _choose(
    snap: Snapshot,
    state: CustomerState,
    request: Request,
    eligible: np.ndarray,
    labels: list[str],
    config: Config,
    rng: np.random.Generator,
) -> tuple[list[Chosen], Scores | None, dict[int, str], bool]:
    if eligible.size == 0:
        return [], None, {}, False
    offers = snap.catalogue.offers
    cell = snap.cell(tuple(cell_key(label) for label in labels), config.prior)
    mean = cell.logit_mean[eligible]
    sampled_theta = draw(cell.mean[eligible], cell.var[eligible], rng)
    feats = features(snap, state, eligible)
    scores = score_logits(
        cell.logit_overall[eligible], mean, logit(sampled_theta), feats, snap.model.weights
    )
    nothing = snap.nothing[eligible]
    propensity = np.where(nothing, 1.0, scores.propensity)
    sampled = np.where(nothing, 1.0, scores.sampled)
    prio = priority(sampled, snap.values[eligible], snap.weights[eligible])
    scores = Scores(propensity, sampled, {**scores.parts, "priority": prio})
    categories = _Categories(snap.category_list, eligible)
    in_control = bool(rng.random() < config.control_share)
    limit, diverse, record = request.limit, request.max_per_category, request.explain
    picked: Arbitrated
    if in_control:
        picked = control(len(eligible), categories, nothing, limit, diverse, rng, record)
    else:
        picked = arbitrate(prio, categories, nothing, limit, diverse, record)
    rows = picked.chosen
    # Numbers of the chosen few as Python floats in one go: numpy scalars are slow one by one.
    parts = np.round(np.array([scores.parts[k][rows] for k in PARTS]), 4).T.tolist()
    found = np.round(np.column_stack((mean[rows], feats[rows])), 6).tolist()
    numbers = np.array([prio[rows], propensity[rows], sampled[rows]]).T.tolist()
    pool = int((~nothing).sum())
    chosen = []
    for rank, (j, p, f, (pr, pp, ps)) in enumerate(
        zip(rows, parts, found, numbers, strict=True), start=1
    ):
        offer = offers[int(eligible[j])]
        named = {} if nothing[j] else dict(zip(PARTS, p, strict=True))
        chosen.append(
            Chosen(
                offer=offer,
                rank=rank,
                priority=pr,
                propensity=pp,
                sampled=ps,
                parts=named,
                features=dict(zip(("cell", *FEATURES), f, strict=True)),
                reason=explain.reason(offer, named, labels[-1], in_control),
                logging_propensity=1.0 / pool if in_control and rank == 1 else None,
            )
        )
    skipped = {int(eligible[j]): why for j, why in picked.skipped.items()}
    return chosen, scores, skipped, in_control


class _Categories:
    """The category of candidate j, looked up only for the candidates arbitration walks."""

    __slots__ = ("eligible", "names")

    def __init__(self, names: tuple[str | None, ...], eligible: np.ndarray) -> None:
        self.names, self.eligible = names, eligible

    def __getitem__(self, j: int) -> str | None:
        return self.names[self.eligible[j]]

    def __len__(self) -> int:
        return len(self.eligible)


def _parts(scores: Scores, j: int) -> dict[str, float]:
    return {k: float(v[j]) for k, v in scores.parts.items() if k != "priority"}


def features(snap: Snapshot, state: CustomerState, eligible: np.ndarray) -> np.ndarray:
    """(own, similar, past_positive, past_ignored) per eligible offer, see features.personal."""
    n = len(snap.catalogue.offers)
    own = np.zeros(n)
    positive = np.zeros(n)
    bought = state.purchases
    if bought:
        # A category never bought: log((0 + 2·s) / (n + 2) / s) = log(2 / (n + 2)).
        own[snap.has_category] = math.log(2 / (bought + 2))
        for name, k in state.category_counts.items():
            if (where := snap.category_positions.get(name)) is not None:
                share = snap.model.share(name)
                own[where] = math.log((k + 2 * share) / (bought + 2) / share)
    for name, count in state.positives.items():
        if (where := snap.category_positions.get(name)) is not None:
            positive[where] = math.log1p(count)
    ignored = np.zeros(n)
    at, logs = _ignored(snap, state)
    ignored[at] = logs
    similar = _similar(snap, state)
    return np.column_stack(
        (own, similar if similar is not None else np.zeros(n), positive, ignored)
    )[eligible]


def _ignored(snap: Snapshot, state: CustomerState) -> tuple[list[int], list[float]]:
    """Positions of the offers shown and log(1 + times ignored). Remembered an offer on the
    state until a response to it (features.PER_OFFER_MEMOS)."""
    key = (snap.catalogue.version, id(snap.catalogue))
    memo = state.memo.get("ignored")
    known = memo[1] if memo is not None and memo[0] == key else {}
    fresh: dict[int, float] | None = None
    index = snap.catalogue.index
    at, logs = [], []
    for offer_id in state.impressions:
        if (i := index.get(offer_id)) is None:
            continue
        value = known.get(offer_id)
        if value is None:
            value = math.log1p(state.ignored(offer_id))
            if fresh is None:
                fresh = dict(known)
            fresh[offer_id] = value
        at.append(i)
        logs.append(value)
    if fresh is not None:
        state.memo["ignored"] = (key, fresh)
    return at, logs


def _similar(snap: Snapshot, state: CustomerState) -> np.ndarray | None:
    """The collaborative scores of every offer for this customer, memoised on the state."""
    if snap.offer_rows is None or snap.model.items is None:
        return None
    key = (snap.model.id, snap.catalogue.version, len(state.items))
    memo = state.memo.get("similar")
    if memo is not None and memo[0] == key:
        return memo[1]
    found = collaborative.scores(snap.offer_rows, snap.model.items.columns(state.items))
    state.memo["similar"] = (key, found)
    return found


def _considered(
    snap: Snapshot,
    state: CustomerState,
    request: Request,
    now: datetime,
    usage: Usage,
    codes: np.ndarray,
    block: Exclusion | None,
    chosen: list[Chosen],
    scores: Scores | None,
    skipped: Mapping[int, str],
) -> list[Considered]:
    """Every offer with why it was (not) chosen: the slow path, only when explaining."""
    taken = {c.offer.id for c in chosen}
    eligible = {int(i): j for j, i in enumerate(np.flatnonzero(codes == 0))}
    result = []
    for i, offer in enumerate(snap.catalogue.offers):
        j = eligible.get(i)
        if j is None or scores is None:
            why = block or policies.offer_exclusion(
                offer, state, request.channel, request.placement, now, usage
            )
            if why is None:
                why = Exclusion("rule", snap.rules[i].text if snap.rules[i] else "")
            result.append(Considered(offer, "excluded", why.code, why.detail))
            continue
        status = "chosen" if offer.id in taken else "not chosen"
        result.append(
            Considered(
                offer,
                status,
                None,
                "" if status == "chosen" else SKIPPED.get(skipped.get(i, ""), ""),
                float(scores.propensity[j]),
                float(scores.parts["priority"][j]),
                explain.rounded(_parts(scores, j)),
            )
        )
    return result
