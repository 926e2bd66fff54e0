"""A synthetic world with hidden tastes: relata's policy against random and the oracle.

Customers belong to one of ``--types`` types (relata sees the type as a context field,
as it would see a trait), contact comes on three channels at four times of day, and each
of ``--offers`` offers has a hidden acceptance probability per type, channel and time:
``p = sigmoid(a_offer + b_offer,type + g_offer,channel + h_offer,slot)``. Every step a
customer makes contact, each policy picks one offer and is paid 1 if the customer accepts:

* random: an offer uniformly at random (what "no decisioning" earns);
* oracle: the offer with the highest true probability (the best any policy can earn);
* relata: the real decision function (``decisions.decide``: eligibility, scoring,
  Thompson sampling over the learning cells, arbitration) on counts that learn from
  every response at once, as folded responses do in production;
* relata without context: the same with no learning cells (one rate per offer).

With ``--drift`` the types' tastes are drawn anew halfway; the counts then decay with
``--half-life`` decisions, as the half-life in days does in production.

.venv/bin/python -m bench.decisions_sim [--decisions 100000] [--offers 20] [--types 6]
    [--seed 1] [--drift] [--half-life 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from relata.decisions.bandit import CellStats, Prior, cell_key  # noqa: E402
from relata.decisions.catalogue import Catalogue, OfferSpec  # noqa: E402
from relata.decisions.decide import Request, decide  # noqa: E402
from relata.decisions.features import build as build_state  # noqa: E402
from relata.decisions.policies import Usage  # noqa: E402
from relata.decisions.snapshot import Config, Model  # noqa: E402
from relata.decisions.snapshot import build as build_snapshot  # noqa: E402
from relata.segments.profile import Profile  # noqa: E402

CHANNELS = ("web", "app", "email")
SLOTS = ("morning", "midday", "evening", "night")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass
class World:
    rng: np.random.Generator
    offers: int
    types: int
    a: np.ndarray = field(init=False)
    b: np.ndarray = field(init=False)
    g: np.ndarray = field(init=False)
    h: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.a = self.rng.normal(-3.0, 0.5, self.offers)
        self.g = self.rng.normal(0, 0.5, (len(CHANNELS), self.offers))
        self.h = self.rng.normal(0, 0.3, (len(SLOTS), self.offers))
        self.drift()

    def drift(self) -> None:
        self.b = self.rng.normal(0, 1.2, (self.types, self.offers))

    def p(self, t: int, c: int, s: int) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.a + self.b[t] + self.g[c] + self.h[s])))


class Relata:
    """The engine's decision function on counts that learn online."""

    def __init__(self, offers: int, chain: tuple[str, ...], seed: int) -> None:
        specs = [
            OfferSpec(
                i + 1,
                f"offer-{i}",
                f"Offer {i}",
                "product",
                1.0,
                frozenset(CHANNELS),
                max_impressions=None,
            )
            for i in range(offers)
        ]
        self.catalogue = Catalogue.build(1, specs, [])
        self.stats = CellStats(offers)
        self.config = Config(chain=chain, prior=Prior(), control_share=0.0)
        self.rng = np.random.default_rng(seed)
        self.state = build_state(Profile(1, {}), [], NOW)
        self.snap = build_snapshot(self.catalogue, self.stats, Usage(), Model(), NOW)

    def choose(self, context: dict[str, str]) -> tuple[int, list[int]]:
        self.snap.memo.clear()  # the counts moved since the last decision
        request = Request(context["channel"], None, context, limit=1)
        outcome = decide(self.snap, self.state, request, NOW, self.config, self.rng)
        return outcome.chosen[0].offer.id - 1, [cell_key(label) for label in outcome.labels]

    def learn(self, keys: list[int], offer: int, reward: float) -> None:
        self.stats.learn(keys, offer, reward)

    def decay(self, factor: float) -> None:
        for shows, wins in self.stats.cells.values():
            shows *= factor
            wins *= factor


def run(args: argparse.Namespace) -> dict[str, list[float]]:
    rng = np.random.default_rng(args.seed)
    world = World(np.random.default_rng(args.seed + 1), args.offers, args.types)
    learners = {
        "relata": Relata(args.offers, ("channel", "segment", "slot"), args.seed),
        "relata, no context": Relata(args.offers, (), args.seed),
    }
    names = ["random", *learners, "oracle"]
    rewards = {n: [] for n in names}
    decay = 0.5 ** (1000 / args.half_life) if args.drift else 1.0
    started = time.perf_counter()
    for step in range(args.decisions):
        if args.drift and step == args.decisions // 2:
            world.drift()
        if args.drift and step % 1000 == 999:
            for learner in learners.values():
                learner.decay(decay)
        t, c, s = rng.integers(args.types), rng.integers(len(CHANNELS)), rng.integers(len(SLOTS))
        p = world.p(t, c, s)
        u = rng.random()  # one draw for all policies: they face the same customer
        rewards["random"].append(float(u < p[rng.integers(args.offers)]))
        rewards["oracle"].append(float(u < p.max()))
        context = {"channel": CHANNELS[c], "segment": f"type-{t}", "slot": SLOTS[s]}
        for name, learner in learners.items():
            offer, keys = learner.choose(context)
            reward = float(u < p[offer])
            learner.learn(keys, offer, reward)
            rewards[name].append(reward)
    took = time.perf_counter() - started
    print(
        f"{args.decisions:,} decisions in {took:.0f} s "
        f"({took / args.decisions / len(learners) * 1e6:.0f} µs a relata decision incl. learning)"
    )
    return rewards


def report(rewards: dict[str, list[float]], windows: int = 10) -> None:
    oracle = sum(rewards["oracle"])
    print(f"\n{'policy':<22}{'cumulative reward':>18}{'rate':>8}{'of oracle':>11}{'regret':>9}")
    for name, r in rewards.items():
        total = sum(r)
        print(
            f"{name:<22}{total:>18,.0f}{total / len(r):>8.4f}{total / oracle:>10.1%}"
            f"{oracle - total:>9,.0f}"
        )
    n = len(rewards["oracle"])
    size = n // windows
    print(f"\nreward rate in windows of {size:,} decisions:")
    print(f"{'window':<10}" + "".join(f"{name:>22}" for name in rewards))
    for w in range(windows):
        part = slice(w * size, (w + 1) * size)
        print(f"{w + 1:<10}" + "".join(f"{np.mean(r[part]):>22.4f}" for r in rewards.values()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--offers", type=int, default=20)
    parser.add_argument("--types", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drift", action="store_true")
    parser.add_argument("--half-life", type=float, default=10_000)
    args = parser.parse_args()
    report(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
