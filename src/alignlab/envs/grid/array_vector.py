"""Base of the hand-written NumPy vector envs for grid levels without a tabular model (Gymnasium VectorEnv).

Rocks-and-diamonds level 0 and side-effects-sokoban levels 1 and 3 are too large to tabulate, so their
native vector envs step arrays of object cells directly. This base holds what they share: the batched
spaces, the board and wall arrays, per-copy step counters, and Gymnasium's next-step autoreset. A
subclass sets its own state arrays, `_restart(which)` and `_obs()`, and ends `step` with `_finish`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class ArrayGridVectorEnv(VectorEnv):
    """`num_envs` copies of one grid level stepped together on arrays, with next-step autoreset."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def _setup(self, env: Any, num_envs: int, horizon: int, render_mode: str | None) -> None:
        """Spaces, board and walls of the single env `env`; step counters for `num_envs` copies."""
        g = env.grid
        self.num_envs, self.render_mode, self.horizon = num_envs, render_mode, horizon
        self.single_observation_space, self.single_action_space = env.observation_space, env.action_space
        self.observation_space = batch_space(env.observation_space, num_envs)
        self.action_space = batch_space(env.action_space, num_envs)
        self._shape, self._size = g.shape, g.size
        self._wall = np.zeros(g.size, dtype=bool)
        self._wall[list(g.walls)] = True
        self._board, self._codes = env._board, env._codes
        self._arange = np.arange(num_envs)
        self._np_random = np.random.default_rng()
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._intended_last = np.zeros(num_envs)

    def _restart(self, which: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _obs(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        self._restart(np.ones(self.num_envs, dtype=bool))
        self._needs_reset[:] = False
        self._intended_last = np.zeros(self.num_envs)
        return self._obs(), {}

    def _finish(self, reward: np.ndarray, intended: np.ndarray, terminated: np.ndarray):
        """The end of every step: count it, restart the copies that ended last step (their step
        is the reset: reward 0, not terminated), truncate at the horizon."""
        self._t += 1
        resetting = self._needs_reset
        if resetting.any():  # next-step autoreset
            self._restart(resetting)
            reward[resetting] = 0.0
            intended[resetting] = 0.0
            terminated = terminated & ~resetting
        truncated = (self._t >= self.horizon) & ~terminated & ~resetting
        self._needs_reset = terminated | truncated
        self._intended_last = intended
        return self._obs(), reward, terminated, truncated, {}
