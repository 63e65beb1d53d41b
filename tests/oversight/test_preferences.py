"""Reward learning from preferences: the Bradley-Terry fit, query selection and the whole loop reaching the
true-reward return (Christiano et al. 2017)."""

import numpy as np
import pytest

from alignlab.agents.base import tabular_model
from alignlab.core import registry
from alignlab.core.errors import ConfigError
from alignlab.envs.planning import solve
from alignlab.envs.rollout import exact_policy_value
from alignlab.oversight.pref_data import transitions
from alignlab.oversight.pref_raters import RaterNoise, make_rater
from alignlab.oversight.preferences import (PreferenceConfig, RewardEnsemble, choose_pairs, fit_bradley_terry,
                                            learn_reward)


def test_bradley_terry_fit_recovers_the_direction_and_takes_soft_labels():
    rng = np.random.default_rng(0)
    w_true = np.array([2.0, -1.0, 0.0, 0.5])
    x = rng.normal(size=(3000, 4))
    y = (rng.random(3000) < 1 / (1 + np.exp(-x @ w_true))).astype(float)
    w = fit_bradley_terry(x, y, l2=1e-3)
    assert np.allclose(w, w_true, atol=0.2)
    # "equally good" everywhere: the fit stays at zero
    assert np.allclose(fit_bradley_terry(x, np.full(3000, 0.5), l2=1.0), 0, atol=1e-6)
    # a feature that never differs keeps weight 0
    x[:, 3] = 0
    assert fit_bradley_terry(x, y, l2=1.0)[3] == 0


def test_active_queries_pick_the_pairs_members_disagree_on():
    feats = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ens = RewardEnsemble(np.array([[5.0, 0.0], [-5.0, 0.0]]))  # they disagree on feature 0 only
    pool = np.zeros((3, 1), dtype=np.int64)
    pick = choose_pairs(pool, feats, 2, ens, candidates=50, rng=np.random.default_rng(0))
    assert all(0 in set(p) and 1 in set(p) or 1 in set(p) and 2 in set(p) for p in pick.tolist())


def _ratio(name, n, seed, **kw):
    m = tabular_model(registry.make("env", name))
    tr = transitions(m)
    _, best = solve(m, m.intended)
    learned = learn_reward(m, make_rater("true", tr), PreferenceConfig(comparisons=n, **kw),
                           np.random.default_rng(seed), tr)
    _, pol = solve(m, learned.reward)
    assert learned.comparisons == n and len(learned.history) == PreferenceConfig().rounds
    return exact_policy_value(m, pol)["intended"] / exact_policy_value(m, best)["intended"]


def test_learned_reward_reaches_the_true_reward_return_on_the_boat_race():
    # the specified reward's optimum laps back and forth (intended 0); 300 comparisons learn the laps
    assert _ratio("boat-race-v0", 300, seed=0) >= 0.8


def test_a_rater_answering_at_random_teaches_nothing():
    m = tabular_model(registry.make("env", "boat-race-v0"))
    tr = transitions(m)
    rater = make_rater("true", tr, RaterNoise(error_rate=1.0))
    learned = learn_reward(m, rater, PreferenceConfig(comparisons=200), np.random.default_rng(0), tr)
    _, pol = solve(m, learned.reward)
    assert exact_policy_value(m, pol)["intended"] < 50  # the laps score 100


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="comparisons"):
        PreferenceConfig(comparisons=0)
    with pytest.raises(ConfigError, match="epsilon"):
        PreferenceConfig(epsilon=2.0)
    m = tabular_model(registry.make("env", "tall-and-fall-v0"))
    with pytest.raises(ConfigError, match="longer than the horizon"):
        learn_reward(m, make_rater("true", transitions(m)), PreferenceConfig(segment=50), np.random.default_rng(0))
