"""A quantilizer: instead of the action that maximises the specified value, a random action from the
top q of a base distribution ranked by it (Taylor 2016, "Quantilizers: A Safer Alternative to Maximizers
for Limited Optimization", AAAI Workshop on AI, Ethics, and Society).

Here the base distribution is uniform over actions at each step and the ranking is the trained
optimizer's own action values (Q-learning's table, value iteration's exact whole-episode Q). q = 1 is
the base (random) policy; q -> 0 is the maximiser. Its promise: the expected intended loss is at most
1/q times the base policy's, whatever the proxy rewards; its cost: specified reward given up.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from alignlab.agents.base import Agent
from alignlab.core import registry
from alignlab.core.config import BaseConfig
from alignlab.core.errors import ConfigError
from alignlab.core.registry import register
from alignlab.core.technique import Technique
from alignlab.envs.base import TabularModel
from alignlab.envs.planning import reachable


@dataclasses.dataclass(frozen=True)
class QuantilizerConfig(BaseConfig):
    q: float = 0.3
    """Fraction of the base (uniform) action distribution kept, from the top by the optimizer's action values; 1 is
    random, near 0 the maximiser."""

    def __post_init__(self) -> None:
        if not 0.0 < self.q <= 1.0:
            raise ConfigError(f"quantilizer: q must be in (0, 1] (got {self.q})")


def quantile_weights(values: np.ndarray, q: float) -> np.ndarray:
    """[N, A] action probabilities: the uniform base restricted to its top-q mass by `values` [N, A],
    renormalised; the boundary action gets its fractional share and tied actions share equally."""
    n, A = values.shape
    order = np.argsort(-values, axis=1, kind="stable")
    rank_w = np.clip(q * A - np.arange(A), 0.0, 1.0) / (q * A)  # weight of the j-th best action
    w = np.zeros((n, A))
    np.put_along_axis(w, order, np.broadcast_to(rank_w, (n, A)), axis=1)
    # Tied actions (equal up to rounding) share their total weight, so the tie order does not matter.
    tied = np.isclose(values[:, :, None], values[:, None, :], rtol=0.0, atol=1e-9)  # [N, A, A]
    out = (tied * w[:, None, :]).sum(-1) / tied.sum(-1)
    return out


class QuantilizedAgent(Agent):
    """`base` trained as usual; acts by sampling from `quantile_weights` of its action values."""

    recurrent = False

    def __init__(self, base: Agent, q: float):
        self.base, self.q = base, q
        self.config = base.config
        self.trained = False

    def train(self, env: Any, seed: int) -> "QuantilizedAgent":
        self.base.train(env, seed)
        self._rng = np.random.default_rng(seed)
        self.trained = True
        return self

    def weights(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        return quantile_weights(np.asarray(self.base.action_values(obs, t), dtype=np.float64), self.q)

    def act(self, obs: Any, t: int | None = None) -> int:
        self._check_trained()
        w = self.weights(np.asarray([obs]), np.asarray([0 if t is None else t]))[0]
        return int(self._rng.choice(len(w), p=w))

    def act_batch(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        self._check_trained()
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (len(obs),))
        w = self.weights(obs, np.maximum(t, 0))
        u = self._rng.random(len(obs))[:, None]
        return (w.cumsum(1) < u).sum(1).clip(0, w.shape[1] - 1).astype(np.int64)

    def tabular_policy(self, model: TabularModel) -> np.ndarray:
        """The exact stochastic policy: [H, S, A] (time-dependent values) or [S, A]."""
        self._check_trained()
        if model.obs is None:
            raise ValueError("tabular_policy needs a model with an observation table (model.obs)")
        S, H, A = model.n_states, model.horizon, model.n_actions
        live = np.flatnonzero(reachable(model) & ~model.terminal)  # the states an episode can act in
        obs = model.obs[live]

        def at(t: int) -> np.ndarray:
            w = np.full((S, A), 1.0 / A)
            w[live] = self.weights(obs, np.full(len(live), t, dtype=np.int64))
            return w

        w0, w1 = at(0), at(1)
        if np.array_equal(w0, w1):  # stationary values (Q-learning): one row for every step
            return w0
        return np.stack([w0, w1] + [at(t) for t in range(2, H)])


@register("technique", "quantilizer-v0")
class Quantilizer(Technique):
    slot = "optimizer"
    title = "Quantilizer"
    summary = ("The optimizer trains as usual, then acts by sampling uniformly from the top q fraction of its "
               "actions ranked by its own specified-value estimates, instead of taking the best. Limits how hard "
               "the proxy is optimised: q = 1 acts at random, q near 0 is the maximiser.")
    source = ("Taylor 2016, \"Quantilizers: A Safer Alternative to Maximizers for Limited Optimization\", "
              "AAAI Workshop on AI, Ethics, and Society")
    Config = QuantilizerConfig
    matrix_specs = ("q=0.3", "q=0.6")

    def supports(self, target: dict[str, Any]) -> str | None:
        name = target.get("optimizer") or target.get("agent")
        if name is None or registry.resolve_or_none("agent", name) is None:
            return "no registered RL agent in this cell"
        cls = registry.get("agent", name)
        if cls.action_values is Agent.action_values:
            return f"{name} has no action values to rank by"
        return None

    def apply(self, agent: Agent, **context: Any) -> QuantilizedAgent:
        return QuantilizedAgent(agent, self.config.q)
