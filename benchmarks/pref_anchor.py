"""The anchor arm of bench_preferences.py: the `imitation` library's preference comparisons (Gleave et al. 2022,
arXiv:2211.11972; the method of Christiano et al. 2017, arXiv:1706.03741) on an alignlab environment's tabular
model, run in .venv-imitation (imitation 1.0.1 pins gymnasium 0.29.1 and stable-baselines3 2.2.1, older than
alignlab's, whose environments therefore cannot be imported there).

Usage: pref_anchor.py MODEL.npz COMPARISONS TIMESTEPS SEED. The model file holds the MDP (successors,
probabilities, observations, start distribution, horizon) and the reward the synthetic rater judges by (the
intended one): imitation's SyntheticGatherer compares fragments by the environment reward, so that reward is
the rater's; the PPO learner trains only on the learned reward (imitation's RewardVecEnvWrapper). Prints one
JSON line: the greedy action of the trained policy in every state, the comparisons made, the wall time.
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
import numpy as np


class TabularEnv(gym.Env):
    """An MDP given as arrays, stepped exactly; reward = the rater's reward; fixed horizon (truncation)."""

    def __init__(self, data: dict):
        self.d = data
        self.observation_space = gym.spaces.Box(0, 255, data["obs"].shape[1:], dtype=np.float32)
        self.action_space = gym.spaces.Discrete(data["next_state"].shape[1])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(len(self.d["initial"]), p=self.d["initial"]))
        self.t = 0
        return self.d["obs"][self.s].astype(np.float32), {}

    def step(self, action):
        p = self.d["prob"][self.s, action]
        k = int(self.np_random.choice(len(p), p=p))
        r = float(self.d["reward"][self.s, action, k])
        self.s = int(self.d["next_state"][self.s, action, k])
        self.t += 1
        done = bool(self.d["terminal"][self.s])
        return self.d["obs"][self.s].astype(np.float32), r, done, self.t >= int(self.d["horizon"]), {}


def main() -> None:
    path, comparisons, timesteps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import torch
    from imitation.algorithms import preference_comparisons as pc
    from imitation.policies.base import FeedForward32Policy, NormalizeFeaturesExtractor
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    data = dict(np.load(path))
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    venv = DummyVecEnv([lambda: TabularEnv(data) for _ in range(8)])
    venv.seed(seed)
    # The settings of imitation's own preference-comparisons tutorial (docs/tutorials/5_train_preference_comparisons).
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    fragmenter = pc.RandomFragmenter(warning_threshold=0, rng=rng)
    gatherer = pc.SyntheticGatherer(rng=rng)
    model = pc.PreferenceModel(reward_net)
    trainer = pc.BasicRewardTrainer(preference_model=model, loss=pc.CrossEntropyRewardLoss(), epochs=3, rng=rng)
    agent = PPO(policy=FeedForward32Policy, env=venv, seed=seed, n_steps=2048 // venv.num_envs, batch_size=64,
                ent_coef=0.01, learning_rate=2e-3, clip_range=0.1, gae_lambda=0.95, gamma=0.97, n_epochs=10,
                policy_kwargs=dict(features_extractor_class=NormalizeFeaturesExtractor,
                                   features_extractor_kwargs=dict(normalize_class=RunningNorm)))
    generator = pc.AgentTrainer(algorithm=agent, reward_fn=reward_net, venv=venv, exploration_frac=0.05, rng=rng)
    prefs = pc.PreferenceComparisons(generator, reward_net, num_iterations=5, fragmenter=fragmenter,
                                     preference_gatherer=gatherer, reward_trainer=trainer, fragment_length=10,
                                     transition_oversampling=1, initial_comparison_frac=0.1,
                                     allow_variable_horizon=False, initial_epoch_multiplier=4,
                                     query_schedule="hyperbolic")
    prefs.train(total_timesteps=timesteps, total_comparisons=comparisons)
    actions, _ = agent.predict(data["obs"].astype(np.float32), deterministic=True)
    print(json.dumps({"actions": [int(a) for a in actions], "comparisons": int(len(prefs.dataset)),
                      "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
