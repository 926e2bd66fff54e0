"""Learning: Thompson sampling over hierarchical cells, the score parts, arbitration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relata.decisions.arbitration import arbitrate, control
from relata.decisions.bandit import (
    CellStats,
    Prior,
    cell_key,
    chain_labels,
    logit,
    posterior,
    sigmoid,
)
from relata.decisions.scoring import FEATURES, Weights, priority, score

PRIOR = Prior(rate=0.05, strength=2.0, cell_strength=20.0)
KEYS = [0, cell_key("channel=web")]


def test_cells_run_from_coarse_to_fine_and_keys_are_stable():
    labels = chain_labels(["channel", "placement", "tier"], {"channel": "web", "tier": "1"})
    assert labels == [
        "",
        "channel=web",
        "channel=web|placement=?",
        "channel=web|placement=?|tier=1",
    ]
    assert cell_key("") == 0
    assert cell_key("channel=web") == cell_key("channel=web") != cell_key("channel=app")


def test_wins_raise_and_losses_lower_an_offers_mean():
    stats = CellStats(3)
    before = posterior(stats, KEYS, PRIOR, None).mean.copy()
    for _ in range(50):
        stats.learn(KEYS, 0, 1.0)  # offer 0 is accepted every time
        stats.learn(KEYS, 1, 0.0)  # offer 1 never
    after = posterior(stats, KEYS, PRIOR, None).mean
    assert after[0] > before[0] and after[1] < before[1]
    assert after[0] > 0.8 and after[1] < 0.05


def test_a_cell_learns_its_own_taste_and_others_keep_the_offers():
    stats = CellStats(1)
    web, app = [0, cell_key("channel=web")], [0, cell_key("channel=app")]
    for _ in range(400):
        stats.learn(web, 0, 1.0)
        stats.learn(app, 0, 0.0)
    new = [0, cell_key("channel=pos")]
    mean = lambda keys: posterior(stats, keys, PRIOR, None).mean[0]  # noqa: E731
    assert mean(web) > 0.9 and mean(app) < 0.1
    assert 0.4 < mean(new) < 0.6  # an unseen cell behaves like the offer overall


def test_a_new_offer_gets_a_fair_chance_and_a_loser_fades():
    stats = CellStats(3)
    for _ in range(300):
        stats.learn(KEYS, 0, 0.3)  # an established offer converting 30 %
        stats.learn(KEYS, 1, 0.0)  # a loser
    rng = np.random.default_rng(7)
    picks = np.zeros(3)
    for _ in range(2000):
        picks[np.argmax(posterior(stats, KEYS, PRIOR, rng).draw)] += 1
    # Offer 2 has never been shown: its wide posterior makes it win now and then.
    assert 20 < picks[2] < 1000
    assert picks[1] < 5


def test_thompson_sampling_finds_the_best_offer():
    rng = np.random.default_rng(3)
    truth = np.array([0.02, 0.05, 0.12, 0.04])
    stats = CellStats(4)
    chosen = []
    for _ in range(4000):
        arm = int(np.argmax(posterior(stats, KEYS, PRIOR, rng).draw))
        stats.learn(KEYS, arm, float(rng.random() < truth[arm]))
        chosen.append(arm)
    assert np.mean(np.array(chosen[-1000:]) == 2) > 0.8


def test_the_draws_have_the_moments_of_the_posterior():
    stats = CellStats(1)
    for i in range(40):
        stats.learn(KEYS, 0, float(i % 4 == 0))
    rng = np.random.default_rng(11)
    post = posterior(stats, KEYS, PRIOR, rng, draws=20000)
    assert post.draw.shape == (20000, 1)
    assert post.draw.mean() == pytest.approx(post.mean[0], abs=0.005)


def test_decayed_counts_weigh_less():
    from relata.decisions.loader import decay

    assert decay(0.0, 30 * 86400.0, 30) == pytest.approx(0.5)
    assert decay(0.0, 60 * 86400.0, 30) == pytest.approx(0.25)
    assert decay(0.0, 30 * 86400.0, 0) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    overall=st.floats(0.001, 0.999),
    mean=st.floats(0.001, 0.999),
    draw=st.floats(0.001, 0.999),
    x=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
)
def test_score_parts_add_up_to_the_sampled_log_odds(overall, mean, draw, x):
    from relata.decisions.bandit import Posterior

    post = Posterior(np.array([overall]), np.array([mean]), np.array([draw]))
    w = Weights(intercept=0.3, base=0.9, own=0.7, similar=1.1, past_positive=0.2)
    s = score(post, np.array([x]), w)
    total = sum(float(v[0]) for v in s.parts.values())
    assert total == pytest.approx(float(logit(s.sampled)[0]), abs=1e-6)
    without = total - float(s.parts["exploration"][0])
    assert float(sigmoid(without)) == pytest.approx(float(s.propensity[0]), abs=1e-9)
    assert len(FEATURES) == 4


def test_own_purchases_and_similar_customers_raise_the_propensity():
    from relata.decisions.bandit import Posterior

    flat = Posterior(np.full(3, 0.05), np.full(3, 0.05), np.full(3, 0.05))
    feats = np.array([[0, 0, 0, 0], [1.5, 0, 0, 0], [0, 1.0, 0, 0]], dtype=float)
    s = score(flat, feats, Weights())
    assert s.propensity[1] > s.propensity[0] and s.propensity[2] > s.propensity[0]


def test_priority_is_propensity_times_value_times_weight():
    p = priority(np.array([0.1, 0.5]), np.array([100.0, 10.0]), np.array([1.0, 2.0]))
    assert list(p) == pytest.approx([10.0, 10.0])


def test_arbitration_ranks_by_priority_with_diversity():
    prio = np.array([5.0, 9.0, 8.0, 1.0, 7.0])
    cats = ["a", "a", "a", "b", None]
    picked = arbitrate(prio, cats, [False] * 5, limit=3, max_per_category=1, record=True)
    assert picked.chosen == [1, 4, 3]
    assert picked.skipped[2] == "diversity" and picked.skipped[0] == "diversity"
    assert arbitrate(prio, cats, [False] * 5, 2, None).chosen == [1, 2]


def test_doing_nothing_is_a_floor():
    prio = np.array([5.0, 2.0, 3.0])
    nothing = [False, False, True]  # "do nothing" is worth 3
    picked = arbitrate(prio, ["a", "b", None], nothing, limit=3, max_per_category=None, record=True)
    assert picked.chosen == [0]  # the offer worth 2 is below the floor
    assert picked.skipped[1] == "floor"
    alone = arbitrate(np.array([1.0, 3.0]), ["a", None], [False, True], 3, None)
    assert alone.chosen == [1]  # nothing beats everything: do nothing


def test_ties_go_to_the_earlier_offer():
    assert arbitrate(np.array([2.0, 2.0, 2.0]), [None] * 3, [False] * 3, 2, None).chosen == [0, 1]


def test_the_control_group_is_uniformly_random_and_never_does_nothing():
    rng = np.random.default_rng(5)
    first = np.zeros(4)
    for _ in range(4000):
        picked = control(4, [None] * 4, [False, False, False, True], 1, None, rng)
        first[picked.chosen[0]] += 1
    assert first[3] == 0
    assert np.all(np.abs(first[:3] / 4000 - 1 / 3) < 0.04)
