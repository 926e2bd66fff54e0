"""Propensity of (customer, offer, context), as a sum of named parts on the log-odds scale. Pure.

    logit p = intercept + base·logit θ₀                    the offer overall (bandit)
            + base·(logit θ_cell − logit θ₀)               the context: channel, placement,
                                                           time, device, customer traits
            + own·own_affinity                             the customer's own purchases
            + similar·collaborative                        what similar customers bought/took
            + past_positive·log1p(positive responses)      the customer's past responses
            + past_ignored·log1p(ignored impressions)
    ranking uses the same sum plus  base·(logit θ_draw − logit θ_cell)   exploration

``propensity`` is p without exploration; ``sampled`` with it (Thompson sampling). The
weights are fitted by ``relata decisions train`` (logistic regression on logged shows
and wins); until then the defaults below hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from relata.decisions.bandit import Posterior, logit, sigmoid

PARTS = ("base", "context", "own", "similar", "history", "exploration")
FEATURES = ("own", "similar", "past_positive", "past_ignored")


@dataclass(frozen=True, slots=True)
class Weights:
    intercept: float = 0.0
    base: float = 1.0
    own: float = 0.5
    similar: float = 0.5
    past_positive: float = 0.3
    past_ignored: float = -0.2

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Scores:
    """Arrays over the candidates, in the order given."""

    propensity: np.ndarray
    sampled: np.ndarray
    parts: dict[str, np.ndarray]  # log-odds contributions; they add up to logit(sampled)


def score(post: Posterior, features: np.ndarray, w: Weights) -> Scores:
    """``post``: the bandit's arrays for the candidates; ``features``: (n, 4) in FEATURES order."""
    return score_logits(logit(post.overall), logit(post.mean), logit(post.draw), features, w)


def score_logits(
    overall: np.ndarray, cell: np.ndarray, draw: np.ndarray, features: np.ndarray, w: Weights
) -> Scores:
    """The same from the bandit's log-odds (the engine keeps the first two memoised)."""
    parts = {
        "base": w.intercept + w.base * overall,
        "context": w.base * (cell - overall),
        "own": w.own * features[:, 0],
        "similar": w.similar * features[:, 1],
        "history": w.past_positive * features[:, 2] + w.past_ignored * features[:, 3],
        "exploration": w.base * (draw - cell),
    }
    mean = parts["base"] + parts["context"] + parts["own"] + parts["similar"] + parts["history"]
    return Scores(sigmoid(mean), sigmoid(mean + parts["exploration"]), parts)


def priority(propensity: np.ndarray, value: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Expected business value of showing the offer: propensity × value × weight."""
    return propensity * value * weight
