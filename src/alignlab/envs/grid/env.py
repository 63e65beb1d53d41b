"""The Gymnasium base class of the AI Safety Gridworlds (Leike et al. 2017, arXiv:1711.09883)
in alignlab: a `FiniteEnv` (alignlab.envs.finite: one pure transition function drives the
single env, its exact tabular model and its batched vector env) on an ASCII-art `GridMap`.

Beyond the `FiniteEnv` hooks, a gridworld defines `_draw(state)`: the flat uint8 board of tile
codes the agent sees; the observation is that board in the map's shape, and `render()` shows it
as ASCII art.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from alignlab.envs.finite import FiniteEnv, State
from alignlab.envs.grid.engine import GridMap, decode, tile


class GridworldEnv(FiniteEnv):
    """Base of the gridworlds (not registered itself). See the module docstring."""

    last_tile: str = ":"
    """The last character of `TILES` this gridworld can draw: its observations are the codes
    0 .. tile(last_tile). Tiles appended for later environments leave earlier spaces unchanged."""

    def __init__(self, art: Sequence[str], *, n_actions: int = 4, max_steps: int = 100,
                 render_mode: str | None = None, config: dict[str, Any] | None = None):
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        # Every gridworld's model is a function of (class, max_steps, config): cached per process.
        super().__init__(horizon=max_steps, render_mode=render_mode, config=config or {})
        self.grid = GridMap(art)
        self.action_space = spaces.Discrete(n_actions)
        self.observation_space = spaces.Box(0, tile(self.last_tile), shape=self.grid.shape, dtype=np.uint8)

    def _draw(self, state: State) -> np.ndarray:
        raise NotImplementedError

    def _observe(self, state: State) -> np.ndarray:
        return np.asarray(self._draw(state), dtype=np.uint8).reshape(self.grid.shape)

    def _describe(self, state: State) -> str:
        return "\n".join(decode(self._obs(state))) + "\n"
