"""Q-learning with linear function approximation on one-hot cell features (Sutton & Barto
2018, "Reinforcement Learning: An Introduction", ch. 9-11; Watkins & Dayan 1992), trained on
a batch of environment copies.

The tabular learners key their Q-table on the whole observation, so on a board whose
cells change at random (tomato watering: 13 tomatoes that dry independently, 2^13
patterns) they almost never see a state twice and cannot learn where to walk. This agent
generalises across boards: Q(s, a) = sum over cells of w[a, cell, code(cell)], a linear
function of the one-hot encoding of every cell's tile code (an integer Box observation)
or of the state index (a Discrete observation: then it is exactly tabular Q-learning).

Semi-gradient Q-learning, epsilon-greedy with the same linear decay as the tabular agents,
on `num_envs` copies stepped together: by table lookups where the environment has a tabular
model (alignlab's native TabularVectorEnv built from this very instance's model), else
Gymnasium's SyncVectorEnv over copies of the given environment (so a custom-configured env
trains as configured either way). The step size is divided
by the number of active features, so `learning_rate` means the same for any board size.
Written here: stable-baselines3 has no linear-function-approximation agent, and its DQN
(a neural network) costs minutes where this costs about a second.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.agents.base import Agent, discrete_actions, tabular_model
from alignlab.agents.q_learning import EpsilonGreedyTDConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.envs.tabular_vector import TabularVectorEnv

MAX_FEATURES = 1_000_000
"""Most one-hot features (cells x tile codes x actions) the weight table may hold."""


@dataclasses.dataclass(frozen=True)
class LinearQConfig(EpsilonGreedyTDConfig):
    episodes: int = 2000
    """Training episodes, summed over the copies (the optimization-pressure knob)."""
    learning_rate: float = 0.1
    """Step size alpha, divided by the number of active features (one per observation cell)."""
    num_envs: int = 32
    """Environment copies stepped together; each step updates on every copy's transition."""

    @classmethod
    def quick(cls) -> "LinearQConfig":
        return cls(episodes=300)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1 (got {self.num_envs})")


class _OneHot:
    """Active feature indices of observations: one per cell (cell * codes + code - low)."""

    def __init__(self, space: gym.Space):
        if isinstance(space, gym.spaces.Discrete):
            self.shape, self.low, self.codes, self.cells = (), np.zeros((), np.int64), int(space.n), 1
        elif isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.integer) and \
                np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            self.shape = space.shape
            self.low = space.low.astype(np.int64).reshape(-1)
            self.codes = int((space.high.astype(np.int64) - space.low).max()) + 1
            self.cells = int(np.prod(space.shape)) if space.shape else 1
        else:
            raise ConfigError(f"linear-q-learning needs a Discrete or bounded integer Box observation space, "
                              f"got {space}")
        self.size = self.cells * self.codes
        self._offsets = np.arange(self.cells, dtype=np.int64) * self.codes

    def __call__(self, obs: Any) -> np.ndarray:
        """[N, cells] feature indices of a batch of observations."""
        flat = np.asarray(obs, dtype=np.int64).reshape(-1, self.cells)
        return flat - self.low + self._offsets


def _copies(env: gym.Env, n: int) -> gym.vector.VectorEnv:
    """`n` copies of `env` as a vector env with next-step autoreset."""
    model = tabular_model(env)  # through wrappers: a reward technique's shaped model
    if model is not None and model.obs is not None:
        return TabularVectorEnv(model, n, env.observation_space, env.action_space)
    return gym.vector.SyncVectorEnv([(lambda e=copy.deepcopy(env): e) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)


@register("agent", "linear-q-learning-v0")
class LinearQAgent(Agent):
    """Q-learning with a linear Q over one-hot cell features; acts greedily (ties: lowest action).

    After `train`: `weights` (actions x features) and `episode_returns` (the specified return of
    each finished training episode, in the order they finished).
    """

    config_cls = LinearQConfig
    pressure_key = "episodes"
    config: LinearQConfig

    def epsilon(self, finished: int) -> float:
        """The exploration rate after `finished` training episodes."""
        return self.config.epsilon(finished)

    def _q(self, idx: np.ndarray) -> np.ndarray:
        return self.weights[:, idx].sum(-1).T  # [N, A]

    def action_values(self, obs: np.ndarray, t: Any = None) -> np.ndarray:
        self._check_trained()
        return self._q(self._features(np.asarray(obs)))

    def train(self, env: gym.Env, seed: int) -> "LinearQAgent":
        c = self.config
        n_actions = discrete_actions(env)
        self._features = feats = _OneHot(env.observation_space)
        if feats.size * n_actions > MAX_FEATURES:
            raise ConfigError(f"linear-q-learning: {feats.size} features x {n_actions} actions exceed "
                              f"{MAX_FEATURES:,}")
        self.weights = np.zeros((n_actions, feats.size))
        venv = _copies(env, c.num_envs)
        rng = np.random.default_rng(seed)
        rows = np.arange(c.num_envs)
        step = c.learning_rate / feats.cells
        obs, _ = venv.reset(seed=seed)
        idx = feats(obs)
        resetting = np.zeros(c.num_envs, dtype=bool)  # this step only resets (next-step autoreset)
        running = np.zeros(c.num_envs)
        returns: list[float] = []
        while len(returns) < c.episodes:
            q = self._q(idx)
            actions = q.argmax(1)
            explore = rng.random(c.num_envs) < self.epsilon(len(returns))
            actions[explore] = rng.integers(0, n_actions, int(explore.sum()))
            obs, reward, terminated, truncated, _ = venv.step(actions)
            idx2 = feats(obs)
            live = ~resetting
            # Bootstrap at a time-limit truncation (time is not in the observation), not at termination.
            target = reward + c.discount * self._q(idx2).max(1) * ~terminated
            delta = np.where(live, target - q[rows, actions], 0.0)
            # np.add.at, by bincount (several times faster for this many repeated indices)
            flat = (actions[:, None] * feats.size + idx).ravel()
            self.weights += np.bincount(flat, np.repeat(step * delta, feats.cells),
                                        minlength=self.weights.size).reshape(self.weights.shape)
            running += np.where(live, reward, 0.0)
            done = (terminated | truncated) & live
            for i in np.flatnonzero(done):
                returns.append(float(running[i]))
                running[i] = 0.0
            resetting = done
            idx = idx2
        venv.close()
        self.episode_returns = np.array(returns[:c.episodes])
        self.trained = True
        return self

    def q_values(self, obs: Any) -> np.ndarray:
        """Q(obs, .) for one observation."""
        self._check_trained()
        return self._q(self._features(obs))[0]

    def act(self, obs: Any, t: int | None = None) -> int:
        return int(self.q_values(obs).argmax())

    def act_batch(self, obs: np.ndarray, t: Any = None) -> np.ndarray:
        self._check_trained()
        return self._q(self._features(obs)).argmax(1).astype(np.int64)
