"""Choosing what to show from the scored candidates. Pure.

    priority = propensity (sampled) × value × weight

Levers: ``value`` (margin or benefit of an acceptance), ``weight`` (business emphasis, 1
neutral, 0 never wins), a "do nothing" activity whose priority is its value × weight (a
floor: offers worth less are not shown), ``max_per_category`` (diversity), ``limit``.
Candidates are taken best first; one of a category already taken ``max_per_category``
times is skipped; a "do nothing" ends the list (alone, if it comes first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Arbitrated:
    chosen: list[int]  # indices into the candidates, best first
    skipped: dict[int, str] = field(default_factory=dict)  # index -> diversity | rank | floor


def arbitrate(
    priorities: np.ndarray,
    categories: Sequence[str | None],
    nothing: Sequence[bool],
    limit: int,
    max_per_category: int | None,
    record: bool = False,
) -> Arbitrated:
    """``record``: also say why each candidate not chosen was skipped (for explanations)."""
    # Ties go to the earlier candidate (lower offer id), so equal scores rank stably.
    order = np.lexsort((np.arange(len(priorities)), -priorities)).tolist()
    return _take(order, categories, nothing, limit, max_per_category, record)


def control(
    count: int,
    categories: Sequence[str | None],
    nothing: Sequence[bool],
    limit: int,
    max_per_category: int | None,
    rng: np.random.Generator,
    record: bool = False,
) -> Arbitrated:
    """The random control group: eligible offers in random order, same limits, no floor."""
    order = [i for i in rng.permutation(count).tolist() if not nothing[i]]
    return _take(order, categories, [False] * count, limit, max_per_category, record)


def _take(
    order: list[int],
    categories: Sequence[str | None],
    nothing: Sequence[bool],
    limit: int,
    max_per_category: int | None,
    record: bool,
) -> Arbitrated:
    chosen: list[int] = []
    skipped: dict[int, str] = {}
    per_category: dict[str, int] = {}
    for pos, i in enumerate(order):
        if len(chosen) >= limit:
            if record:
                skipped.update((j, "rank") for j in order[pos:])
            break
        if nothing[i]:
            if not chosen:
                chosen.append(i)
            if record:
                skipped.update((j, "rank" if nothing[j] else "floor") for j in order[pos + 1 :])
            break
        category = categories[i]
        if max_per_category is not None and category is not None:
            if per_category.get(category, 0) >= max_per_category:
                skipped[i] = "diversity"
                continue
            per_category[category] = per_category.get(category, 0) + 1
        chosen.append(i)
    return Arbitrated(chosen, skipped)
