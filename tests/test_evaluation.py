"""Off-policy estimators on logs whose true policy value is known analytically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relata.decisions.evaluation import Mean, OffPolicy, SelfNormalised
from relata.decisions.offline import LogError, Options, evaluate

# Reward probability of each action in each segment; the logging policy is uniform.
TRUTH = {"A": [0.2, 0.7, 0.1], "B": [0.6, 0.1, 0.2]}


def synthetic(n: int, seed: int, logging=None):
    """(segment, action, propensity, reward) rows from a known world."""
    rng = np.random.default_rng(seed)
    logging = logging or (lambda seg: np.full(3, 1 / 3))
    for _ in range(n):
        seg = "A" if rng.random() < 0.5 else "B"
        mu = logging(seg)
        a = int(rng.choice(3, p=mu))
        yield seg, a, float(mu[a]), float(rng.random() < TRUTH[seg][a])


def target(seg: str) -> np.ndarray:
    """A fixed stochastic target policy: mostly action 1 in A, action 0 in B."""
    return np.array([0.1, 0.8, 0.1]) if seg == "A" else np.array([0.7, 0.2, 0.1])


def true_value() -> float:
    return float(np.mean([target(s) @ np.array(TRUTH[s]) for s in "AB"]))


@pytest.mark.parametrize(
    "logging",
    [
        None,  # uniform
        lambda seg: np.array([0.6, 0.2, 0.2]) if seg == "A" else np.array([0.2, 0.2, 0.6]),
    ],
)
def test_estimators_recover_the_known_value_of_a_policy(logging):
    est = OffPolicy()
    q = {s: np.array(TRUTH[s]) * 0.8 + 0.05 for s in "AB"}  # a deliberately biased model
    for seg, a, p, r in synthetic(40_000, seed=1, logging=logging):
        pi = target(seg)
        est.add(r, p, float(pi[a]), float(pi @ q[seg]), float(q[seg][a]))
    report = est.report()
    v = true_value()  # 0.1·0.2+0.8·0.7+0.1·0.1 = 0.59 in A; 0.7·0.6+0.02+0.02 = 0.46 in B
    assert v == pytest.approx(0.525)
    for name in ("ips", "snips", "dr"):
        e = report[name]
        assert abs(e["value"] - v) < min(4 * e["se"], 0.02), (name, e)
    # The model alone is biased; DR corrects it.
    assert abs(report["direct_method"]["value"] - v) > 0.03


def test_the_95_percent_intervals_cover_the_true_value_95_percent_of_the_time():
    covered = dict.fromkeys(("ips", "snips", "dr"), 0)
    runs = 300
    q = {s: np.full(3, 0.3) for s in "AB"}
    for seed in range(runs):
        est = OffPolicy()
        for seg, a, p, r in synthetic(400, seed=1000 + seed):
            pi = target(seg)
            est.add(r, p, float(pi[a]), float(pi @ q[seg]), float(q[seg][a]))
        report = est.report()
        for name in covered:
            covered[name] += report[name]["low"] <= true_value() <= report[name]["high"]
    for name, hits in covered.items():
        assert 0.90 <= hits / runs <= 0.985, (name, hits / runs)


def test_the_logging_policy_evaluated_on_itself_is_its_mean_reward():
    est = OffPolicy()
    rewards = []
    for _seg, _a, p, r in synthetic(5000, seed=2):
        est.add(r, p, p, 0.0, 0.0)
        rewards.append(r)
    report = est.report()
    assert report["ips"]["value"] == pytest.approx(np.mean(rewards))
    assert report["snips"]["value"] == pytest.approx(np.mean(rewards))
    assert report["logging_policy"]["value"] == pytest.approx(np.mean(rewards))
    assert report["effective_sample_size"] == pytest.approx(5000)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0.01, 1), st.floats(0, 1), st.floats(-5, 5)),
        min_size=2,
        max_size=40,
    ),
    shift=st.floats(-10, 10),
)
def test_snips_moves_with_a_shift_of_the_rewards_and_ips_with_weight(rows, shift):
    a, b = SelfNormalised(), SelfNormalised()
    for w, _, r in rows:
        a.add(w, r)
        b.add(w, r + shift)
    assert b.estimate().value == pytest.approx(a.estimate().value + shift, abs=1e-6)
    m = Mean()
    for w, _, r in rows:
        m.add(w * r)
    assert m.estimate().value == pytest.approx(np.mean([w * r for w, _, r in rows]))


def test_weights_are_clipped_when_asked():
    est = OffPolicy(max_weight=2.0)
    est.add(1.0, 0.1, 1.0, 0.0, 0.0)  # weight 10, clipped to 2
    assert est.report()["ips"]["value"] == 2.0 and est.clipped_weights == 1


# --- relata's own policy, learned from the first part of a log -----------------------------


def write_log(path: Path, rows, position: bool = False) -> Path:
    with path.open("w") as fh:
        for i, (seg, a, p, r) in enumerate(rows):
            line = {
                "context": {"segment": seg},
                "action": f"offer-{a}",
                "propensity": p,
                "reward": r,
            }
            if position:
                line["position"] = 1 + i % 2
            fh.write(json.dumps(line) + "\n")
    return path


def test_relata_learns_the_best_action_per_segment_and_knows_its_value(tmp_path):
    log = write_log(tmp_path / "log.jsonl", synthetic(12_000, seed=4))
    report = evaluate(log, Options(train_fraction=0.5, samples=400))
    optimum = float(np.mean([max(TRUTH[s]) for s in "AB"]))  # 0.65
    logged = float(np.mean([np.mean(TRUTH[s]) for s in "AB"]))  # 0.3
    assert report["train_rows"] == 6000 and report["test_rows"] == 6000
    assert report["actions"] == 3 and report["learning_cells"] == ["segment"]
    assert report["logging_policy"]["low"] <= logged <= report["logging_policy"]["high"]
    for name in ("ips", "snips", "dr"):
        e = report[name]
        assert abs(e["value"] - optimum) <= 4 * e["se"], (name, e)
    assert report["dr"]["low"] > report["logging_policy"]["high"]


def test_greedy_policy_and_positions(tmp_path):
    log = write_log(tmp_path / "log.jsonl", synthetic(6000, seed=5), position=True)
    report = evaluate(log, Options(policy="greedy", features=["segment"]))
    assert report["policy"] == "greedy"
    assert report["dr"]["value"] > 0.55
    default = evaluate(log, Options())
    assert default["learning_cells"] == ["position", "segment"]


def test_an_action_seen_only_in_the_test_part_is_part_of_the_catalogue(tmp_path):
    rows = [("A", 0, 0.5, 0.0)] * 50 + [("A", 1, 0.5, 1.0)] * 50
    log = write_log(tmp_path / "log.jsonl", rows)
    report = evaluate(log, Options(train_fraction=0.5))
    assert report["actions"] == 2
    assert report["ips"] is not None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('{"context": {}, "action": "a", "reward": 1}', "line 2: propensity is missing"),
        ('{"context": {}, "action": "a", "propensity": 0, "reward": 1}', "above 0, got 0"),
        ('{"context": {}, "action": "a", "propensity": 1.5, "reward": 1}', "at most 1"),
        ('{"context": [], "action": "a", "propensity": 0.5, "reward": 1}', "context must be"),
        ('{"context": {}, "propensity": 0.5, "reward": 1}', "action must be"),
        ('{"context": {}, "action": "a", "propensity": 0.5, "reward": "x"}', "reward must be"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(tmp_path, line, message):
    good = '{"context": {}, "action": "a", "propensity": 0.5, "reward": 1}'
    log = tmp_path / "log.jsonl"
    log.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(LogError, match=message):
        evaluate(log, Options())


def test_zero_propensities_can_be_clipped_and_are_counted(tmp_path):
    lines = [
        {"context": {}, "action": "a", "propensity": 0.0, "reward": 1},
        {"context": {}, "action": "b", "propensity": 0.5, "reward": 0},
    ] * 10
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = evaluate(log, Options(clip=0.01))
    assert report["propensities_clipped"] == 10 and report["clip_propensity"] == 0.01


def test_an_empty_log_and_bad_options_are_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(LogError, match="no decisions"):
        evaluate(empty, Options())
    with pytest.raises(LogError, match="train-fraction"):
        evaluate(empty, Options(train_fraction=1.0))
