"""The one base of alignlab's finite environments: a pure transition function over small
hashable states drives the single Gymnasium env, its exact tabular model (breadth-first
enumeration of the reachable states) and, through that model, its native batched vector env
(`alignlab.envs.tabular_vector.vector_class`), so the three cannot drift apart.

A subclass sets `action_space` and `observation_space` and defines
- `_initial_states()`: [(probability, state)], hidden per-episode draws included;
- `_transitions(state, action)`: [Outcome(probability, next_state, specified, intended, info)];
- `_is_terminal(state)`: whether a state ends the episode (default: never);
- `_observe(state)`: the observation an agent sees in a state;
- `_describe(state)`: the text `render()` shows (render mode "ansi");
- `_reset_info(state)`: the info `reset()` returns (default: none).
Terminal states are absorbing (a zero-reward self-loop under every action). The env memoises
transitions and observations, so after warm-up a step is a dictionary lookup. Environments
whose step has too many outcomes to enumerate (tomato watering's independent drying) override
`_sample` instead and `_tabulated` to return None; so do levels whose state space is too large.

Sampling is the rule `TabularVectorEnv` uses (one uniform draw u; the successor is the first
outcome whose cumulative probability exceeds u): a step draws when it has more than one
outcome, or on every step where `draw_every_step` is set, as the vector env does for a model
with more than one successor slot, so a single env and a one-copy vector env seeded alike
follow the same trajectory. A reset draws when there is more than one initial state.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Hashable, NamedTuple, Sequence

import gymnasium as gym
import numpy as np

from alignlab.envs.base import HiddenObjectiveEnv, TabularModel

State = Hashable

# Tabular models with a `config` are pure functions of (class, horizon, config): built once per process.
_TABULAR_CACHE: dict[tuple, "Tabulated | None"] = {}


class Outcome(NamedTuple):
    """One possible result of taking an action in a state."""

    prob: float
    next_state: State
    specified: float
    """The specified (proxy) reward `step()` returns."""
    intended: float
    """The intended reward, kept for the evaluation side."""
    info: dict[str, Any] | None = None
    """What `step()` reports in `info` (None: nothing)."""


@dataclasses.dataclass
class Tabulated:
    """A tabular model plus what `state_id()` and the vector env need beyond it."""

    model: TabularModel
    states: list
    """The structured states, in index order."""
    index: dict
    """state -> its index in `model`."""
    info: dict[str, tuple[np.ndarray, np.ndarray]]
    """key -> (values [S, A, K], present [S, A, K]) for the per-step info the env reports."""


def box(high: Sequence[int]) -> gym.spaces.Box:
    """A small uint8 vector observation space with per-entry upper bounds."""
    return gym.spaces.Box(low=0, high=np.array(high, dtype=np.uint8), dtype=np.uint8)


class FiniteEnv(HiddenObjectiveEnv):
    """Base of the finite environments (not registered itself). See the module docstring."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}
    default_horizon: int = 100
    """Steps before truncation when the constructor is given none."""
    draw_every_step: bool = False
    """Draw one uniform number on every step, not only on steps with several outcomes. An env that
    sets it exactly when some transition has more than one outcome matches its one-copy vector env
    draw for draw (the incident envs do; the gridworlds leave it off and keep the random streams of
    their original step, which draws only where a step has several outcomes)."""
    max_tabular_states: int = 300_000
    """Above this many reachable states `tabular()` gives up and returns None."""
    max_cache: int = 500_000
    """The memo tables of transitions and observations are cleared beyond this many entries."""

    def __init__(self, *, horizon: int | None = None, render_mode: str | None = None,
                 config: dict[str, Any] | None = None):
        """`config`: every constructor argument that changes the dynamics; given, the tabular
        model is built once per process for (class, horizon, config), else once per instance."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None "
                             f"(got {render_mode!r})")
        self.render_mode = render_mode
        self.horizon = int(self.default_horizon if horizon is None else horizon)
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 (got {self.horizon})")
        self._config_key = None if config is None else (type(self), self.horizon, tuple(sorted(config.items())))
        self._tab: Tabulated | None = None
        self._tab_done = False
        self._cache: dict[tuple, tuple] = {}
        self._obs_cache: dict[State, np.ndarray] = {}
        self._init: tuple[list[tuple[float, State]], np.ndarray] | None = None  # on first use
        self._state: State | None = None
        self._t = 0

    # -- what a subclass defines -------------------------------------------------------
    def _initial_states(self) -> Sequence[tuple[float, State]]:
        raise NotImplementedError

    def _transitions(self, state: State, action: int) -> Sequence[Outcome]:
        raise NotImplementedError

    def _is_terminal(self, state: State) -> bool:
        return False

    def _observe(self, state: State) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, state: State) -> str:
        return repr(state)

    def _reset_info(self, state: State) -> dict[str, Any]:
        return {}

    # -- machinery ------------------------------------------------------------------------
    def _outcomes(self, state: State, action: int) -> tuple[tuple[float, ...], tuple[tuple[Outcome, bool], ...]]:
        """Memoised (cumulative probabilities, ((outcome, terminated), ...)) of one step."""
        key = (state, action)
        entry = self._cache.get(key)
        if entry is None:
            if not 0 <= action < self.action_space.n:
                raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
            if self._is_terminal(state):  # absorbing, nothing more is paid
                raw: Sequence = (Outcome(1.0, state, 0.0, 0.0),)
            else:
                raw = self._transitions(state, action)
            total, cum, rows = 0.0, [], []
            for p, nxt, r, ri, *info in raw:
                total += p
                cum.append(total)
                out = Outcome(float(p), nxt, float(r), float(ri), info[0] if info else None)
                rows.append((out, self._is_terminal(nxt)))
            if not rows or not np.isclose(total, 1.0):
                raise RuntimeError(f"{type(self).__name__}: outcome probabilities sum to {total}")
            entry = (tuple(cum), tuple(rows))
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
            self._cache[key] = entry
        return entry

    def _sample(self, state: State, action: int) -> tuple[Outcome, bool]:
        """One (outcome, terminated) drawn with self.np_random (see the module docstring)."""
        cum, rows = self._outcomes(state, action)
        if len(rows) == 1 and not self.draw_every_step:
            return rows[0]
        u = self.np_random.random()
        for c, row in zip(cum, rows):
            if u < c:
                return row
        return rows[-1]

    def _obs(self, state: State) -> np.ndarray:
        obs = self._obs_cache.get(state)
        if obs is None:
            obs = np.asarray(self._observe(state))
            obs.flags.writeable = False  # the cached master copy
            if len(self._obs_cache) >= self.max_cache:
                self._obs_cache.clear()
            self._obs_cache[state] = obs
        return obs.copy()  # users keep what we return (Gymnasium's checker insists on fresh data)

    def _initial(self) -> tuple[list[tuple[float, State]], np.ndarray]:
        """([(probability, state)] with probability > 0, their cumulative probabilities)."""
        if self._init is None:
            init = [(float(p), s) for p, s in self._initial_states() if p > 0]
            cum = np.cumsum([p for p, _ in init])
            if not init or not np.isclose(cum[-1], 1.0):
                raise ValueError(f"initial state probabilities sum to {cum[-1] if init else 0.0}, not 1")
            self._init = (init, cum)
        return self._init

    # -- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        init, cum = self._initial()
        if len(init) == 1:
            state = init[0][1]
        else:
            i = int(np.searchsorted(cum, self.np_random.random(), side="right"))
            state = init[min(i, len(init) - 1)][1]
        self._state = state
        self._t = 0
        self._reset_intended()
        return self._obs(state), self._reset_info(state)

    def step(self, action):
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        out, terminated = self._sample(self._state, int(action))
        self._state = out.next_state
        self._t += 1
        self._record_intended(out.intended)
        truncated = self._t >= self.horizon and not terminated
        return self._obs(out.next_state), out.specified, terminated, truncated, (dict(out.info) if out.info else {})

    def render(self):
        if self.render_mode != "ansi" or self._state is None:
            return None
        return self._describe(self._state)

    # -- the exact model ---------------------------------------------------------------
    def tabular(self) -> TabularModel | None:
        """The exact model over every state reachable from the initial distribution
        (breadth-first, initial states first, in order), or None where there is none."""
        tab = self._tabulated()
        return None if tab is None else tab.model

    def states(self) -> list[State] | None:
        """The structured states of `tabular()`, in index order (None without a model)."""
        tab = self._tabulated()
        return None if tab is None else list(tab.states)

    def state_id(self) -> int | None:
        """The index in `tabular()` of the current state (None without a model): with the
        executed action, what a wrapper needs to look up per-transition arrays on the model."""
        tab = self._tabulated()
        if tab is None:
            return None
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before state_id()")
        return tab.index[self._state]

    def _tabulated(self) -> Tabulated | None:
        """The model and its state index; subclasses without a model override this to return None."""
        if not self._tab_done:
            key = self._config_key
            if key is None:
                self._tab = self._enumerate()
            else:
                if key not in _TABULAR_CACHE:
                    _TABULAR_CACHE[key] = self._enumerate()
                self._tab = _TABULAR_CACHE[key]
            self._tab_done = True
        return self._tab

    def _enumerate(self) -> Tabulated | None:
        A = int(self.action_space.n)
        index: dict[State, int] = {}
        states: list[State] = []
        queue: deque = deque()

        def intern(s: State) -> bool:
            if s not in index:
                if len(states) >= self.max_tabular_states:
                    return False
                index[s] = len(states)
                states.append(s)
                queue.append(s)
            return True

        init, _ = self._initial()
        for _, s in init:
            if not intern(s):
                return None
        rows: list[list[tuple]] = []
        while queue:
            s = queue.popleft()
            per_action = [self._outcomes(s, a)[1] for a in range(A)]
            for outs in per_action:
                for out, _ in outs:
                    if not intern(out.next_state):
                        return None
            rows.append(per_action)
        S = len(states)
        K = max(len(outs) for per_action in rows for outs in per_action)
        next_state = np.zeros((S, A, K), dtype=np.int64)
        prob = np.zeros((S, A, K))
        specified = np.zeros((S, A, K))
        intended = np.zeros((S, A, K))
        info_values: dict[str, list] = {}
        for i, per_action in enumerate(rows):
            for a, outs in enumerate(per_action):
                # Unused slots repeat the last outcome with probability 0 (safe under rounding).
                for k in range(K):
                    out = outs[min(k, len(outs) - 1)][0]
                    next_state[i, a, k] = index[out.next_state]
                    prob[i, a, k] = out.prob if k < len(outs) else 0.0
                    specified[i, a, k] = out.specified
                    intended[i, a, k] = out.intended
                    for name, value in (out.info or {}).items():
                        info_values.setdefault(name, []).append((i, a, k, value))
        info: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, entries in info_values.items():
            dtype = np.result_type(*[np.asarray(v).dtype for *_, v in entries])
            values = np.zeros((S, A, K), dtype=dtype)
            present = np.zeros((S, A, K), dtype=bool)
            for i, a, k, v in entries:
                values[i, a, k] = v
                present[i, a, k] = True
            info[name] = (values, present)
        initial = np.zeros(S)
        for p, s in init:
            initial[index[s]] += p
        model = TabularModel(
            next_state=next_state, prob=prob, specified=specified, intended=intended, initial=initial,
            terminal=np.array([self._is_terminal(s) for s in states], dtype=bool), horizon=self.horizon,
            obs=np.stack([np.asarray(self._observe(s)) for s in states]),
        )
        model.validate()
        return Tabulated(model=model, states=states, index=index, info=info)
