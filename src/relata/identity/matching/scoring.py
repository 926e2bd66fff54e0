"""Scoring a pair with a trained model's parameters, in Python. Pure, no I/O.

The same arithmetic as Splink's predict: the prior's match weight plus, for every
comparison, the match weight (log2 m/u) of the level the pair falls into, plus a term
frequency adjustment on exact matches of common values ("Müller" says less than
"Wojciechowski"). Real-time matching, the clustering guard and explanations use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from relata.identity.matching.comparisons import (
    COMPARISONS,
    CONFLICT_COMPARISONS,
    Comparison,
    conflict_levels,
    spec_hash,
)
from relata.identity.matching.features import Features


class ModelMismatch(ValueError):
    """The stored model was trained on other comparisons than the code has now."""


@dataclass(frozen=True, slots=True)
class LevelParams:
    label: str
    weight: float  # log2(m / u); 0 for a missing value
    m: float | None = None
    u: float | None = None
    tf: str | None = None  # term frequency column
    tf_u: float | None = None  # u of the exact match the adjustment replaces
    tf_weight: float = 1.0
    tf_min_u: float = 0.0


@dataclass(frozen=True, slots=True)
class Params:
    """What scoring needs of a trained model; stored as JSON with the model."""

    spec_hash: str
    prior_weight: float
    levels: tuple[tuple[LevelParams, ...], ...]  # per comparison, per level
    tf: Mapping[str, Mapping[str, float]]  # column -> value -> relative frequency
    # Comparisons whose "different" level means two people (a setting, not stored).
    conflict_names: tuple[str, ...] = CONFLICT_COMPARISONS

    def with_conflicts(self, names: Sequence[str]) -> Params:
        return replace(self, conflict_names=tuple(names))

    def as_json(self) -> dict[str, Any]:
        return {
            "spec_hash": self.spec_hash,
            "prior_weight": self.prior_weight,
            "levels": [[vars_of(level) for level in levels] for levels in self.levels],
            "tf": {col: dict(values) for col, values in self.tf.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Params:
        return cls(
            spec_hash=data["spec_hash"],
            prior_weight=float(data["prior_weight"]),
            levels=tuple(
                tuple(LevelParams(**level) for level in levels) for levels in data["levels"]
            ),
            tf={col: dict(values) for col, values in data.get("tf", {}).items()},
        )

    def conflicts(self) -> dict[int, int]:
        """Comparison index → its `Else` level, where that level weighs against a match."""
        return {
            i: last
            for i, last in conflict_levels(self.conflict_names).items()
            if self.levels[i][last].weight < 0
        }

    def conflict_sql(self, comparisons: Sequence[Comparison] = COMPARISONS) -> str:
        """The conflict test on Splink's predictions, which carry each comparison's weight
        (``mw_<name>``) but not its level: the `Else` level's weight names it."""
        terms = [
            f"mw_{comparisons[i].name} = cast({self.levels[i][last].weight!r} as double)"
            for i, last in self.conflicts().items()
        ]
        return " or ".join(terms) or "false"

    def check(self, comparisons: Sequence[Comparison] = COMPARISONS) -> None:
        if self.spec_hash != spec_hash(comparisons):
            raise ModelMismatch(
                "the stored matching model was trained on other comparisons; "
                "run `relata dedupe train` again"
            )


def vars_of(level: LevelParams) -> dict[str, Any]:
    return {name: getattr(level, name) for name in LevelParams.__slots__}


@dataclass(frozen=True, slots=True)
class Step:
    """One bar of the waterfall: a comparison, its level, both values and the weight."""

    comparison: str
    title: str
    level: str
    left: str
    right: str
    weight: float
    tf_adjustment: float = 0.0


@dataclass(frozen=True, slots=True)
class Score:
    weight: float
    levels: tuple[int, ...]
    conflict: bool  # first names or birth dates say these are two people

    @property
    def probability(self) -> float:
        return probability(self.weight)


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    return 1.0 / (1.0 + 2.0 ** (-weight))


def weight_of_probability(p: float) -> float:
    return math.log2(p / (1.0 - p))


def _tf_adjustment(level: LevelParams, value: Any, tf: Mapping[str, Mapping[str, float]]) -> float:
    if level.tf is None or level.tf_u is None or value is None:
        return 0.0
    frequency = tf.get(level.tf, {}).get(value)
    if frequency is None:  # Splink adjusts nothing for a value it has no frequency of
        return 0.0
    return level.tf_weight * (math.log2(level.tf_u) - math.log2(max(frequency, level.tf_min_u)))


def score(
    left: Features,
    right: Features,
    params: Params,
    comparisons: Sequence[Comparison] = COMPARISONS,
) -> Score:
    total = params.prior_weight
    found = []
    for comparison, levels in zip(comparisons, params.levels, strict=True):
        i = comparison.level_of(left, right)
        level = levels[i]
        total += level.weight
        if level.tf is not None:
            total += _tf_adjustment(level, getattr(left, level.tf), params.tf)
        found.append(i)
    conflict = any(found[i] == last for i, last in params.conflicts().items())
    return Score(total, tuple(found), conflict)


def explain(
    left: Features,
    right: Features,
    params: Params,
    comparisons: Sequence[Comparison] = COMPARISONS,
) -> list[Step]:
    """The waterfall of a pair: the prior, then every comparison's contribution."""
    steps = [Step("prior", "prior", "two random records", "", "", params.prior_weight)]
    for comparison, levels in zip(comparisons, params.levels, strict=True):
        i = comparison.level_of(left, right)
        level = levels[i]
        tf = _tf_adjustment(level, getattr(left, level.tf), params.tf) if level.tf else 0.0
        steps.append(
            Step(
                comparison.name,
                comparison.title,
                level.label,
                _shown(left, comparison.shows),
                _shown(right, comparison.shows),
                level.weight,
                tf,
            )
        )
    return steps


def _shown(f: Features, cols: Sequence[str]) -> str:
    return " ".join(str(v) for c in cols if (v := getattr(f, c)) not in (None, ()))


def total(steps: Sequence[Step]) -> float:
    return sum(s.weight + s.tf_adjustment for s in steps)


def steps_json(steps: Sequence[Step]) -> dict[str, Any]:
    """A waterfall as the review queue stores it."""
    return {"steps": [asdict(s) for s in steps], "total": total(steps)}
