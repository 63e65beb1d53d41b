"""Impact penalties on a tabular model, the design space of Krakovna et al. 2019 ("Penalizing side
effects using stepwise relative reachability", arXiv:1806.01186): a deviation measure over auxiliary
value functions, compared between the state the agent reached and a baseline state, subtracted from
the specified reward at every step with weight beta.

- Deviation: relative reachability (the values are the discounted reachabilities of every state;
  only decreases count) or attainable utility (Turner, Hadfield-Menell & Tadepalli 2020, "Conservative
  Agency via Attainable Utility Preservation", arXiv:1902.09725: optimal values of random auxiliary
  rewards; changes either way count).
- Baseline: `stepwise` (stepwise inaction: where the no-op action would have led from the previous
  state; needs a no-op action) or `start` (the initial state distribution).

Only the transition structure is read; the specified reward is shaped, the intended one never seen.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.technique import Technique
from alignlab.envs.base import TabularModel
from alignlab.techniques._shaping import ShapedRewardEnv, model_or_reason


@dataclasses.dataclass(frozen=True)
class ImpactConfig(BaseConfig):
    beta: float = 1.0
    """Weight of the penalty (the deviation is in [0, 1] per step) against the specified reward."""
    baseline: Literal["auto", "stepwise", "start"] = "auto"
    """Baseline state: stepwise inaction (needs a no-op action), the start state, or auto (stepwise where the
    environment has a no-op, else start)."""
    noop_action: int = 4
    """Index of the no-op action for the stepwise baseline (the gridworlds' NOOP is 4 when enabled)."""
    max_states: int = 3000
    """Largest tabular model the penalty is computed on (its tables hold states x states x actions numbers)."""

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0 (got {self.beta})")
        if self.noop_action < 0:
            raise ConfigError(f"noop_action must be >= 0 (got {self.noop_action})")


class ImpactPenalty(Technique):
    """Shared code of the two impact penalties; subclasses give `values(model)` [n_aux, S] and
    `deviation(base_values, reached_values)`."""

    slot = "reward"

    def values(self, model: TabularModel) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def deviation(base: np.ndarray, reached: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _baseline(self, model: TabularModel) -> str:
        b = self.config.baseline
        if b == "auto":
            return "stepwise" if model.n_actions > self.config.noop_action else "start"
        if b == "stepwise" and model.n_actions <= self.config.noop_action:
            raise ConfigError(f"{self.registered_name}: the stepwise baseline needs a no-op action "
                              f"{self.config.noop_action}, the environment has {model.n_actions} actions")
        return b

    def supports(self, target: dict[str, Any]) -> str | None:
        return None  # checked on the environment itself in `apply` (the experiment asks `applicable`)

    def applicable(self, env: Any) -> str | None:
        model, reason = model_or_reason(env)
        if reason:
            return reason
        if model.n_states > self.config.max_states:
            return f"{model.n_states} states exceed max_states={self.config.max_states}"
        if self.config.baseline == "stepwise" and model.n_actions <= self.config.noop_action:
            return "the stepwise baseline needs a no-op action"
        return None

    def penalty(self, model: TabularModel) -> np.ndarray:
        """[S, A, K]: the penalty of each transition, beta * deviation(baseline of s, successor)."""
        values = self.values(model)  # [n_aux, S]
        shape = (values.shape[0],) + model.next_state.shape
        if self._baseline(model) == "start":
            base = np.broadcast_to((values @ model.initial)[:, None, None, None], shape)
        else:
            noop = self.config.noop_action
            succ = values[:, model.next_state[:, noop, :]]  # [n_aux, S, K]
            b = (succ * model.prob[None, :, noop, :]).sum(-1)  # [n_aux, S]: expected value after a no-op
            base = np.broadcast_to(b[:, :, None, None], shape)
        reached = values[:, model.next_state]  # [n_aux, S, A, K]
        # The step that ends the episode is not penalised: nothing is reachable after it by
        # construction, not because of a side effect.
        return self.config.beta * self.deviation(base, reached).mean(axis=0) * ~model.terminal[model.next_state]

    def apply(self, env: Any, **context: Any) -> ShapedRewardEnv:
        model, reason = model_or_reason(env)
        if reason:
            raise ConfigError(f"{self.registered_name} cannot apply: {reason}")
        shaped = model.specified - self.penalty(model) * ~model.terminal[:, None, None]
        return ShapedRewardEnv(env, model, shaped, label=self.registered_name)


def reachability(model: TabularModel, discount: float) -> np.ndarray:
    """[S (target x), S (from s)]: discount ** (fewest steps from s to x), 0 where x is unreachable
    (every successor with positive probability is an edge; terminal states have no way out)."""
    S = model.n_states
    live = (model.prob > 0) & ~model.terminal[:, None, None]
    src = np.broadcast_to(np.arange(S)[:, None, None], model.next_state.shape)[live]
    graph = csr_matrix((np.ones(len(src)), (src, model.next_state[live])), shape=(S, S))
    dist = shortest_path(graph, method="D", directed=True, unweighted=True)  # [from, to]
    with np.errstate(over="ignore"):
        reach = np.where(np.isfinite(dist), discount ** np.where(np.isfinite(dist), dist, 0), 0.0)
    return reach.T.copy()


def attainable_values(model: TabularModel, rewards: np.ndarray, discount: float, iters: int = 2000,
                      tol: float = 1e-9) -> np.ndarray:
    """[n_aux, S]: optimal discounted values of state rewards [n_aux, S] (paid on entering a state;
    terminal states absorb with no further reward), by value iteration."""
    V = np.zeros_like(rewards)
    nxt, prob, term = model.next_state, model.prob, model.terminal
    for _ in range(iters):
        cont = np.where(term[None, :], 0.0, V)  # no value after an absorbing state
        q = ((rewards[:, nxt] + discount * cont[:, nxt]) * prob[None]).sum(-1)  # [n_aux, S, A]
        new = np.where(term[None, :], 0.0, q.max(-1))
        if np.max(np.abs(new - V)) < tol:
            return new
        V = new
    return V
