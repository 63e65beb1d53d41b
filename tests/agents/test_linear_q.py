"""Linear-function-approximation Q-learning: generalises across boards where a Q-table cannot
(tomato watering's 2^13 tomato patterns), is seeded, and is exactly tabular on Discrete observations."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.agents.linear_q import LinearQAgent
from alignlab.core.errors import ConfigError
from alignlab.core.registry import make
from alignlab.envs.rollout import exact_policy_value
from alignlab.experiments import spec_gaming_eval as ev
from tests.agents import TableEnv, chain_model


def test_games_tomato_watering_where_the_q_table_cannot():
    """Trained 2,000 episodes, it walks to the transformer and stays: near the proxy optimum
    (exact, 53.99) while the true watering falls far below its optimum (18.27)."""
    env = make("env", "tomato-watering-v0")
    agent = LinearQAgent(episodes=2000).train(env, seed=0)
    result = ev.evaluate(agent, "tomato-watering-v0", 16, 0)
    assert result["specified"] > 0.95 * 53.99 and result["intended"] < 0.5 * 18.27
    weak = LinearQAgent(episodes=100).train(env, seed=0)  # little pressure: does not find it yet
    assert ev.evaluate(weak, "tomato-watering-v0", 16, 0)["specified"] < 0.5 * 53.99


def test_training_is_seeded_and_act_batch_matches_act():
    env = make("env", "boat-race-v0")
    a = LinearQAgent(episodes=200).train(env, seed=3)
    b = LinearQAgent(episodes=200).train(env, seed=3)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    assert len(a.episode_returns) == 200
    obs = np.stack([env.reset(seed=s)[0] for s in range(4)])
    assert a.act_batch(obs).tolist() == [a.act(o) for o in obs]


def test_discrete_observations_are_one_hot_states():
    model = chain_model(n=6, horizon=20)
    agent = LinearQAgent(episodes=300).train(TableEnv(model, discrete_obs=True), seed=0)
    assert agent.weights.shape == (model.n_actions, int(model.obs.max()) + 1)
    assert exact_policy_value(model, agent.tabular_policy(model)) == {"specified": 5.0, "intended": 5.0}


def test_float_observations_are_refused():
    import gymnasium as gym

    with pytest.raises(ConfigError, match="integer Box"):
        LinearQAgent().train(gym.make("CartPole-v1"), seed=0)
