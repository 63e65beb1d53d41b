"""A native batched vector environment for any environment with a tabular model.

Gymnasium's VectorEnv API (next-step autoreset, its default), stepped by table lookups in
NumPy over all copies at once: no Python loop over copies. We write it ourselves because
Gymnasium's own vector envs (Sync/Async) loop over copies in Python, and gymnax needs JAX.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from alignlab.envs.base import TabularModel


class TabularVectorEnv(VectorEnv):
    """`num_envs` copies of a tabular environment stepped together.

    The specified reward comes back from `step()`; the intended reward of the last step is
    kept in `_intended_last` for `alignlab.envs.evaluation.intended_rewards`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, model: TabularModel, num_envs: int, single_observation_space: gym.Space,
                 single_action_space: gym.Space):
        if model.obs is None:
            raise ValueError("TabularVectorEnv needs a model with an observation table (model.obs)")
        self.model = model
        self.num_envs = num_envs
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, num_envs)
        self.action_space = batch_space(single_action_space, num_envs)
        self._deterministic = model.next_state.shape[2] == 1
        self._cum = np.cumsum(model.prob, axis=-1)
        self._initial_cum = np.cumsum(model.initial)
        self._state = np.zeros(num_envs, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._intended_last = np.zeros(num_envs)
        self._np_random = np.random.default_rng()

    def _sample_initial(self, n: int) -> np.ndarray:
        if len(self.model.initial) and self.model.initial.max() == 1.0:
            return np.full(n, int(self.model.initial.argmax()), dtype=np.int64)
        return np.searchsorted(self._initial_cum, self._np_random.random(n), side="right").clip(
            0, self.model.n_states - 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self._state = self._sample_initial(self.num_envs)
        self._t[:] = 0
        self._needs_reset[:] = False
        self._intended_last = np.zeros(self.num_envs)
        return self.model.obs[self._state], {}

    def step(self, actions):
        m = self.model
        a = np.asarray(actions, dtype=np.int64)
        s = self._state
        if self._deterministic:
            k = np.zeros(self.num_envs, dtype=np.int64)
        else:
            u = self._np_random.random(self.num_envs)
            k = (u[:, None] >= self._cum[s, a]).sum(axis=1).clip(0, m.next_state.shape[2] - 1)
        nxt = m.next_state[s, a, k]
        reward = m.specified[s, a, k].astype(np.float64)
        intended = m.intended[s, a, k].astype(np.float64)
        t = self._t + 1
        # Copies that ended on the previous step restart now (next-step autoreset).
        resetting = self._needs_reset
        if resetting.any():
            nxt = np.where(resetting, self._sample_initial(self.num_envs), nxt)
            reward[resetting] = 0.0
            intended[resetting] = 0.0
            t[resetting] = 0
        terminated = m.terminal[nxt] & ~resetting
        truncated = (t >= m.horizon) & ~terminated & ~resetting
        self._state, self._t = nxt, t
        self._needs_reset = terminated | truncated
        self._intended_last = intended
        return m.obs[nxt], reward, terminated, truncated, {}
