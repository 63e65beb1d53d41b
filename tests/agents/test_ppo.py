"""The stable-baselines3 PPO adapter learns a tiny MDP with a lure, and handles Dict observations."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from alignlab.agents.ppo import PPOAgent
from alignlab.envs.base import TabularModel
from alignlab.envs.rollout import exact_policy_value, rollout
from alignlab.envs.tabular_vector import TabularVectorEnv
from tests.agents import TableEnv, chain_model


def lure_model(n: int = 5, horizon: int = 20) -> TabularModel:
    """States 0..n-1 in a row, then two terminal states. Action 0 takes +1 and ends the
    episode (the lure); action 1 walks right for free, and walking off the last state pays
    +10 and ends it. Optimal: always right (10); a myopic policy quits at once (1)."""
    quit_, goal = n, n + 1
    S = n + 2
    next_state = np.zeros((S, 2, 1), dtype=np.int64)
    reward = np.zeros((S, 2, 1))
    for s in range(S):
        if s >= n:
            next_state[s, :, 0] = s
            continue
        next_state[s, 0, 0], reward[s, 0, 0] = quit_, 1.0
        next_state[s, 1, 0] = s + 1 if s + 1 < n else goal
        reward[s, 1, 0] = 10.0 if s + 1 == n else 0.0
    return TabularModel(next_state=next_state, prob=np.ones((S, 2, 1)), specified=reward, intended=reward.copy(),
                        initial=np.eye(S)[0], terminal=np.arange(S) >= n, horizon=horizon,
                        obs=np.arange(S, dtype=np.int64))


@pytest.mark.parametrize("obs_kind", ["discrete", "integer-box"])
def test_ppo_learns_to_pass_the_lure(obs_kind):
    model = lure_model()
    if obs_kind == "integer-box":  # observed as a 1-vector of ints: one-hot encoded as categorical
        model.obs = model.obs[:, None]
    env = TableEnv(model, discrete_obs=obs_kind == "discrete")
    untrained = PPOAgent(total_timesteps=64, n_steps=64, learning_rate=1e-12).train(env, seed=0)
    assert exact_policy_value(model, untrained.tabular_policy(model))["specified"] < 10.0  # the lure
    agent = PPOAgent(total_timesteps=2048).train(env, seed=0)
    assert exact_policy_value(model, agent.tabular_policy(model)) == {"specified": 10.0, "intended": 10.0}
    if obs_kind == "integer-box":
        assert isinstance(agent.model.observation_space, gym.spaces.MultiDiscrete)
        numeric = PPOAgent(total_timesteps=64, n_steps=64, categorical_obs=False).train(env, seed=0)
        assert isinstance(numeric.model.observation_space, gym.spaces.Box)
    live = model.obs[:5]
    assert agent.act_batch(live).tolist() == [agent.act(o) for o in live] == [1] * 5
    result = rollout(agent, TabularVectorEnv(model, 8, env.observation_space, env.action_space), 16, seed=0)
    np.testing.assert_array_equal(result.specified, 10.0)
    # the sampled policy, evaluated exactly from its action probabilities
    probs = agent.action_probabilities(model.obs)
    assert probs.shape == (model.n_states, 2) and np.allclose(probs.sum(1), 1.0)
    np.testing.assert_array_equal(probs.argmax(1)[:5], 1)
    sampler = dataclasses.replace(agent.config, deterministic=False)
    agent.config = sampler
    stochastic = exact_policy_value(model, agent.tabular_policy(model))["specified"]
    assert 1.0 < stochastic < 10.0
    assert set(agent.act_batch(np.repeat(model.obs[:1], 64, axis=0)).tolist()) == {0, 1}


class DictObs(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict({"pos": env.observation_space})

    def observation(self, obs):
        return {"pos": obs}


def test_dict_observations_are_flattened():
    model = chain_model(n=4, horizon=10)
    env = DictObs(TableEnv(model, discrete_obs=True))
    agent = PPOAgent(total_timesteps=256, n_steps=128, batch_size=32).train(env, seed=0)
    obs, _ = env.reset(seed=0)
    a = agent.act(obs)
    assert a in (0, 1)
    batch = {"pos": np.array([0, 1, 2])}
    assert agent.act_batch(batch).tolist() == [agent.act({"pos": p}) for p in (0, 1, 2)]
