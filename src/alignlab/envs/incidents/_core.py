"""Shared machinery of the incident environments: a small finite MDP written once as a
transition function over structured states; `step()` samples it, `tabular()` enumerates it.

Each environment in this package defines its dynamics in one place,
`_transitions(state, action) -> [(prob, next_state, specified, intended), ...]`, so the
Gymnasium environment, its exact tabular model (for the planner) and its native vector
environment (`TabularVectorEnv` over that model) cannot drift apart. Sampling in `step()`
and `reset()` uses the same rule as `TabularVectorEnv` (one uniform draw, successor =
number of cumulative probabilities <= u), so a single environment and a one-copy vector
environment seeded alike produce the same trajectory, stochastic environments included.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Hashable

import gymnasium as gym
import numpy as np

from alignlab.envs.base import HiddenObjectiveEnv, TabularModel
from alignlab.envs.tabular_vector import TabularVectorEnv

State = Hashable
Transition = tuple[float, State, float, float]  # (probability, next state, specified, intended)


class IncidentEnv(HiddenObjectiveEnv):
    """Base of the incident environments (not registered itself).

    Subclasses set `observation_space`, `action_space` and `horizon` in `__init__` (after
    calling this one) and implement `_initial_states`, `_transitions`, `_is_terminal`,
    `_observe` and `_describe`. `stochastic` must be True exactly when some transition has
    more than one outcome (a random initial state alone does not count): then every step
    draws one uniform number, as `TabularVectorEnv` does for such a model.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}
    stochastic: bool = False
    default_horizon: int = 20

    def __init__(self, render_mode: str | None = None, horizon: int | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.render_mode = render_mode
        self.horizon = int(self.default_horizon if horizon is None else horizon)
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 (got {self.horizon})")
        self._state: State | None = None
        self._t = 0
        self._model: TabularModel | None = None
        self._index: dict[State, int] | None = None

    # ---- the dynamics, written by each environment -------------------------------------
    def _initial_states(self) -> list[tuple[float, State]]:
        raise NotImplementedError

    def _transitions(self, state: State, action: int) -> list[Transition]:
        raise NotImplementedError

    def _is_terminal(self, state: State) -> bool:
        return False

    def _observe(self, state: State) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, state: State) -> str:
        return repr(state)

    # ---- Gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._reset_intended()
        initial = self._initial_states()
        if len(initial) == 1:
            self._state = initial[0][1]
        else:
            cum = np.cumsum([p for p, _ in initial])
            i = int(np.searchsorted(cum, self.np_random.random(), side="right"))
            self._state = initial[min(i, len(initial) - 1)][1]
        self._t = 0
        return self._observe(self._state), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
        outcomes = self._transitions(self._state, a)
        k = 0
        if self.stochastic:  # the same draw TabularVectorEnv makes for a stochastic model
            cum = np.cumsum([p for p, *_ in outcomes])
            k = min(int((self.np_random.random() >= cum).sum()), len(outcomes) - 1)
        _, nxt, specified, intended = outcomes[k]
        self._state = nxt
        self._t += 1
        self._record_intended(intended)
        terminated = self._is_terminal(nxt)
        truncated = self._t >= self.horizon and not terminated
        return self._observe(nxt), float(specified), terminated, truncated, {}

    def render(self):
        if self.render_mode == "ansi":
            return "" if self._state is None else self._describe(self._state)
        return None

    # ---- the exact model ---------------------------------------------------------------
    def tabular(self) -> TabularModel:
        """Every state reachable from the initial distribution, breadth-first (initial
        states first, in order), with its successors under every action."""
        if self._model is None:
            self._model, self._index = self._enumerate()
        return self._model

    def states(self) -> list[State]:
        """The structured states of `tabular()`, in index order."""
        self.tabular()
        return list(self._index)

    def state_index(self) -> int:
        """The index in `tabular()` of the current state (for tests and renderers)."""
        self.tabular()
        return self._index[self._state]

    def _enumerate(self) -> tuple[TabularModel, dict[State, int]]:
        initial = self._initial_states()
        index: dict[State, int] = {}
        states: list[State] = []
        queue: deque[State] = deque()

        def intern(s: State) -> int:
            if s not in index:
                index[s] = len(states)
                states.append(s)
                queue.append(s)
            return index[s]

        for _, s in initial:
            intern(s)
        A = int(self.action_space.n)
        rows: list[list[list[Transition]]] = []
        while queue:
            s = queue.popleft()
            if self._is_terminal(s):  # absorbing: a zero-reward self-loop under every action
                rows.append([[(1.0, s, 0.0, 0.0)] for _ in range(A)])
                continue
            row = [self._transitions(s, a) for a in range(A)]
            for outcomes in row:
                for _, nxt, _, _ in outcomes:
                    intern(nxt)
            rows.append(row)
        S = len(states)
        K = max(len(o) for row in rows for o in row)
        next_state = np.zeros((S, A, K), dtype=np.int64)
        prob = np.zeros((S, A, K))
        specified = np.zeros((S, A, K))
        intended = np.zeros((S, A, K))
        for i, row in enumerate(rows):
            for a, outcomes in enumerate(row):
                # Unused slots repeat the last outcome with probability 0 (safe under rounding).
                padded = list(outcomes) + [(0.0, *outcomes[-1][1:])] * (K - len(outcomes))
                for k, (p, nxt, r_s, r_i) in enumerate(padded):
                    next_state[i, a, k] = index[nxt]
                    prob[i, a, k] = p
                    specified[i, a, k] = r_s
                    intended[i, a, k] = r_i
        init = np.zeros(S)
        for p, s in initial:
            init[index[s]] += p
        model = TabularModel(
            next_state=next_state, prob=prob, specified=specified, intended=intended, initial=init,
            terminal=np.array([self._is_terminal(s) for s in states], dtype=bool), horizon=self.horizon,
            obs=np.stack([self._observe(s) for s in states]),
        )
        model.validate()
        return model, index


class IncidentVectorEnv(TabularVectorEnv):
    """Native batched version of an `IncidentEnv`: table lookups over all copies at once.

    `gymnasium.make_vec(..., vectorization_mode="vector_entry_point")` passes the spec's
    `max_episode_steps`; the copies truncate at the smaller of it and the env's horizon,
    as the single environment under its TimeLimit wrapper does.
    """

    env_cls: type[IncidentEnv]

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, render_mode: str | None = None,
                 **kwargs: Any):
        env = self.env_cls(**kwargs)
        model = env.tabular()
        if max_episode_steps is not None and int(max_episode_steps) < model.horizon:
            model = dataclasses.replace(model, horizon=int(max_episode_steps))
        super().__init__(model, num_envs, env.observation_space, env.action_space)
        self.render_mode = None


def box(high: list[int]) -> gym.spaces.Box:
    """A small uint8 vector observation space with per-entry upper bounds."""
    return gym.spaces.Box(low=0, high=np.array(high, dtype=np.uint8), dtype=np.uint8)
