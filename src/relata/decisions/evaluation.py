"""Off-policy estimators: the value of a new policy from another policy's log. Pure.

For a logged row (context x, action a, logging propensity μ(a|x), reward r) and the
target policy's probabilities π(·|x), with w = π(a|x) / μ(a|x):

    IPS    V = mean(w·r)                                    unbiased, high variance
    SNIPS  V = Σ w·r / Σ w                                  self-normalised: small bias,
                                                            far less variance
    DR     V = mean(Σₐ π(a|x)·q(x,a) + w·(r − q(x,a)))      doubly robust: unbiased if μ is
                                                            right, low variance if q is good

q is a reward model fitted on other rows than the ones evaluated. Intervals are normal
(central limit) intervals: mean ± 1.96·se for IPS and DR, and for SNIPS the delta-method
standard error √(Σ w²(r − V)²) / Σ w. Everything is a running sum, so a log of any size
streams through in constant memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from relata.decisions.intervals import Z95


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    low: float
    high: float
    se: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "se": self.se}


@dataclass(slots=True)
class Mean:
    """Running mean and variance (Welford), for IPS, DR and the logged rewards."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def estimate(self) -> Estimate | None:
        if self.n == 0:
            return None
        var = self.m2 / (self.n - 1) if self.n > 1 else 0.0
        se = math.sqrt(var / self.n)
        return Estimate(self.mean, self.mean - Z95 * se, self.mean + Z95 * se, se)


@dataclass(slots=True)
class SelfNormalised:
    """Σw, Σw·r, Σw², Σw²·r, Σw²·r²: enough for SNIPS, its delta-method se and the ESS."""

    sw: float = 0.0
    swr: float = 0.0
    sw2: float = 0.0
    sw2r: float = 0.0
    sw2r2: float = 0.0

    def add(self, w: float, r: float) -> None:
        self.sw += w
        self.swr += w * r
        self.sw2 += w * w
        self.sw2r += w * w * r
        self.sw2r2 += w * w * r * r

    def estimate(self) -> Estimate | None:
        if self.sw <= 0:
            return None
        v = self.swr / self.sw
        spread = max(self.sw2r2 - 2 * v * self.sw2r + v * v * self.sw2, 0.0)
        se = math.sqrt(spread) / self.sw
        return Estimate(v, v - Z95 * se, v + Z95 * se, se)

    @property
    def effective_sample_size(self) -> float:
        return self.sw * self.sw / self.sw2 if self.sw2 > 0 else 0.0


@dataclass(slots=True)
class OffPolicy:
    """All estimators at once, fed one logged row at a time."""

    max_weight: float | None = None
    logged: Mean = field(default_factory=Mean)
    ips: Mean = field(default_factory=Mean)
    dr: Mean = field(default_factory=Mean)
    dm: Mean = field(default_factory=Mean)
    snips: SelfNormalised = field(default_factory=SelfNormalised)
    clipped_weights: int = 0
    matched: int = 0  # rows where the target policy could take the logged action

    def add(
        self,
        reward: float,
        logging_propensity: float,
        target_probability: float,
        expected: float,
        predicted: float,
    ) -> None:
        """``expected``: Σₐ π(a|x)·q(x,a); ``predicted``: q(x, logged action)."""
        w = target_probability / logging_propensity
        if self.max_weight is not None and w > self.max_weight:
            w = self.max_weight
            self.clipped_weights += 1
        if target_probability > 0:
            self.matched += 1
        self.logged.add(reward)
        self.ips.add(w * reward)
        self.snips.add(w, reward)
        self.dm.add(expected)
        self.dr.add(expected + w * (reward - predicted))

    def report(self) -> dict[str, object]:
        def show(e: Estimate | None) -> dict[str, float] | None:
            return None if e is None else e.as_dict()

        return {
            "rows": self.logged.n,
            "logging_policy": show(self.logged.estimate()),
            "ips": show(self.ips.estimate()),
            "snips": show(self.snips.estimate()),
            "dr": show(self.dr.estimate()),
            "direct_method": show(self.dm.estimate()),
            "effective_sample_size": self.snips.effective_sample_size,
            "matched_rows": self.matched,
            "clipped_weights": self.clipped_weights,
        }
