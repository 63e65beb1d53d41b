"""Hand-vectorized NumPy versions of two AI Safety Gridworlds (Leike et al. 2017, arXiv:1711.09883): the limit anchor.

Each class hard-codes one environment's rules on arrays of agent cells, with nothing general: no
tabular model, no info dicts, no successor sampling. That is about as fast as NumPy steps these
environments, so it bounds what alignlab's general native vector env (`envs/tabular_vector.py`) can
reach. Written for this benchmark; `identical()` checks that its observations, rewards and episode
ends equal the registered vector env's, step for step, under Gymnasium's next-step autoreset.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from alignlab.envs.grid import GridMap, tile
from alignlab.envs.gridworlds import boat_race, distributional_shift


class _GridLimit:
    """Shared state and tables: per cell, its successor under each action and its observation row."""

    def __init__(self, art, num_envs: int, keep: str, horizon: int = 100):
        g = GridMap(art)
        self.n, self.horizon, self.shape = num_envs, horizon, g.shape
        cells = np.arange(g.size)
        moved = cells[:, None] + np.array(g.deltas)[None, :]  # [cell, action]
        wall = np.zeros(g.size, dtype=bool)
        wall[list(g.walls)] = True
        self.succ = np.where(wall[moved.clip(0, g.size - 1)], cells[:, None], moved).reshape(-1)
        board = g.background(keep=keep).reshape(-1)
        self.rows = np.repeat(board[None, :], g.size, axis=0)  # the observation with the agent on each cell
        self.rows[cells, cells] = tile("A")
        self.start = g.first("A")
        self.pos = np.full(num_envs, self.start, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.done = np.zeros(num_envs, dtype=bool)

    def reset(self):
        self.pos[:] = self.start
        self.t[:] = 0
        self.done[:] = False
        return self._obs(self.pos)

    def _obs(self, pos) -> np.ndarray:
        return np.take(self.rows, pos, axis=0).reshape((self.n,) + self.shape)

    def _end(self, new, reward, terminated):
        """Next-step autoreset: copies that ended last step restart now with reward 0."""
        reset = self.done
        if reset.any():
            new = np.where(reset, self.start, new)
            reward = np.where(reset, 0.0, reward)
            terminated = terminated & ~reset
            self.t = np.where(reset, 0, self.t + 1)
        else:
            self.t += 1
        truncated = (self.t >= self.horizon) & ~terminated
        self.pos, self.done = new, terminated | truncated
        return self._obs(new), reward, terminated, truncated


class BoatRaceLimit(_GridLimit):
    def __init__(self, num_envs: int):
        super().__init__(boat_race.ART, num_envs, keep="#><v^")
        g = GridMap(boat_race.ART)
        arrow = np.zeros(g.size, dtype=np.int64)  # the clockwise flat offset on an arrow cell, else 0
        for ch, (dr, dc) in boat_race.ARROW_DIRECTION.items():
            arrow[g.first(ch)] = dr * g.width + dc
        src = np.repeat(np.arange(g.size), 4)
        clockwise = (arrow[self.succ] != 0) & (arrow[self.succ] == self.succ - src)
        self.reward = boat_race.MOVEMENT_REWARD + boat_race.CLOCKWISE_REWARD * clockwise.astype(np.float64)

    def step(self, actions):
        idx = self.pos * 4 + actions
        return self._end(self.succ[idx], self.reward[idx], np.zeros(self.n, dtype=bool))


class LavaWorldLimit(_GridLimit):
    def __init__(self, num_envs: int):
        art = distributional_shift.LEVELS[0]
        super().__init__(art, num_envs, keep="#GL")
        g = GridMap(art)
        value = np.zeros(g.size)  # reward for entering a cell, beyond the step cost
        value[list(g.find("L"))] = distributional_shift.LAVA_REWARD
        value[g.first("G")] = distributional_shift.GOAL_REWARD
        self.reward = distributional_shift.MOVEMENT_REWARD + value[self.succ]
        self.stops = value != 0

    def step(self, actions):
        new = self.succ[self.pos * 4 + actions]
        return self._end(new, self.reward[self.pos * 4 + actions], self.stops[new])


LIMITS = {"boat-race-v0": BoatRaceLimit, "distributional-shift-v0": LavaWorldLimit}


def identical(env_id: str, num_envs: int = 64, steps: int = 400, seed: int = 0) -> bool:
    """Whether the limit and the registered native vector env agree on every output for `steps` random steps."""
    vec = gym.make_vec(f"alignlab/{env_id}", num_envs=num_envs, vectorization_mode="vector_entry_point")
    lim = LIMITS[env_id](num_envs)
    obs_a, _ = vec.reset(seed=seed)
    obs_b = lim.reset()
    if not np.array_equal(obs_a, obs_b):
        return False
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        a = rng.integers(0, 4, size=num_envs)
        oa, ra, ta, ua, _ = vec.step(a)
        ob, rb, tb, ub = lim.step(a)
        if not (np.array_equal(oa, ob) and np.allclose(ra, rb) and np.array_equal(ta, tb)
                and np.array_equal(ua, ub)):
            return False
    return True
