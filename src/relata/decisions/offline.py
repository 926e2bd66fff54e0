"""Testing relata's policy on a logged history before it goes live (``relata decisions evaluate``).

The log is JSON Lines, one logged decision a line::

    {"context": {"segment": "A", "age": 41}, "action": "offer-7", "propensity": 0.2,
     "reward": 1, "position": 1, "timestamp": "2026-01-05T10:00:00Z"}

It may come from another system (Open Bandit Dataset style): its actions are then the
catalogue. Two streaming passes: the first checks every line and collects the actions
and the reward range; the second lets relata's bandit learn from the first part, in log
order, exactly as it learns online (counts per context cell, see bandit.py), then freezes
it and estimates its value on the rest with IPS, SNIPS and DR (evaluation.py). Memory is
bounded by the number of actions and distinct context cells, not by the log.

Context values become learning cells as in production: text as is, numbers in log₂ bins,
true/false. The cells are chained in the order given by ``features`` (default: ``position``
if the log has it, then the context keys of the first line), ``depth`` of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from relata.decisions.bandit import CellStats, Prior, cell_key, chain_labels, posterior
from relata.decisions.evaluation import OffPolicy
from relata.decisions.features import cell_value

POLICIES = ("thompson", "greedy")


class LogError(ValueError):
    """The log cannot be evaluated; the message names the line."""


@dataclass(frozen=True, slots=True)
class Row:
    context: dict[str, Any]
    action: str
    propensity: float
    reward: float
    clipped: bool = False  # the propensity was raised to the clip value


@dataclass
class Scan:
    rows: int = 0
    actions: dict[str, int] = field(default_factory=dict)  # action -> position
    low: float = math.inf
    high: float = -math.inf
    clipped: int = 0
    first_keys: tuple[str, ...] = ()
    has_position: bool = False


def read(path: Path, clip: float | None) -> Iterator[tuple[int, Row]]:
    """(line number, row) for every non-empty line; LogError at the first bad one."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            yield number, _row(number, raw, clip)


def _row(number: int, raw: bytes, clip: float | None) -> Row:
    where = f"line {number}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LogError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LogError(f"{where}: must be a JSON object")
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise LogError(f"{where}: context must be an object")
    action = data.get("action")
    if isinstance(action, bool) or not isinstance(action, str | int) or action == "":
        raise LogError(f"{where}: action must be a text or a number")
    reward = _number(data.get("reward"), f"{where}: reward")
    propensity = data.get("propensity")
    if propensity is None:
        raise LogError(f"{where}: propensity is missing; without it the log cannot be evaluated")
    p = _number(propensity, f"{where}: propensity")
    if p > 1:
        raise LogError(f"{where}: propensity must be at most 1, got {p}")
    clipped = p <= 0 or (clip is not None and p < clip)
    if clipped:
        if clip is None:
            raise LogError(
                f"{where}: propensity must be above 0, got {p} "
                "(--clip-propensity EPS raises smaller ones to EPS)"
            )
        p = clip
    if "position" in data and data["position"] is not None:
        context = {**context, "position": data["position"]}
    return Row(context, str(action), p, reward, clipped)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LogError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise LogError(f"{what} must be finite")
    return number


def scan(path: Path, clip: float | None) -> Scan:
    found = Scan()
    for _, row in read(path, clip):
        if found.rows == 0:
            found.first_keys = tuple(k for k in row.context if k != "position")
        found.rows += 1
        found.actions.setdefault(row.action, len(found.actions))
        found.low, found.high = min(found.low, row.reward), max(found.high, row.reward)
        found.clipped += row.clipped
        found.has_position = found.has_position or "position" in row.context
    if found.rows == 0:
        raise LogError("the log holds no decisions")
    return found


@dataclass(frozen=True)
class Options:
    train_fraction: float = 0.5
    clip: float | None = None
    max_weight: float | None = None
    features: Sequence[str] | None = None
    depth: int = 3
    policy: str = "thompson"
    samples: int = 500
    seed: int = 0
    prior: Prior = field(default_factory=Prior)


def evaluate(path: Path, options: Options) -> dict[str, Any]:
    if not 0 < options.train_fraction < 1:
        raise LogError("--train-fraction must be between 0 and 1")
    if options.clip is not None and not 0 < options.clip <= 1:
        raise LogError("--clip-propensity must be in (0, 1]")
    if options.max_weight is not None and options.max_weight <= 0:
        raise LogError("--max-weight must be positive")
    if options.policy not in POLICIES:
        raise LogError(f"policy must be one of {', '.join(POLICIES)}")
    found = scan(path, options.clip)
    chain = tuple(options.features or _default_chain(found))[: max(options.depth, 0)]
    train = max(1, min(found.rows - 1, math.ceil(found.rows * options.train_fraction)))
    if found.rows < 2:
        raise LogError("the log needs at least two decisions: one to learn, one to test")
    span = found.high - found.low or 1.0
    stats = CellStats(len(found.actions))
    estimators = OffPolicy(max_weight=options.max_weight)
    policy = _Policy(stats, options, found.low, span)
    for i, (_, row) in enumerate(read(path, options.clip)):
        keys = _keys(chain, row.context)
        action = found.actions[row.action]
        if i < train:
            stats.learn(keys, action, (row.reward - found.low) / span)
            continue
        target, q = policy(keys)
        estimators.add(
            row.reward,
            row.propensity,
            float(target[action]),
            float(target @ q),
            float(q[action]),
        )
    report = estimators.report()
    report.update(
        log=str(path),
        train_rows=train,
        test_rows=found.rows - train,
        actions=len(found.actions),
        propensities_clipped=found.clipped,
        clip_propensity=options.clip,
        policy=options.policy,
        learning_cells=list(chain),
        reward_range=[found.low, found.high],
    )
    return report


def _default_chain(found: Scan) -> list[str]:
    return (["position"] if found.has_position else []) + list(found.first_keys)


def _keys(chain: Sequence[str], context: dict[str, Any]) -> tuple[int, ...]:
    values = {k: v for k, raw in context.items() if (v := cell_value(raw)) is not None}
    return tuple(cell_key(label) for label in chain_labels(chain, values))


class _Policy:
    """relata's frozen policy: choice probabilities and reward model per context cell."""

    def __init__(self, stats: CellStats, options: Options, low: float, span: float) -> None:
        self.stats, self.options, self.low, self.span = stats, options, low, span
        self.rng = np.random.default_rng(options.seed)
        self.cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, keys: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        found = self.cache.get(keys)
        if found is None:
            found = self._compute(keys)
            if len(self.cache) < 200_000:
                self.cache[keys] = found
        return found

    def _compute(self, keys: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        n = self.stats.n
        prior = self.options.prior
        if self.options.policy == "greedy":
            mean = posterior(self.stats, keys, prior, None).mean
            target = np.zeros(n)
            target[np.flatnonzero(mean == mean.max())] = 1.0
            target /= target.sum()
        else:
            post = posterior(self.stats, keys, prior, self.rng, draws=self.options.samples)
            mean = post.mean
            target = np.bincount(post.draw.argmax(axis=1), minlength=n) / self.options.samples
        return target, self.low + self.span * mean
