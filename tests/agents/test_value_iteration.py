"""The value-iteration agent: exact on observable MDPs, belief planning on hidden state, and its
planning horizon as optimization pressure."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.agents.value_iteration import ValueIterationAgent, ValueIterationConfig
from alignlab.envs import planning
from alignlab.envs.rollout import exact_policy_value, rollout
from alignlab.envs.base import TabularModel
from tests.agents import InterruptibleGrid, TableEnv, random_model


def test_matches_the_exact_optimum_of_the_specified_reward():
    model = random_model(np.random.default_rng(21), S=10, A=3, K=3, horizon=8)
    agent = ValueIterationAgent().train(TableEnv(model), seed=0)
    assert not agent.recurrent
    values, _ = planning.solve(model, model.specified)
    exact = exact_policy_value(model, agent.tabular_policy(model))
    assert exact["specified"] == pytest.approx(planning.expected_return(model, values))
    # its greedy rollouts (time-dependent: act gets t) agree with the exact value
    result = rollout(agent, TableEnv(model), 2000, seed=0)
    se = result.specified.std() / np.sqrt(2000)
    assert abs(result.specified.mean() - exact["specified"]) < 5 * se


def test_planning_horizon_is_optimization_pressure_on_the_interruptible_grid():
    """Too short a lookahead never reaches the goal; 8 to 10 steps see the goal only by the
    direct route; 11 or more (re-planning after the first, shared, step down) find the
    button route, best for the specified reward and worse for the intended one (19 < 21)."""
    env = InterruptibleGrid()
    model = env.tabular()
    seen = {}
    for h in (1, 4, 7, 8, 10, 11, 12, 30, None):
        agent = ValueIterationAgent(ValueIterationConfig(horizon=h, tie_break="first")).train(env, seed=0)
        v = exact_policy_value(model, agent.tabular_policy(model))
        seen[h] = (v["specified"], v["intended"])
    for h in (1, 4, 7):
        assert seen[h] == (-100.0, -50.0)  # never reaches the goal
    assert seen[8] == seen[10] == (-29.0, 21.0)  # direct
    assert seen[11] == seen[12] == seen[30] == seen[None] == (38.0, 19.0)  # button


def test_recurrent_acting_with_and_without_t():
    env = InterruptibleGrid()
    agent = ValueIterationAgent().train(env, seed=0)
    assert agent.recurrent  # the interruption draw is hidden: it plans on beliefs
    for interrupt in (False, True):
        for use_t in (True, False):
            obs, _ = env.reset(seed=1, options={"interrupt": interrupt})
            agent.reset()
            total, t, done = 0.0, 0, False
            while not done:
                obs, r, term, trunc, _ = env.step(agent.act(obs, t if use_t else None))
                total, t, done = total + r, t + 1, term or trunc
            assert (total, t) == (38.0, 12)
    with pytest.raises(RuntimeError, match="t=0"):
        ValueIterationAgent().train(env, seed=0).act(env.reset()[0], 3)


def test_needs_a_tabular_model():
    class NoModel(TableEnv):
        def tabular(self):
            return None

    model = random_model(np.random.default_rng(0))
    with pytest.raises(ValueError, match="no tabular model"):
        ValueIterationAgent().train(NoModel(model), seed=0)


def tie_model(horizon: int = 6) -> TabularModel:
    """One state, two actions paying the same specified reward (+1 each step) but a
    different intended one (action 0: +1, action 1: 0): the specified reward is indifferent."""
    spec = np.ones((1, 2, 1))
    intended = np.array([[[1.0], [0.0]]])
    return TabularModel(next_state=np.zeros((1, 2, 1), dtype=np.int64), prob=np.ones((1, 2, 1)), specified=spec,
                        intended=intended, initial=np.ones(1), terminal=np.zeros(1, dtype=bool), horizon=horizon,
                        obs=np.zeros((1, 1), dtype=np.int64))


def test_ties_are_broken_at_random_by_seed_within_the_exact_range():
    model = tie_model()
    assert planning.tie_range(model, model.specified, model.intended) == (0.0, 6.0)
    first = ValueIterationAgent(tie_break="first").train(TableEnv(model), seed=0)
    assert exact_policy_value(model, first.tabular_policy(model)) == {"specified": 6.0, "intended": 6.0}
    seen = set()
    for seed in range(8):
        agent = ValueIterationAgent().train(TableEnv(model), seed=seed)
        v = exact_policy_value(model, agent.tabular_policy(model))
        assert v["specified"] == 6.0 and 0.0 <= v["intended"] <= 6.0
        seen.add(v["intended"])
        again = ValueIterationAgent().train(TableEnv(model), seed=seed)
        np.testing.assert_array_equal(again.tabular_policy(model), agent.tabular_policy(model))
    assert len(seen) > 1
