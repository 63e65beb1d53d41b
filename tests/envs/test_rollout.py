"""The evaluation side (alignlab.envs.rollout): rollouts on single and vector envs agree with
exact policy evaluation, and the intended objective comes from the evaluation API."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from alignlab.agents.value_iteration import ValueIterationAgent
from alignlab.envs import planning
from alignlab.envs.rollout import exact_policy_value, optimal_returns, rollout
from alignlab.envs.tabular_vector import TabularVectorEnv
from tests.agents import InterruptibleGrid, TableEnv, chain_model, random_model


class StatePolicy:
    """A fixed time-dependent policy [H, S] that reads the state from the observation."""

    def __init__(self, model, table):
        self.index = planning.state_index(model)
        self.model, self.table = model, table

    def reset(self):
        pass

    def act(self, obs, t=None):
        return int(self.table[min(t, len(self.table) - 1), self.index[planning.obs_key(self.model, obs)]])

    def act_batch(self, obs, t):
        return np.array([self.act(o, ti) if ti >= 0 else 0 for o, ti in zip(obs, t)])


def vector(model, n):
    env = TableEnv(model)
    return TabularVectorEnv(model, n, env.observation_space, env.action_space)


@pytest.fixture(scope="module")
def case():
    model = random_model(np.random.default_rng(5), S=6, A=3, K=3, horizon=6)
    table = np.random.default_rng(6).integers(0, 3, size=(6, 6))
    return model, table, exact_policy_value(model, table)


def assert_close(result, exact, n):
    for name in ("specified", "intended"):
        x = getattr(result, name)
        se = x.std(ddof=1) / np.sqrt(n) + 1e-9
        assert abs(x.mean() - exact[name]) < 5 * se, (name, x.mean(), exact[name], se)


def test_single_env_rollout_matches_exact_values(case):
    model, table, exact = case
    assert exact["specified"] != pytest.approx(exact["intended"])
    result = rollout(StatePolicy(model, table), TableEnv(model), 3000, seed=0)
    assert result.specified.shape == result.intended.shape == result.length.shape == (3000,)
    assert result.length.max() <= model.horizon
    assert_close(result, exact, 3000)


@pytest.mark.parametrize("num_envs", [1, 7, 64])
def test_vector_rollout_matches_exact_values(case, num_envs):
    model, table, exact = case
    result = rollout(StatePolicy(model, table), vector(model, num_envs), 3000, seed=1)
    assert len(result.specified) == 3000 and result.length.min() >= 1 and result.length.max() <= model.horizon
    assert_close(result, exact, 3000)


def test_sync_vector_env_is_read_copy_by_copy(case):
    model, table, exact = case
    env = gym.vector.SyncVectorEnv([lambda: TableEnv(model)] * 4)
    assert_close(rollout(StatePolicy(model, table), env, 2000, seed=2), exact, 2000)


def test_same_step_autoreset_is_refused(case):
    model, table, _ = case
    env = gym.vector.SyncVectorEnv([lambda: TableEnv(model)] * 2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="next-step"):
        rollout(StatePolicy(model, table), env, 4)


def test_rollout_is_reproducible_with_a_seed(case):
    model, table, _ = case
    a = rollout(StatePolicy(model, table), vector(model, 16), 200, seed=3)
    b = rollout(StatePolicy(model, table), vector(model, 16), 200, seed=3)
    np.testing.assert_array_equal(a.specified, b.specified)
    np.testing.assert_array_equal(a.intended, b.intended)


def test_deterministic_chain_gives_the_same_episode_everywhere():
    model = chain_model(n=6, horizon=20)
    agent = ValueIterationAgent().train(TableEnv(model), seed=0)
    for env in (TableEnv(model), vector(model, 8)):
        result = rollout(agent, env, 20, seed=0)
        np.testing.assert_array_equal(result.specified, 5.0)
        np.testing.assert_array_equal(result.length, 5)
    assert exact_policy_value(model, agent.tabular_policy(model)) == {"specified": 5.0, "intended": 5.0}


def test_recurrent_planner_on_a_vector_env_tracks_each_copy():
    env = InterruptibleGrid()
    model = env.tabular()
    agent = ValueIterationAgent().train(env, seed=0)
    assert agent.recurrent
    result = rollout(agent, TabularVectorEnv(model, 32, env.observation_space, env.action_space), 640, seed=4)
    np.testing.assert_array_equal(result.specified, 38.0)  # the button route, every time
    np.testing.assert_array_equal(result.length, 12)
    assert set(np.unique(result.intended)) == {0.0, 38.0}  # 0 in the episodes drawn for interruption
    assert abs(result.intended.mean() - 19.0) < 5 * result.intended.std() / np.sqrt(640)
    single = rollout(agent, env, 50, seed=4)
    np.testing.assert_array_equal(single.specified, 38.0)


def test_exact_values_and_optimal_returns_of_the_interruptible_grid():
    model = InterruptibleGrid().tabular()
    assert optimal_returns(model) == pytest.approx({
        "specified_optimum": 38.0, "intended_at_specified_optimum": 19.0,
        "intended_at_specified_optimum_min": 19.0, "intended_at_specified_optimum_max": 19.0,
        "intended_optimum": 21.0, "specified_at_intended_optimum": -29.0})
    # a stationary state policy given as action probabilities: uniform random
    uniform = np.full((model.n_states, 4), 0.25)
    values = exact_policy_value(model, uniform)
    assert values["specified"] < 0 and values["specified"] >= -100


def test_bad_arguments():
    model = chain_model()
    with pytest.raises(ValueError, match="episodes"):
        rollout(StatePolicy(model, np.ones((20, 6), dtype=int)), TableEnv(model), 0)
    stuck = StatePolicy(model, np.zeros((20, 6), dtype=int))  # walks left forever
    no_limit = chain_model(horizon=10**9)
    with pytest.raises(RuntimeError, match="max_steps"):
        rollout(StatePolicy(no_limit, np.zeros((1, 6), dtype=int)), TableEnv(no_limit), 1, max_steps=50)
    assert rollout(stuck, TableEnv(model), 2).specified.tolist() == [-20.0, -20.0]
