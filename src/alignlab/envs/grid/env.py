"""The Gymnasium base class of the AI Safety Gridworlds (Leike et al. 2017, arXiv:1711.09883)
in alignlab: one pure transition function per environment drives the single env, its exact
tabular model (breadth-first enumeration of the reachable states) and, through that model,
its batched vector env.

A subclass defines
- `_initial_states()`: [(probability, state)], hidden per-episode draws included;
- `_transitions(state, action)`: [(probability, next_state, specified, intended, info)];
- `_terminal(state)`: whether a state ends the episode;
- `_draw(state)`: the flat uint8 board of tile codes the agent sees.
States are small hashable tuples. The single env memoises transitions and boards, so after
warm-up a step is a dictionary lookup; environments whose step has too many outcomes to
enumerate (tomato watering's independent drying) override `_sample` instead.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Hashable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from alignlab.envs.base import HiddenObjectiveEnv, TabularModel
from alignlab.envs.grid.engine import TILES, GridMap, decode

State = Hashable
Outcome = tuple  # (probability, next_state, specified, intended, info-dict-or-None)

# Tabular models are pure functions of (class, config): built once per process.
_TABULAR_CACHE: dict[tuple, "Tabulated | None"] = {}


@dataclasses.dataclass
class Tabulated:
    """A tabular model plus what the vector env needs beyond it."""

    model: TabularModel
    states: list
    index: dict
    info: dict[str, tuple[np.ndarray, np.ndarray]]
    """key -> (values [S, A, K], present [S, A, K]) for the per-step info the env reports."""


class GridworldEnv(HiddenObjectiveEnv):
    """Base of the gridworlds (not registered itself). See the module docstring."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}
    max_tabular_states: int = 300_000
    """Above this many reachable states `tabular()` gives up and returns None."""
    max_cache: int = 500_000
    """The memo tables of transitions and boards are cleared beyond this many entries."""

    def __init__(self, art: Sequence[str], *, n_actions: int = 4, max_steps: int = 100,
                 render_mode: str | None = None, config: dict[str, Any] | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.grid = GridMap(art)
        self.horizon = int(max_steps)
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(n_actions)
        self.observation_space = spaces.Box(0, len(TILES) - 1, shape=self.grid.shape, dtype=np.uint8)
        self._config_key = (type(self), self.horizon, tuple(sorted((config or {}).items())))
        self._cache: dict[tuple, tuple] = {}
        self._obs_cache: dict[State, np.ndarray] = {}
        self._init: list[tuple[float, State]] | None = None  # filled on first use (subclass set-up first)
        self._state: State | None = None
        self._t = 0

    # -- what a subclass defines -------------------------------------------------------
    def _initial_states(self) -> list[tuple[float, State]]:
        raise NotImplementedError

    def _transitions(self, state: State, action: int) -> Sequence[Outcome]:
        raise NotImplementedError

    def _terminal(self, state: State) -> bool:
        return False

    def _draw(self, state: State) -> np.ndarray:
        raise NotImplementedError

    def _reset_info(self, state: State) -> dict[str, Any]:
        return {}

    # -- machinery ------------------------------------------------------------------------
    def _outcomes(self, state: State, action: int) -> tuple:
        """Memoised [(cumulative probability, next, specified, intended, terminated, info)]."""
        key = (state, action)
        outs = self._cache.get(key)
        if outs is None:
            if not 0 <= action < self.action_space.n:
                raise ValueError(f"action {action} is not in {self.action_space}")
            if self._terminal(state):  # absorbing, nothing more is paid
                raw: Sequence[Outcome] = [(1.0, state, 0.0, 0.0, None)]
            else:
                raw = self._transitions(state, action)
            cum, rows = 0.0, []
            for p, nxt, r, ri, info in raw:
                cum += p
                rows.append((cum, nxt, float(r), float(ri), self._terminal(nxt), info))
            if not np.isclose(cum, 1.0):
                raise RuntimeError(f"{type(self).__name__}: outcome probabilities sum to {cum}")
            outs = tuple(rows)
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[key] = outs
        return outs

    def _sample(self, state: State, action: int) -> tuple:
        """One (next, specified, intended, terminated, info) drawn with self.np_random."""
        outs = self._outcomes(state, action)
        if len(outs) == 1:
            return outs[0][1:]
        u = self.np_random.random() * outs[-1][0]
        for row in outs:
            if u < row[0]:
                return row[1:]
        return outs[-1][1:]

    def _board_of(self, state: State) -> np.ndarray:
        return np.asarray(self._draw(state), dtype=np.uint8).reshape(self.grid.shape)

    def _obs(self, state: State) -> np.ndarray:
        obs = self._obs_cache.get(state)
        if obs is None:
            obs = np.asarray(self._draw(state), dtype=np.uint8).reshape(self.grid.shape)
            obs.flags.writeable = False  # the cached master copy
            if len(self._obs_cache) >= self.max_cache:
                self._obs_cache.clear()
            self._obs_cache[state] = obs
        return obs.copy()  # users keep what we return (Gymnasium's checker insists on fresh data)

    def _initial(self) -> list[tuple[float, State]]:
        if self._init is None:
            init = [(float(p), s) for p, s in self._initial_states() if p > 0]
            total = sum(p for p, _ in init)
            if not np.isclose(total, 1.0):
                raise ValueError(f"initial state probabilities sum to {total}, not 1")
            self._init = init
            self._init_p = np.array([p for p, _ in init]) / total
        return self._init

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        init = self._initial()
        if len(init) == 1:
            state = init[0][1]
        else:
            state = init[int(self.np_random.choice(len(init), p=self._init_p))][1]
        self._state = state
        self._t = 0
        self._reset_intended()
        return self._obs(state), self._reset_info(state)

    def step(self, action):
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        nxt, reward, intended, terminated, info = self._sample(self._state, int(action))
        self._state = nxt
        self._t += 1
        self._record_intended(intended)
        truncated = self._t >= self.horizon and not terminated
        return self._obs(nxt), reward, terminated, truncated, (dict(info) if info else {})

    def render(self):
        if self._state is None:
            return None
        return "\n".join(decode(self._obs(self._state))) + "\n"

    # -- the exact model ---------------------------------------------------------------
    def _tabulated(self) -> Tabulated | None:
        key = self._config_key
        if key not in _TABULAR_CACHE:
            _TABULAR_CACHE[key] = self._enumerate()
        return _TABULAR_CACHE[key]

    def tabular(self) -> TabularModel | None:
        """The exact model over every state reachable from the initial distribution, or None
        where there are more than `max_tabular_states` of them."""
        tab = self._tabulated()
        return None if tab is None else tab.model

    def _enumerate(self) -> Tabulated | None:
        n_actions = int(self.action_space.n)
        index: dict[State, int] = {}
        states: list[State] = []
        queue: deque = deque()
        for _, s in self._initial():
            if s not in index:
                index[s] = len(states)
                states.append(s)
                queue.append(s)
        rows: list[list[tuple]] = []
        while queue:
            s = queue.popleft()
            per_action = []
            for a in range(n_actions):
                outs = self._outcomes(s, a)
                per_action.append(outs)
                for row in outs:
                    nxt = row[1]
                    if nxt not in index:
                        if len(states) >= self.max_tabular_states:
                            return None
                        index[nxt] = len(states)
                        states.append(nxt)
                        queue.append(nxt)
            rows.append(per_action)
        S, A = len(states), n_actions
        K = max(len(outs) for per_action in rows for outs in per_action)
        next_state = np.repeat(np.arange(S, dtype=np.int64)[:, None, None], A, 1).repeat(K, 2)
        prob = np.zeros((S, A, K))
        specified = np.zeros((S, A, K))
        intended = np.zeros((S, A, K))
        info_values: dict[str, list] = {}
        for si, per_action in enumerate(rows):
            for a, outs in enumerate(per_action):
                prev = 0.0
                for k, (cum, nxt, r, ri, _term, info) in enumerate(outs):
                    next_state[si, a, k] = index[nxt]
                    prob[si, a, k] = cum - prev
                    prev = cum
                    specified[si, a, k] = r
                    intended[si, a, k] = ri
                    for name, value in (info or {}).items():
                        info_values.setdefault(name, []).append((si, a, k, value))
        prob /= prob.sum(-1, keepdims=True)
        info: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, entries in info_values.items():
            dtype = np.result_type(*[np.asarray(v).dtype for *_, v in entries])
            values = np.zeros((S, A, K), dtype=dtype)
            present = np.zeros((S, A, K), dtype=bool)
            for si, a, k, v in entries:
                values[si, a, k] = v
                present[si, a, k] = True
            info[name] = (values, present)
        initial = np.zeros(S)
        for p, s in self._initial():
            initial[index[s]] += p
        model = TabularModel(
            next_state=next_state, prob=prob, specified=specified, intended=intended,
            initial=initial, terminal=np.array([self._terminal(s) for s in states], dtype=bool),
            horizon=self.horizon, obs=np.stack([self._board_of(s) for s in states]),
        )
        model.validate()
        return Tabulated(model=model, states=states, index=index, info=info)
