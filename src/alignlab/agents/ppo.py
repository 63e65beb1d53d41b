"""PPO (Schulman et al. 2017, arXiv:1707.06347) through stable-baselines3 (Raffin et al.,
JMLR 2021): an adapter, not a re-implementation.

`ppo-v0` wraps `stable_baselines3.PPO("MlpPolicy", ...)` with small defaults for a CPU,
on one torch thread, seeded. Pressure: total training timesteps.

Observations. Dict and Tuple observations (and scalar Boxes) are flattened with
Gymnasium's `FlattenObservation`. An integer Box (a grid of cell codes, a tuple of
coordinates) is by default re-declared as categorical, a flat `MultiDiscrete`, which
stable-baselines3 one-hot encodes: an MLP fed raw cell codes or coordinates generalises
across them as if they were magnitudes, and on the gridworlds its greedy policy then
tends to bump a wall forever. Float Boxes, Discrete and MultiDiscrete go through as
they are.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.agents.base import Agent
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.envs.base import TabularModel

MAX_CATEGORIES = 20_000
"""Most one-hot inputs a categorical observation may expand to (larger Boxes stay numeric)."""


@dataclasses.dataclass(frozen=True)
class PPOConfig(BaseConfig):
    total_timesteps: int = 50_000
    """Environment steps of training (the optimization-pressure knob)."""
    n_steps: int = 256
    """Steps collected per rollout before each update, summed over the copies (n_envs)."""
    n_envs: int = 8
    """Environment copies stepped together (stable-baselines3's DummyVecEnv): one batched policy forward per step
    of all copies."""
    batch_size: int = 64
    """Minibatch size of the PPO update (best a divisor of n_steps)."""
    n_epochs: int = 4
    """Passes over each rollout in the update."""
    learning_rate: float = 3e-4
    """Adam step size."""
    discount: float = 0.99
    """Discount factor gamma."""
    gae_lambda: float = 0.95
    """Lambda of generalised advantage estimation."""
    clip_range: float = 0.2
    """PPO's clipping range of the probability ratio."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus (exploration)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value networks."""
    categorical_obs: bool = True
    """One-hot encode integer Box observations (grid cell codes, coordinates) instead of feeding them as numbers."""
    deterministic: bool = True
    """Act with the policy's most likely action (True) or sample from the policy (False, and `tabular_policy` gives
    its action probabilities)."""

    @classmethod
    def quick(cls) -> "PPOConfig":
        return cls(total_timesteps=5_000)

    def __post_init__(self) -> None:
        if self.total_timesteps < 1:
            raise ConfigError(f"ppo: total_timesteps must be >= 1 (got {self.total_timesteps})")
        if self.n_steps < 2 or self.batch_size < 2:
            raise ConfigError("ppo: n_steps and batch_size must be >= 2")
        if self.n_envs < 1 or self.n_steps % self.n_envs:
            raise ConfigError(f"ppo: n_envs must be >= 1 and divide n_steps (got n_envs={self.n_envs}, "
                              f"n_steps={self.n_steps})")
        if not self.net_arch or any(h < 1 for h in self.net_arch):
            raise ConfigError(f"ppo: net_arch must be positive layer sizes (got {self.net_arch})")


class _Categorical(gym.ObservationWrapper):
    """An integer Box observation as a flat MultiDiscrete (value minus the lower bound)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        box = env.observation_space
        self.low = box.low.astype(np.int64).reshape(-1)
        self.observation_space = gym.spaces.MultiDiscrete((box.high.astype(np.int64) - box.low + 1).reshape(-1))

    def observation(self, obs: Any) -> np.ndarray:
        return np.asarray(obs, dtype=np.int64).reshape(-1) - self.low


def _categorical_ok(space: gym.Space) -> bool:
    return (isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.integer) and space.shape != ()
            and bool(np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)))
            and float(np.sum(space.high.astype(np.float64) - space.low + 1)) <= MAX_CATEGORIES)


@register("agent", "ppo-v0")
class PPOAgent(Agent):
    """stable-baselines3 PPO with an MLP policy; acts with the policy's mode (greedy)."""

    config_cls = PPOConfig
    pressure_key = "total_timesteps"
    config: PPOConfig

    @classmethod
    def smoke_config(cls) -> PPOConfig:
        """2,048 steps (the quick preset takes 5,000): enough to learn the contract test's chain
        in about a second."""
        return PPOConfig(total_timesteps=2048)

    def train(self, env: gym.Env, seed: int) -> "PPOAgent":
        import torch  # imported here: torch and stable-baselines3 load in about a second
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import DummyVecEnv

        torch.set_num_threads(1)
        c = self.config
        self._space = space = env.observation_space
        if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)) or (
                isinstance(space, gym.spaces.Box) and space.shape == ()):
            env = gym.wrappers.FlattenObservation(env)
            self._encode = lambda o: gym.spaces.flatten(space, o)
            self._encode_batch = None
        elif c.categorical_obs and _categorical_ok(space):
            env = _Categorical(env)
            low = env.low
            self._encode = lambda o: np.asarray(o, dtype=np.int64).reshape(-1) - low
            self._encode_batch = lambda b: np.asarray(b, dtype=np.int64).reshape(len(b), -1) - low
        else:
            self._encode = lambda o: o
            self._encode_batch = np.asarray
        # Copies of the (wrapped) env: the policy's forward pass, not the env, is the per-step
        # cost of stable-baselines3's rollouts, and it is batched over the copies.
        venv = DummyVecEnv([(lambda e=copy.deepcopy(env): e) for _ in range(c.n_envs)])
        self.model = PPO(
            "MlpPolicy", venv, learning_rate=c.learning_rate, n_steps=c.n_steps // c.n_envs,
            batch_size=min(c.batch_size, c.n_steps), n_epochs=c.n_epochs, gamma=c.discount,
            gae_lambda=c.gae_lambda, clip_range=c.clip_range, ent_coef=c.ent_coef,
            policy_kwargs={"net_arch": list(c.net_arch)}, seed=seed, device="cpu", verbose=0,
        )
        self.model.learn(total_timesteps=c.total_timesteps)
        self.trained = True
        return self

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        action, _ = self.model.predict(self._encode(obs), deterministic=self.config.deterministic)
        return int(np.asarray(action).reshape(-1)[0])

    def _batch(self, obs: Any) -> np.ndarray:
        if self._encode_batch is not None:
            return self._encode_batch(obs)
        leaf = obs  # Dict/Tuple: a vector env batches them leaf by leaf
        while isinstance(leaf, (dict, tuple)):
            leaf = next(iter(leaf.values())) if isinstance(leaf, dict) else leaf[0]
        return np.stack([self._encode(_row(obs, i)) for i in range(len(leaf))])

    def act_batch(self, obs: Any, t: Any = None) -> np.ndarray:
        self._check_trained()
        action, _ = self.model.predict(self._batch(obs), deterministic=self.config.deterministic)
        return np.asarray(action, dtype=np.int64).reshape(-1)

    def action_probabilities(self, obs: Any) -> np.ndarray:
        """The policy's action distribution [N, A] for a batch of observations."""
        import torch

        self._check_trained()
        tensor, _ = self.model.policy.obs_to_tensor(self._batch(obs))
        with torch.no_grad():
            return self.model.policy.get_distribution(tensor).distribution.probs.cpu().numpy().astype(np.float64)

    def tabular_policy(self, model: TabularModel) -> np.ndarray:
        """Greedy actions [S], or with `deterministic=False` the sampled policy's action
        probabilities [S, A] (both evaluated exactly by `exact_policy_value`)."""
        if self.config.deterministic:
            return super().tabular_policy(model)
        probs = self.action_probabilities(model.obs)
        return probs / probs.sum(axis=1, keepdims=True)


def _row(batch: Any, i: int) -> Any:
    """Row i of a batched Dict/Tuple observation."""
    if isinstance(batch, dict):
        return {k: _row(v, i) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_row(v, i) for v in batch)
    return batch[i]
