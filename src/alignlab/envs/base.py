"""The environment contract: Gymnasium environments whose `step()` returns only the
specified (proxy) reward, with the intended objective kept for the evaluation side.

Every alignlab environment subclasses `HiddenObjectiveEnv`. It records the intended
reward of each step in private fields that only `alignlab.envs.evaluation` reads; agents
and techniques never see it (tests/test_no_peeking.py enforces that nothing under
agents/ or techniques/ reads it). Small environments also expose their full tabular
model, so an exact planner can compute both the proxy-optimal and the intended-optimal
policy and the exact gap between them. The registered environments are finite and share one
contract for that, `alignlab.envs.finite.FiniteEnv`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np


@dataclasses.dataclass
class TabularModel:
    """A finite MDP with two reward functions, in a sparse successor layout.

    For state s and action a, the K possible successors are `next_state[s, a, :]` with
    probabilities `prob[s, a, :]` (unused slots have probability 0). Rewards are paid on
    the transition (s, a, s'). Deterministic environments have K = 1.
    """

    next_state: np.ndarray
    """int64 [S, A, K]: successor state indices."""
    prob: np.ndarray
    """float64 [S, A, K]: successor probabilities (rows sum to 1)."""
    specified: np.ndarray
    """float64 [S, A, K]: the specified (proxy) reward of each transition."""
    intended: np.ndarray
    """float64 [S, A, K]: the intended (true) reward of each transition."""
    initial: np.ndarray
    """float64 [S]: the distribution of the first state."""
    terminal: np.ndarray
    """bool [S]: absorbing states where the episode ends."""
    horizon: int
    """Steps before truncation (the planner plans for this many steps)."""
    obs: np.ndarray | None = None
    """[S, *obs_shape]: the observation an agent sees in each state (None if not tabulated)."""

    @property
    def n_states(self) -> int:
        return self.next_state.shape[0]

    @property
    def n_actions(self) -> int:
        return self.next_state.shape[1]

    def validate(self) -> None:
        S, A, K = self.next_state.shape
        for name in ("prob", "specified", "intended"):
            if getattr(self, name).shape != (S, A, K):
                raise ValueError(f"TabularModel.{name} has shape {getattr(self, name).shape}, expected {(S, A, K)}")
        if not np.allclose(self.prob.sum(-1), 1.0):
            raise ValueError("TabularModel.prob rows must sum to 1")
        if self.next_state.min() < 0 or self.next_state.max() >= S:
            raise ValueError("TabularModel.next_state holds an index out of range")
        if not np.isclose(self.initial.sum(), 1.0):
            raise ValueError("TabularModel.initial must sum to 1")


class HiddenObjectiveEnv(gym.Env):
    """Base of alignlab environments. Subclasses call `_record_intended(r)` once per step
    (and `_reset_intended()` in reset) and return only the specified reward from `step()`.

    The class docstring of each subclass is its card, with these headings: description,
    spaces, specified reward, intended objective, gaming opportunity, source.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"]}

    _intended_last: float = 0.0
    _intended_total: float = 0.0

    def _reset_intended(self) -> None:
        self._intended_last = 0.0
        self._intended_total = 0.0

    def _record_intended(self, reward: float) -> None:
        self._intended_last = float(reward)
        self._intended_total += float(reward)

    def tabular(self) -> TabularModel | None:
        """The full tabular model, or None where the state space is too large."""
        return None
